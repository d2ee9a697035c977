package throttle

import "time"

// RecordEvery is how often the audit log records the refusals of a key
// that is being throttled: a throttled source is answered 429 at the rate
// it sends, and an event each would let an unauthenticated flood grow the
// log, durably, at that rate.
const RecordEvery = time.Minute

// The data an endpoint adds, under the name "throttled", to the one event
// a RecordEvery that records a throttled key's refusal, saying what the
// log leaves out after it. They say "a minute": RecordEvery.
const (
	NoteAddress = "further refusals from this address are answered 429 and not recorded for a minute"
	NoteClient  = "further refusals of this client from this address are answered 429 and not recorded for a minute"
)

// Recorder says which refusals of throttled keys to record: one per key a
// RecordEvery.
type Recorder struct{ l *Limiter }

// NewRecorder returns a Recorder that tracks at most maxKeys keys, as a
// Limiter does.
func NewRecorder(maxKeys int, now func() time.Time) *Recorder {
	return &Recorder{l: New(1/RecordEvery.Seconds(), 1, maxKeys, now)}
}

// MaxRecordedKeys is how many keys an endpoint's Recorder tracks, as
// clientauth bounds the keys it throttles.
const MaxRecordedKeys = 100_000

// Record reports whether a throttled refusal of key is to be recorded:
// the first, and then one a RecordEvery. It counts the refusal when it is.
func (r *Recorder) Record(key string) bool { return r.l.take(key) }

// Skip is Record for an endpoint's refusal whose cause is cause: skip
// says the refusal is a 429 of the throttle (cause a *Refused) not to be
// recorded; note, for the one that is, is the data its event carries
// under "throttled", saying what the log leaves out after it. A refusal
// of another cause is recorded, with no note. So a flood of failures from
// one address writes a bounded number of events, not one per request.
func (r *Recorder) Skip(cause error) (note string, skip bool) {
	tr, ok := cause.(*Refused)
	if !ok {
		return "", false
	}
	if !r.Record(tr.Key) {
		return "", true
	}
	return tr.Note, false
}

// Refused is the cause of an answer 429 to a request whose key is
// throttled, for the endpoint that records refusals to find the key and
// the Note its recorded event carries.
type Refused struct {
	Key  string
	Note string // NoteAddress or NoteClient
}

func (e *Refused) Error() string { return "throttled: too many failures of " + e.Key }
