package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/keyward/keyward/internal/jsonappend"
)

// Audit event outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// AuditEvent is one entry of the append-only, hash-chained audit log.
type AuditEvent struct {
	// Seq is assigned by the store: 1, 2, 3, … without gaps.
	Seq  int64
	Time time.Time
	// Action names what happened: token.issued, token.refused,
	// account.create, key.disable, …
	Action  string
	Outcome string
	// AccountID is the service account the event is about, if any.
	AccountID string
	// Actor is who caused it: the admin account ID for admin changes, the
	// client for token requests, "system" for the server itself.
	Actor string
	// Source is the remote address of the request, if any.
	Source string
	// Data holds the event's details: grant, auth method, key ID, error
	// code and description, scopes, token ID.
	Data map[string]string
	// PrevHash and Hash chain the log: Hash = SHA-256(PrevHash ‖ event).
	PrevHash []byte
	Hash     []byte

	// enc caches the encoding Prepare made.
	enc *eventEncoding
	// stored is Data's JSON as read from a store, if it was (SetStoredData).
	stored []byte
	// unreadable is set when stored is not a JSON object of strings.
	unreadable bool
	// timeRaw is the stored time, when it is not one (SetUnreadableTime).
	timeRaw        string
	timeUnreadable bool
}

// eventEncoding is the part of an event's hashed content that does not
// depend on its place in the chain, and its data as stored.
type eventEncoding struct {
	tail []byte // the hashed JSON object after its "seq" member: `"time_us":…}`
	data []byte // Data as a JSON object
	// text is data as a string, for DataText: the same bytes, which
	// nothing changes once they are encoded, not a copy.
	text string
}

// encodeScratch is how many bytes of an event encodeEvent encodes on its
// stack before it copies them, to their size: a token.issued event, the
// most common, is 300-450 bytes (358 in TestPrepareAllocs), an import's
// for each item about 200. (The encoding held a buffer of this size: an
// event held 576 bytes, and its data's text again, until its batch
// committed, which for an import is when all its events do.)
const encodeScratch = 512

func encodeEvent(e *AuditEvent) *eventEncoding {
	e.Data = validData(e.Data)
	for _, s := range e.hashedText() {
		*s.v = validText(*s.v)
	}
	// Appended as jsonappend.Object would, member by member, which would
	// put scratch on the heap: it stores the buffer through a pointer.
	var scratch [encodeScratch]byte
	b := strconv.AppendInt(append(scratch[:0], `{"time_us":`...), e.Time.UnixMicro(), 10)
	b = jsonappend.String(append(b, `,"action":`...), e.Action)
	b = jsonappend.String(append(b, `,"outcome":`...), e.Outcome)
	b = jsonappend.String(append(b, `,"account_id":`...), e.AccountID)
	b = jsonappend.String(append(b, `,"actor":`...), e.Actor)
	b = jsonappend.String(append(b, `,"source":`...), e.Source)
	b = append(b, `,"data":`...)
	i := len(b)
	b = append(jsonappend.StringMap(b, e.Data), '}')
	// Copied even when it grew out of scratch (an event of more than
	// encodeScratch bytes, seldom written): else scratch would be on the
	// heap too.
	content := bytes.Clone(b)
	data := content[i : len(content)-1 : len(content)-1]
	return &eventEncoding{tail: content[1:], data: data, text: unsafe.String(unsafe.SliceData(data), len(data))}
}

// textColumn is a text column of an event that the chain hashes.
type textColumn struct {
	name string
	v    *string
}

// hashedText are the text columns of e the chain hashes, but its data.
func (e *AuditEvent) hashedText() [5]textColumn {
	return [5]textColumn{{"action", &e.Action}, {"outcome", &e.Outcome}, {"account_id", &e.AccountID}, {"actor", &e.Actor}, {"source", &e.Source}}
}

// validText is s, or, when it is not valid UTF-8, s with each invalid
// byte sequence replaced by U+FFFD, which is what an event holds in its
// place: the encoding hashes every invalid byte as the same escaped
// U+FFFD, so one such byte could be swapped for another unnoticed (a
// SQLite column keeps any bytes; PostgreSQL refuses them, and with them
// the whole batch). VerifyChain counts a column that is not UTF-8 as
// altered, and no valid text is hashed otherwise than before.
func validText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// validData is data, or, when a key or value is not valid UTF-8, a copy
// with each invalid byte sequence replaced by U+FFFD. JSON has no way to
// keep such bytes: the encoding stores \ufffd in their place, which reads
// back as U+FFFD and encodes again as that character itself, so the event
// would never verify (VerifyChain), a false alarm no one could clear.
func validData(data map[string]string) map[string]string {
	for k, v := range data {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			valid := make(map[string]string, len(data))
			for k, v := range data {
				valid[strings.ToValidUTF8(k, "\uFFFD")] = strings.ToValidUTF8(v, "\uFFFD")
			}
			return valid
		}
	}
	return data
}

// Prepare normalizes e's time and text (invalid UTF-8 in a text column or
// in Data becomes U+FFFD) and encodes everything about e that does not
// depend on its place in the chain, so that appending it, which stores do
// one transaction at a time, is left with little more than one hash. Writers
// call it before handing an event over; e must not change afterwards.
func (e *AuditEvent) Prepare() {
	e.Time = NormalizeAuditTime(e.Time)
	e.enc = encodeEvent(e)
}

// DataJSON returns e.Data as the JSON object stores keep.
func (e *AuditEvent) DataJSON() []byte {
	if e.enc != nil {
		return e.enc.data
	}
	data, _ := json.Marshal(validData(e.Data))
	return data
}

// DataText returns DataJSON as a string, which a prepared event holds
// already: stores write it to a text column, in the one loop that commits
// every event, where a conversion would copy it again.
func (e *AuditEvent) DataText() string {
	if e.enc != nil {
		return e.enc.text
	}
	return string(e.DataJSON())
}

// ErrCorruptData is wrapped by the error of SetStoredData for stored data
// that is not a JSON object of strings, and by that of VerifyChain for
// such data or a stored time that is no integer (SetUnreadableTime):
// Keyward never writes either, so the database was changed.
var ErrCorruptData = errors.New("corrupt data")

// SetStoredData sets e.Data from raw, its JSON as a store holds it, and keeps
// raw for VerifyChain, which requires it to be exactly Data's encoding: the
// hash covers Data, and with that check the stored text too, which SQL
// queries and other readers of the table see (a duplicate key, or a
// character escaped another way, would leave Data as it was). Data that is
// not a JSON object of strings is an error wrapping ErrCorruptData, and
// leaves e with no Data, its raw text kept for UnreadableData: a store
// still lists such an event, so that one altered row does not make the
// rest of the log unreadable, and VerifyChain counts it altered.
func (e *AuditEvent) SetStoredData(raw []byte) error {
	var data map[string]string
	if err := json.Unmarshal(raw, &data); err != nil {
		e.Data, e.stored, e.unreadable = nil, raw, true
		return fmt.Errorf("%w: %w", ErrCorruptData, err)
	}
	e.Data, e.stored, e.unreadable = data, raw, false
	return nil
}

// UnreadableData returns the data of an event as a store holds it, and
// true, when that is not a JSON object of strings (SetStoredData), in
// which case e.Data is nil: the database was changed.
func (e *AuditEvent) UnreadableData() ([]byte, bool) {
	if !e.unreadable {
		return nil, false
	}
	return e.stored, true
}

// SetUnreadableTime records that a store holds raw, which is not a time
// (on SQLite, whose columns keep a value of any type, a text or a real
// number where an integer belongs), in place of e's time, and leaves e
// with the zero Time: Keyward never writes that, so the database was
// changed. A store still lists such an event, so that one altered row does
// not make the rest of the log unreadable, and VerifyChain counts it
// altered.
func (e *AuditEvent) SetUnreadableTime(raw string) {
	e.Time, e.timeRaw, e.timeUnreadable = time.Time{}, raw, true
}

// UnreadableTime returns what a store holds in place of e's time, and
// true, when that is not a time (SetUnreadableTime), in which case e.Time
// is the zero time: the database was changed.
func (e *AuditEvent) UnreadableTime() (string, bool) {
	return e.timeRaw, e.timeUnreadable
}

// AuditMovedFrom is the data key under which the event of a PutProjectOrg
// that moves a project names the organization the project left.
const AuditMovedFrom = "moved_from"

// AuditFilter selects audit events and the order they are listed in.
//
// By default events come oldest first: the Limit oldest that match, and
// the next page starts after the last one's Seq (AfterSeq). With Newest
// they come newest first: the Limit newest that match, and the next,
// older page ends before the last one's Seq (BeforeSeq). AfterSeq and
// BeforeSeq bound the range in either order.
type AuditFilter struct {
	AfterSeq  int64 // only events with Seq > AfterSeq
	BeforeSeq int64 // only events with Seq < BeforeSeq; 0 means no bound
	Newest    bool  // newest first (descending Seq) instead of oldest first
	Limit     int   // 0 means DefaultListLimit
	AccountID string
	Action    string
	Outcome   string
	// Since and Until bound the events' times to the nanosecond, whatever
	// the precision times are stored with: Since inclusive, Until
	// exclusive; nil means no bound. The zero time is a bound like any
	// other: Until at it selects only events before it (none Keyward
	// writes), as a prune's cut at it deletes nothing.
	Since *time.Time
	Until *time.Time
}

// AuditTimesBetween reports whether a time as stored (NormalizeAuditTime:
// a whole microsecond) can be at or after since and before until. A range
// inside one microsecond holds none, though since is before until: no
// event can match it.
func AuditTimesBetween(since, until time.Time) bool {
	first := NormalizeAuditTime(since)
	if first.Before(since) {
		first = first.Add(time.Microsecond)
	}
	return first.Before(until)
}

// NormalizeAuditTime is the precision audit times are stored and hashed
// with, so every backend reproduces the same hash.
func NormalizeAuditTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// ParseHead parses a head of the audit log, an event's sequence number
// and its hash, as SEQ:HASH: the sequence number in decimal, at least 1,
// and the 32-byte hash in hex. The error quotes s.
func ParseHead(s string) (int64, []byte, error) {
	seqText, hashHex, _ := strings.Cut(s, ":")
	seq, err := strconv.ParseInt(seqText, 10, 64)
	hash, herr := hex.DecodeString(hashHex)
	if err != nil || seq < 1 || herr != nil || len(hash) != sha256.Size {
		return 0, nil, fmt.Errorf("%q must be SEQ:HASH, an event's sequence number and its 64 hex digit hash, joined by a colon", s)
	}
	return seq, hash, nil
}

// ChainHash computes an event's hash from the previous event's hash and the
// event's content (everything but the hashes): SHA-256 of prev followed by
// the content as the JSON object {"seq", "time_us", "action", "outcome",
// "account_id", "actor", "source", "data"}, in that order.
func ChainHash(prev []byte, e AuditEvent) []byte {
	return appendChainHash(nil, prev, &e)
}

// appendChainHash appends e's ChainHash to dst.
func appendChainHash(dst, prev []byte, e *AuditEvent) []byte {
	enc := e.enc
	if enc == nil {
		enc = encodeEvent(e)
	}
	var seq [32]byte
	h := sha256.New()
	h.Write(prev)
	h.Write(append(strconv.AppendInt(append(seq[:0], `{"seq":`...), e.Seq, 10), ','))
	h.Write(enc.tail)
	return h.Sum(dst)
}

// ChainEvents assigns sequence numbers, normalized times and hashes to
// events appended after the event with sequence number seq and hash prev.
// It returns the new head.
func ChainEvents(seq int64, prev []byte, events []AuditEvent) (int64, []byte) {
	// One array holds the hashes of all the events: stores chain every
	// event in the one loop that commits them.
	hashes := make([]byte, 0, sha256.Size*len(events))
	for i := range events {
		seq++
		events[i].Seq = seq
		if events[i].enc == nil {
			events[i].Prepare()
		}
		events[i].PrevHash = prev
		n := len(hashes)
		hashes = appendChainHash(hashes, prev, &events[i])
		events[i].Hash = hashes[n:len(hashes):len(hashes)]
		prev = events[i].Hash
	}
	return seq, prev
}

// VerifyChain checks that events, in order, continue a chain whose last
// verified event had sequence number seq and hash prev. It returns the new
// head, or an error naming the first event that does not fit.
func VerifyChain(seq int64, prev []byte, events []AuditEvent) (int64, []byte, error) {
	for _, e := range events {
		if e.Seq != seq+1 {
			return seq, prev, fmt.Errorf("audit event %d follows %d: events are missing", e.Seq, seq)
		}
		if !bytes.Equal(e.PrevHash, prev) {
			return seq, prev, fmt.Errorf("audit event %d does not link to event %d", e.Seq, seq)
		}
		if e.timeUnreadable {
			return seq, prev, fmt.Errorf("audit event %d was altered: its stored time is not an integer (%w)", e.Seq, ErrCorruptData)
		}
		if e.unreadable {
			return seq, prev, fmt.Errorf("audit event %d was altered: its stored data is not a JSON object of strings (%w)", e.Seq, ErrCorruptData)
		}
		for _, c := range e.hashedText() {
			if !utf8.ValidString(*c.v) {
				return seq, prev, fmt.Errorf("audit event %d was altered: its %s is not UTF-8, which Keyward never writes", e.Seq, c.name)
			}
		}
		if e.enc == nil {
			e.enc = encodeEvent(&e)
		}
		if !bytes.Equal(ChainHash(prev, e), e.Hash) {
			return seq, prev, fmt.Errorf("audit event %d was altered: its hash does not match its content", e.Seq)
		}
		if e.stored != nil && !bytes.Equal(e.stored, e.enc.data) {
			return seq, prev, fmt.Errorf("audit event %d was altered: its stored data is not the JSON it was written as", e.Seq)
		}
		seq, prev = e.Seq, e.Hash
	}
	return seq, prev, nil
}

// ActionAuditPrune is the action of the event PruneAudit appends.
const ActionAuditPrune = "audit.prune"

// CompletePrune adds to a prune event what it accounts for: the events up
// to throughSeq, the last of which had hash throughHash, count of them.
func CompletePrune(ev AuditEvent, throughSeq int64, throughHash []byte, count int64) AuditEvent {
	data := make(map[string]string, len(ev.Data)+3)
	maps.Copy(data, ev.Data)
	data["through_seq"] = strconv.FormatInt(throughSeq, 10)
	data["through_hash"] = hex.EncodeToString(throughHash)
	data["count"] = strconv.FormatInt(count, 10)
	ev.Action, ev.Data = ActionAuditPrune, data
	ev.enc = nil // an encoding Prepare made is of the event without them
	return ev
}

// AuditLister lists audit events.
type AuditLister interface {
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
}

// LogCheck is what VerifyLog found.
type LogCheck struct {
	Events   int64  // events checked; with an error, those that fit
	FirstSeq int64  // the first event kept; above 1 when older ones were pruned
	HeadSeq  int64  // the newest event
	Head     []byte // its hash
	// Prunes are the audit.prune events in the log: each one's deletion
	// should be one an operator ran.
	Prunes []AuditEvent
}

// ErrUnchecked is wrapped by an error of VerifyLog that is no finding about
// the log: the check could not be finished (the store did not answer, the
// context ended, prunes kept deleting the events ahead of it). The events
// it had not read are neither verified nor found altered. An error of a log
// found altered never wraps it.
var ErrUnchecked = errors.New("the audit log could not be checked")

// Unchecked marks err, its message unchanged, as wrapping ErrUnchecked.
func Unchecked(err error) error { return uncheckedError{err} }

type uncheckedError struct{ error }

func (e uncheckedError) Unwrap() []error { return []error{e.error, ErrUnchecked} }

// readError is the error of a listing that failed while the log was
// checked: it wraps ErrUnchecked. (A store lists an event it cannot decode,
// its data or time unreadable, and VerifyChain finds it altered.)
func readError(err error) error {
	return Unchecked(fmt.Errorf("reading the audit log: %w", err))
}

// VerifyLog checks the whole audit chain of a store, page by page: every
// event links to the one before and still has the content it was written
// with. A log whose oldest events were pruned must hold the audit.prune
// event that names the last pruned event and its hash; a log that lost its
// oldest events without one does not verify, nor does one holding an event
// numbered below 1, which no listing shows. The error of a broken chain names
// the first event that does not fit; an error wrapping ErrUnchecked says
// why the check could not be finished instead.
//
// A prune that runs meanwhile (audit prune does not stop the server, nor a
// verify) can delete events after the page last read: a log that now starts
// beyond them is checked again from its new start, up to three times.
func VerifyLog(ctx context.Context, s AuditLister) (LogCheck, error) {
	for attempt := 1; ; attempt++ {
		c, err := verifyLog(ctx, s)
		if !errors.Is(err, errPrunedMeanwhile) {
			return c, err
		}
		if attempt == 3 {
			return c, Unchecked(fmt.Errorf("%w, %d times: run the check again once no prune runs", err, attempt))
		}
	}
}

// errPrunedMeanwhile is verifyLog finding that events it was to read next
// were pruned after it began.
var errPrunedMeanwhile = errors.New("audit events were pruned while the log was checked")

func verifyLog(ctx context.Context, s AuditLister) (LogCheck, error) {
	var (
		c        LogCheck
		seq      int64
		prev     = []byte{}
		pruneSeq string // the audit.prune event that must account for a pruned start
		pruneHex string
		found    bool
		// The first page starts below 1: an event stored there, which
		// no reader pages to, was not written by Keyward.
		after int64 = math.MinInt64
	)
	for {
		page, err := s.ListAuditEvents(ctx, AuditFilter{AfterSeq: after, Limit: 1000})
		if err != nil {
			return c, readError(err)
		}
		if len(page) == 0 {
			break
		}
		if c.Events == 0 {
			if page[0].Seq < 1 {
				return c, fmt.Errorf("audit event %d comes before event 1: it was inserted", page[0].Seq)
			}
			c.FirstSeq = page[0].Seq
			if page[0].Seq > 1 {
				seq, prev = page[0].Seq-1, page[0].PrevHash
				pruneSeq, pruneHex = strconv.FormatInt(seq, 10), hex.EncodeToString(prev)
			}
		}
		checked := seq
		if seq, prev, err = VerifyChain(seq, prev, page); err != nil {
			if c.Events > 0 && page[0].Seq > seq+1 {
				// Missing after a page that verified: pruned since, if
				// the log now starts beyond the events checked.
				first, ferr := s.ListAuditEvents(ctx, AuditFilter{AfterSeq: math.MinInt64, Limit: 1})
				if ferr != nil {
					return c, readError(ferr)
				}
				if len(first) > 0 && first[0].Seq > seq {
					return c, errPrunedMeanwhile
				}
			}
			c.Events += seq - checked // those of the page that fit
			return c, err
		}
		for _, e := range page {
			if e.Action != ActionAuditPrune {
				continue
			}
			c.Prunes = append(c.Prunes, e)
			if e.Data["through_seq"] == pruneSeq && e.Data["through_hash"] == pruneHex {
				found = true
			}
		}
		c.Events += int64(len(page))
		c.HeadSeq, c.Head = seq, prev
		after = seq
	}
	if c.FirstSeq > 1 && !found {
		return c, fmt.Errorf("audit events 1 to %d are missing and no %s event accounts for them", c.FirstSeq-1, ActionAuditPrune)
	}
	return c, nil
}

// UsersEvent makes the audit event of a PutUsers, inside its transaction,
// from the users whose Suspended the put changes: each user given that
// was stored with the other value, as given (with the new value), sorted
// by email. A user the put creates is none of them.
type UsersEvent func(flipped []User) AuditEvent

// SameEvent is the UsersEvent that is ev whatever the put changes.
func SameEvent(ev AuditEvent) UsersEvent { return func([]User) AuditEvent { return ev } }
