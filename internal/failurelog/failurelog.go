// Package failurelog says when to log a failure that may go on, such as
// writes to a store that is down, retried every few seconds: at the first
// failure, then at most once each Every while they go on, with how many
// failed since the last line, and once more at the first success after
// them. A line at each failure would bury the log for as long as the
// failures last. The caller keeps its own messages, levels and fields.
package failurelog

import "time"

// Every is how often failures that go on are logged.
const Every = time.Minute

// Spell tracks a spell of failures. Its zero value is one with no
// failure, logged at most once each Every. It is not safe for concurrent
// use.
type Spell struct {
	// Every, if not zero, is how often this spell's failures that go on
	// are logged instead of the package's Every: a failure retried only
	// once each Every would otherwise be logged at every try.
	Every time.Duration

	since, logged time.Time // zero while nothing fails
	unlogged      int       // failures since the last line
}

// Note is what Failed asks to log of a failure.
type Note struct {
	// First is true at the first failure of the spell: log it.
	First bool
	// Again is true when the failures go on and the spell's Every has
	// passed since the last line (or the clock went back): log that they
	// still fail, with For and Failures.
	Again bool
	// For is how long the spell has lasted (0 but with Again).
	For time.Duration
	// Failures is how many failed since the last line, this one included
	// (0 but with First or Again).
	Failures int
}

// Failed records a failure at now and returns what to log of it: nothing
// (a zero Note) between the lines.
func (s *Spell) Failed(now time.Time) Note {
	switch {
	case s.since.IsZero():
		s.since, s.logged, s.unlogged = now, now, 0
		return Note{First: true, Failures: 1}
	case now.Sub(s.logged) >= s.every() || now.Before(s.logged):
		n := Note{Again: true, For: now.Sub(s.since), Failures: s.unlogged + 1}
		s.logged, s.unlogged = now, 0
		return n
	default:
		s.unlogged++
		return Note{}
	}
}

// Succeeded records a success at now and ends the spell. If something
// failed before it, it returns true and how long the failures lasted:
// log that they ended.
func (s *Spell) Succeeded(now time.Time) (time.Duration, bool) {
	if s.since.IsZero() {
		return 0, false
	}
	d := now.Sub(s.since)
	s.since, s.logged, s.unlogged = time.Time{}, time.Time{}, 0
	return d, true
}

// every is how often the spell's failures that go on are logged.
func (s *Spell) every() time.Duration {
	if s.Every > 0 {
		return s.Every
	}
	return Every
}
