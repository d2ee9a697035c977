package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// referenceHash is the chain hash as the audit log format defines it,
// written the plain way: SHA-256(prev ‖ JSON of the event's content).
func referenceHash(prev []byte, e AuditEvent) []byte {
	content, _ := json.Marshal(struct {
		Seq       int64             `json:"seq"`
		Time      int64             `json:"time_us"`
		Action    string            `json:"action"`
		Outcome   string            `json:"outcome"`
		AccountID string            `json:"account_id"`
		Actor     string            `json:"actor"`
		Source    string            `json:"source"`
		Data      map[string]string `json:"data"`
	}{e.Seq, e.Time.UnixMicro(), e.Action, e.Outcome, e.AccountID, e.Actor, e.Source, e.Data})
	h := sha256.Sum256(append(append([]byte{}, prev...), content...))
	return h[:]
}

func testEvents() []AuditEvent {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 123456789, time.UTC)
	return []AuditEvent{
		{Time: t0, Action: "token.issued", Outcome: OutcomeSuccess, AccountID: "sa-1", Actor: "sa-1", Source: "127.0.0.1",
			Data: map[string]string{"grant": "client_credentials", "scope": "a b", "jti": "x"}},
		{Time: t0.Add(time.Second), Action: "account.create", Outcome: OutcomeSuccess, Actor: "admin"},
		{Time: t0, Action: "token.refused", Outcome: OutcomeFailure, Source: "[::1]:5",
			Data: map[string]string{"error_description": `<script>"&'\u2028 ünïcode`, "": "empty key", "data": `,"data":{}`}},
		{Time: t0, Action: `,"data":`, Actor: `","data":"x`, Data: map[string]string{"a": "b"}},
		{Time: time.Time{}.Add(time.Microsecond), Action: "x", Data: map[string]string{}},
	}
}

// Prepared or not, events hash exactly as the format defines, so logs
// written before and after stay verifiable.
func TestChainHashFormat(t *testing.T) {
	for _, prepare := range []bool{false, true} {
		evs := testEvents()
		if prepare {
			for i := range evs {
				evs[i].Prepare()
			}
		}
		seq, head := ChainEvents(41, []byte("previous head"), evs)
		if seq != 41+int64(len(evs)) || !bytes.Equal(head, evs[len(evs)-1].Hash) {
			t.Fatalf("head = %d %x", seq, head)
		}
		prev := []byte("previous head")
		for i, e := range evs {
			if e.Seq != int64(42+i) || !bytes.Equal(e.PrevHash, prev) {
				t.Errorf("prepared=%v event %d: seq %d prev %x", prepare, i, e.Seq, e.PrevHash)
			}
			if want := referenceHash(prev, e); !bytes.Equal(e.Hash, want) {
				t.Errorf("prepared=%v event %d: hash %x, want %x", prepare, i, e.Hash, want)
			}
			if !e.Time.Equal(NormalizeAuditTime(e.Time)) {
				t.Errorf("event %d time %v not normalized", i, e.Time)
			}
			if want, _ := json.Marshal(e.Data); !bytes.Equal(e.DataJSON(), want) || e.DataText() != string(want) {
				t.Errorf("event %d DataJSON %s, DataText %s, want %s", i, e.DataJSON(), e.DataText(), want)
			}
			if cap(e.Hash) != sha256.Size {
				t.Errorf("event %d hash has capacity %d: appending to it would change the next one's", i, cap(e.Hash))
			}
			prev = e.Hash
		}
		// Events read back from a store carry no encoding: they verify.
		plain := make([]AuditEvent, len(evs))
		for i, e := range evs {
			plain[i] = AuditEvent{Seq: e.Seq, Time: e.Time, Action: e.Action, Outcome: e.Outcome, AccountID: e.AccountID,
				Actor: e.Actor, Source: e.Source, Data: e.Data, PrevHash: e.PrevHash, Hash: e.Hash}
		}
		if _, _, err := VerifyChain(41, []byte("previous head"), plain); err != nil {
			t.Errorf("prepared=%v: %v", prepare, err)
		}
	}
	// A fixed vector, computed by the code that wrote the first logs, so a
	// change of the encoding cannot pass unnoticed.
	evs := testEvents()[:1]
	evs[0].Prepare()
	ChainEvents(0, nil, evs)
	if got := hex.EncodeToString(evs[0].Hash); got != "750ec97cb0bc84169750d0845850b74002e216e5b94df9c26c3067121101c710" {
		t.Errorf("hash of the fixed event = %s", got)
	}
}

// Chaining prepared events, which stores do in the one loop that commits
// every event, allocates once for all their hashes.
func TestChainEventsAllocs(t *testing.T) {
	evs := slices.Repeat(testEvents(), 13)
	for i := range evs {
		evs[i].Prepare()
	}
	prev := []byte("previous head")
	if n := testing.AllocsPerRun(10, func() { ChainEvents(41, prev, evs) }); n > 1 {
		t.Errorf("chaining %d events allocates %v times, want 1", len(evs), n)
	}
}

// sliceLog is an AuditLister over a slice.
type sliceLog []AuditEvent

func (l sliceLog) ListAuditEvents(_ context.Context, f AuditFilter) ([]AuditEvent, error) {
	var out []AuditEvent
	for _, e := range l {
		if e.Seq > f.AfterSeq && (f.Limit == 0 || len(out) < f.Limit) {
			out = append(out, e)
		}
	}
	return out, nil
}

// A log may start after event 1 only when an audit.prune event in it names
// the last event that went and its hash.
func TestVerifyLogPruned(t *testing.T) {
	ctx := context.Background()
	chain := func(prune func(evs []AuditEvent) AuditEvent) sliceLog {
		evs := testEvents()
		ChainEvents(0, nil, evs)
		more := []AuditEvent{prune(evs)}
		ChainEvents(evs[len(evs)-1].Seq, evs[len(evs)-1].Hash, more)
		return append(evs, more...)[2:] // events 1 and 2 pruned
	}
	base := AuditEvent{Time: time.Now(), Outcome: OutcomeSuccess, Actor: "op"}
	good := chain(func(evs []AuditEvent) AuditEvent { return CompletePrune(base, 2, evs[1].Hash, 2) })
	c, err := VerifyLog(ctx, good)
	if err != nil || c.FirstSeq != 3 || c.Events != int64(len(good)) || c.HeadSeq != good[len(good)-1].Seq {
		t.Fatalf("pruned log: %+v, %v", c, err)
	}
	for name, log := range map[string]sliceLog{
		"no prune event":  chain(func([]AuditEvent) AuditEvent { return AuditEvent{Time: time.Now(), Action: "x"} }),
		"wrong hash":      chain(func(evs []AuditEvent) AuditEvent { return CompletePrune(base, 2, evs[0].Hash, 2) }),
		"wrong seq":       chain(func(evs []AuditEvent) AuditEvent { return CompletePrune(base, 1, evs[1].Hash, 1) }),
		"a pruned middle": append(slices.Clone(good[:1]), good[2:]...),
	} {
		if _, err := VerifyLog(ctx, log); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

// FuzzChainHash holds prepared events, whose encoding is written without
// reflection, to the format's reference encoding.
func FuzzChainHash(f *testing.F) {
	for _, e := range testEvents() {
		var k, v string
		for k, v = range e.Data {
			break
		}
		f.Add(e.Time.UnixMicro(), e.Action, e.Outcome, e.AccountID, e.Actor, e.Source, k, v, e.Data == nil)
	}
	f.Fuzz(func(t *testing.T, us int64, action, outcome, account, actor, source, k, v string, nilData bool) {
		e := AuditEvent{Time: time.UnixMicro(us), Action: action, Outcome: outcome, AccountID: account, Actor: actor, Source: source}
		if !nilData {
			e.Data = map[string]string{k: v, "grant": "client_credentials"}
		}
		plain := e
		e.Prepare()
		plain.Time = e.Time
		evs := []AuditEvent{e}
		ChainEvents(6, []byte("prev"), evs)
		// Data not UTF-8 is hashed and stored made UTF-8 (validData).
		data := plain.Data
		if data != nil {
			data = map[string]string{}
			for k, v := range plain.Data {
				data[strings.ToValidUTF8(k, "\uFFFD")] = strings.ToValidUTF8(v, "\uFFFD")
			}
		}
		// So is its text (validText): valid text hashes as it always did.
		valid := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
		if want := referenceHash([]byte("prev"), AuditEvent{Seq: 7, Time: plain.Time, Action: valid(action), Outcome: valid(outcome),
			AccountID: valid(account), Actor: valid(actor), Source: valid(source), Data: data}); !bytes.Equal(evs[0].Hash, want) {
			t.Fatalf("hash %x, reference %x", evs[0].Hash, want)
		}
		if want, _ := json.Marshal(data); !bytes.Equal(evs[0].DataJSON(), want) {
			t.Fatalf("DataJSON %s, want %s", evs[0].DataJSON(), want)
		}
		// Stored and read back, its data verifies (other fields go to
		// columns of their own, as they are).
		read := evs[0]
		if err := read.SetStoredData(append([]byte(nil), evs[0].DataJSON()...)); err != nil {
			t.Fatal(err)
		}
		read.enc = nil
		if _, _, err := VerifyChain(6, []byte("prev"), []AuditEvent{read}); err != nil {
			t.Fatalf("read back: %v", err)
		}
	})
}

// The prune event CompletePrune makes is hashed and stored with what it
// adds, even when the event it was given was prepared already.
func TestCompletePrunePrepared(t *testing.T) {
	for _, prepare := range []bool{false, true} {
		base := AuditEvent{Time: time.Now(), Outcome: OutcomeSuccess, Actor: "op", Data: map[string]string{"before": "x"}}
		if prepare {
			base.Prepare()
		}
		evs := []AuditEvent{CompletePrune(base, 2, []byte("h"), 2)}
		ChainEvents(2, []byte("h"), evs)
		var data map[string]string
		if err := json.Unmarshal(evs[0].DataJSON(), &data); err != nil || data["through_seq"] != "2" || data["before"] != "x" {
			t.Errorf("prepared=%v: stored data %s, %v", prepare, evs[0].DataJSON(), err)
		}
		if want := referenceHash([]byte("h"), evs[0]); !bytes.Equal(evs[0].Hash, want) {
			t.Errorf("prepared=%v: hash %x, want %x", prepare, evs[0].Hash, want)
		}
	}
}

// pruningLog is a log pruned by someone else after the first page it
// answers: its first events go, and an audit.prune event records them.
type pruningLog struct {
	log   sliceLog
	prune func(sliceLog) sliceLog
	calls int
}

func (l *pruningLog) ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	if l.calls++; l.calls == 2 {
		l.log = l.prune(l.log)
	}
	return l.log.ListAuditEvents(ctx, f)
}

// A prune that runs while VerifyLog pages through the log does not make a
// log that verifies fail: it is checked again from its new start. Events
// missing for another reason still fail it.
func TestVerifyLogPrunedMeanwhile(t *testing.T) {
	ctx := context.Background()
	long := func() sliceLog {
		evs := make([]AuditEvent, 2500)
		for i := range evs {
			evs[i] = AuditEvent{Time: time.Unix(int64(i), 0), Action: "x", Outcome: OutcomeSuccess}
		}
		ChainEvents(0, nil, evs)
		return evs
	}
	pruneThrough := func(n int) func(sliceLog) sliceLog {
		return func(l sliceLog) sliceLog {
			rec := []AuditEvent{CompletePrune(AuditEvent{Time: time.Now(), Outcome: OutcomeSuccess, Actor: "op"}, l[n-1].Seq, l[n-1].Hash, int64(n))}
			ChainEvents(l[len(l)-1].Seq, l[len(l)-1].Hash, rec)
			return append(slices.Clone(l[n:]), rec...)
		}
	}
	c, err := VerifyLog(ctx, &pruningLog{log: long(), prune: pruneThrough(1500)})
	if err != nil || c.FirstSeq != 1501 || c.HeadSeq != 2501 || len(c.Prunes) != 1 {
		t.Errorf("pruned while checked: %+v, %v", c, err)
	}
	holed := func(l sliceLog) sliceLog { return append(slices.Clone(l[:1200]), l[1300:]...) }
	if _, err := VerifyLog(ctx, &pruningLog{log: long(), prune: holed}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("events deleted in the middle while checked: %v", err)
	}
}

// TestVerifyDataNotUTF8: an event whose data holds bytes that are not
// UTF-8 verifies once stored and read back. JSON stores such bytes as
// \ufffd, which read back as U+FFFD and encoded again as that character
// itself: the event's hash no longer matched its content, and the log
// was reported altered for good.
func TestVerifyDataNotUTF8(t *testing.T) {
	tests := map[string]map[string]string{
		"value":      {"path": "/v1/\xff\xfe"},
		"key":        {"\xc3": "x"},
		"valid":      {"path": "/v1/é<&>\u2028"},
		"U+FFFD too": {"a": "\ufffd\xff"},
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			in := maps.Clone(data)
			events := []AuditEvent{{Time: time.Unix(1700000000, 0), Action: "admin.refused", Outcome: OutcomeFailure, Data: in}}
			ChainEvents(0, nil, events)
			if !maps.Equal(in, data) {
				t.Errorf("the caller's data was changed: %q", in)
			}
			stored := append([]byte(nil), events[0].DataJSON()...)
			read := AuditEvent{Seq: 1, Time: events[0].Time, Action: events[0].Action, Outcome: events[0].Outcome, Hash: events[0].Hash}
			if err := read.SetStoredData(stored); err != nil {
				t.Fatal(err)
			}
			if _, _, err := VerifyChain(0, nil, []AuditEvent{read}); err != nil {
				t.Fatalf("stored as %s: %v", stored, err)
			}
		})
	}
}

// TestVerifyTextNotUTF8: a hashed text column that is not UTF-8 is
// altered, whatever the hash: the encoding hashes every byte that is not
// UTF-8 as the same escaped U+FFFD, so an event with one such byte,
// written by hand into SQLite, which keeps any bytes, verified with
// another byte in its place. No writer appends such text: it is stored
// and hashed with U+FFFD in its place.
func TestVerifyTextNotUTF8(t *testing.T) {
	columns := map[string]func(*AuditEvent) *string{
		"action":     func(e *AuditEvent) *string { return &e.Action },
		"outcome":    func(e *AuditEvent) *string { return &e.Outcome },
		"account_id": func(e *AuditEvent) *string { return &e.AccountID },
		"actor":      func(e *AuditEvent) *string { return &e.Actor },
		"source":     func(e *AuditEvent) *string { return &e.Source },
	}
	for name, col := range columns {
		t.Run(name, func(t *testing.T) {
			e := AuditEvent{Seq: 1, Time: time.Unix(1700000000, 0), Action: "x", Outcome: OutcomeSuccess}
			*col(&e) = "a\xff"
			// Hashed as the first logs hashed it, then a byte swapped.
			e.Hash = referenceHash(nil, e)
			*col(&e) = "a\xfe"
			if _, _, err := VerifyChain(0, nil, []AuditEvent{e}); err == nil || !strings.Contains(err.Error(), "event 1 was altered: its "+name+" is not UTF-8") {
				t.Errorf("VerifyChain of a %s not UTF-8: %v", name, err)
			}
			// Appended, it holds U+FFFD, and verifies.
			w := []AuditEvent{{Time: e.Time, Action: "x", Outcome: OutcomeSuccess}}
			*col(&w[0]) = "a\xff"
			ChainEvents(0, nil, w)
			if got := *col(&w[0]); got != "a\uFFFD" {
				t.Errorf("appended %s %q, want %q", name, got, "a\uFFFD")
			}
			read := AuditEvent{Seq: w[0].Seq, Time: w[0].Time, Action: w[0].Action, Outcome: w[0].Outcome, AccountID: w[0].AccountID,
				Actor: w[0].Actor, Source: w[0].Source, PrevHash: w[0].PrevHash, Hash: w[0].Hash}
			if _, _, err := VerifyChain(0, nil, []AuditEvent{read}); err != nil {
				t.Errorf("appended, read back: %v", err)
			}
		})
	}
}

// failingLog answers its first pages from log, then fails with err.
type failingLog struct {
	log   sliceLog
	pages int // answered before failing
	err   error
}

func (l *failingLog) ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	if l.pages == 0 {
		return nil, l.err
	}
	l.pages--
	return l.log.ListAuditEvents(ctx, f)
}

// TestVerifyLogUnchecked: a check VerifyLog could not finish (the store
// did not answer, prunes kept running) wraps ErrUnchecked, which is no
// finding that the log was altered; an altered log or a gap never does.
// Both were plain errors, and audit verify called a database that did not
// answer a log NOT intact.
func TestVerifyLogUnchecked(t *testing.T) {
	ctx := context.Background()
	long := func() sliceLog { return chained(2500) }
	down := errors.New("connection refused")
	altered := long()
	altered[1200].Hash = make([]byte, 32)
	tests := []struct {
		name      string
		log       AuditLister
		unchecked bool
		want      string
		fit       int64 // events that fit; -1: any
	}{
		{"the first page unread", &failingLog{log: long(), err: down}, true, "connection refused", 0},
		{"a later page unread", &failingLog{log: long(), pages: 2, err: down}, true, "connection refused", 2000},
		{"the context ended", &failingLog{log: long(), pages: 1, err: context.Canceled}, true, "canceled", 1000},
		{"pruned meanwhile, every time", &pruneAheadLog{log: chained(5000)}, true, "run the check again", -1},
		{"an event altered", altered, false, "event 1201 was altered", 1200},
		{"events missing", append(long()[:1200], long()[1300:]...), false, "missing", 1200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := VerifyLog(ctx, tt.log)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("VerifyLog: %v, want an error with %q", err, tt.want)
			}
			if tt.fit >= 0 && c.Events != tt.fit {
				t.Errorf("VerifyLog: %d events fit, want %d", c.Events, tt.fit)
			}
			if got := errors.Is(err, ErrUnchecked); got != tt.unchecked {
				t.Errorf("VerifyLog: %v, unchecked %v, want %v", err, got, tt.unchecked)
			}
		})
	}
}

// chained is a log of n events.
func chained(n int) sliceLog {
	evs := make([]AuditEvent, n)
	for i := range evs {
		evs[i] = AuditEvent{Time: time.Unix(int64(i), 0), Action: "x", Outcome: OutcomeSuccess}
	}
	ChainEvents(0, nil, evs)
	return evs
}

// pruneAheadLog is a log that someone else prunes, before every page
// after the first, through the event after the last one read.
type pruneAheadLog struct {
	log   sliceLog
	start int64 // the first event kept
}

func (l *pruneAheadLog) ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	if f.AfterSeq > 0 {
		l.start = f.AfterSeq + 2
	}
	if f.AfterSeq < l.start-1 {
		f.AfterSeq = l.start - 1
	}
	return l.log.ListAuditEvents(ctx, f)
}

// Preparing an event as a token's issuance writes it (350 bytes), which
// every token issued and every introspection does before handing it over,
// allocates its encoding and its bytes (the data's text among them).
func TestPrepareAllocs(t *testing.T) {
	ev := AuditEvent{Time: time.Unix(1764892800, 123456000), Action: "token.issued", Outcome: OutcomeSuccess,
		AccountID: "919825402279580407165", Actor: "919825402279580407165", Source: "192.0.2.10",
		Data: map[string]string{"grant": "client_credentials", "scope": "orders.read", "aud": "https://orders.internal",
			"token_id": "q8Jx0cS3kE2m1rJ7fTQvHw", "expires": "1764896400", "auth_method": "client_secret_basic"}}
	if n := testing.AllocsPerRun(100, func() { e := ev; e.Prepare() }); n > 2 {
		t.Errorf("Prepare: %v allocations, want 2", n)
	}
}

// TestPrepareBytes: a prepared event holds its encoding in memory of its
// size, until its batch commits (an import's, until all its events do):
// the encoding and its bytes, the data's text among them. It held a
// 512-byte buffer and the data's text again: 688 bytes for an import's
// event of 194, and 832 for a token's issuance of 358.
func TestPrepareBytes(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	for _, ev := range []AuditEvent{
		{Time: time.Unix(1764892800, 123456000), Action: "account.import", Outcome: OutcomeSuccess,
			AccountID: "919825402279580407165", Actor: "import", Data: map[string]string{"exported_at": "2026-12-01T12:00:00Z"}},
		{Time: time.Unix(1764892800, 123456000), Action: "token.issued", Outcome: OutcomeSuccess,
			AccountID: "919825402279580407165", Actor: "919825402279580407165", Source: "192.0.2.10",
			Data: map[string]string{"grant": "client_credentials", "scope": "orders.read", "aud": "https://orders.internal",
				"token_id": "q8Jx0cS3kE2m1rJ7fTQvHw", "expires": "1764896400", "auth_method": "client_secret_basic"}},
	} {
		const runs = 100
		e := ev
		e.Prepare()
		size := len(`{"seq":1,`) + len(e.enc.tail)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			e := ev
			e.Prepare()
		}
		runtime.ReadMemStats(&after)
		// The encoding's three fields, and its bytes rounded up to a
		// size class (at most an eighth more).
		if got, limit := (after.TotalAlloc-before.TotalAlloc)/runs, uint64(64+size+size/8); got > limit {
			t.Errorf("%s: preparing a %d-byte event allocated %d bytes, want at most %d", ev.Action, size, got, limit)
		}
	}
}

// TestPreparedEncodingStays: an event's encoding holds its bytes in a
// buffer of its own, which DataJSON and DataText hand out (stores write
// them, the chain hashes them). Preparing other events must not change
// them, as it would should that buffer ever be pooled or shared, nor must
// a copy of the event prepared again.
func TestPreparedEncodingStays(t *testing.T) {
	event := func(i int) AuditEvent {
		return AuditEvent{Time: time.Unix(1764892800, 0), Action: "token.issued", Outcome: OutcomeSuccess,
			AccountID: strings.Repeat("1", i), Actor: "system",
			Data: map[string]string{"scope": strings.Repeat("s", 10*i), "token_id": strings.Repeat("t", i)}}
	}
	var events []AuditEvent
	var jsons, texts []string
	var hashes [][]byte
	for i := range 80 { // to past the 512 bytes the encoding holds
		e := event(i)
		e.Prepare()
		events = append(events, e)
		jsons, texts = append(jsons, string(e.DataJSON())), append(texts, strings.Clone(e.DataText()))
		hashes = append(hashes, ChainHash([]byte("prev"), e))
		c := e
		c.Prepare()
	}
	for i, e := range events {
		want, _ := json.Marshal(event(i).Data)
		if string(e.DataJSON()) != jsons[i] || jsons[i] != string(want) || e.DataText() != texts[i] {
			t.Fatalf("event %d: data %s, text %s after later events were prepared; want %s", i, e.DataJSON(), e.DataText(), want)
		}
		if got := ChainHash([]byte("prev"), e); !bytes.Equal(got, hashes[i]) || !bytes.Equal(got, referenceHash([]byte("prev"), e)) {
			t.Fatalf("event %d: hash changed after later events were prepared", i)
		}
	}
}

// BenchmarkPrepare prepares the events most written: a token's issuance
// (358 bytes encoded), an import's event for each item (194 bytes), and
// an admin change with more data (700 bytes). Its bytes/op are what an
// event prepared holds until its batch commits (an import's, until all
// of them commit) and what verifying the log takes for each.
func BenchmarkPrepare(b *testing.B) {
	for _, bb := range []struct {
		name string
		ev   AuditEvent
	}{
		{"token.issued", AuditEvent{Time: time.Unix(1764892800, 123456000), Action: "token.issued", Outcome: OutcomeSuccess,
			AccountID: "919825402279580407165", Actor: "919825402279580407165", Source: "192.0.2.10",
			Data: map[string]string{"grant": "client_credentials", "scope": "orders.read", "aud": "https://orders.internal",
				"token_id": "q8Jx0cS3kE2m1rJ7fTQvHw", "expires": "1764896400", "auth_method": "client_secret_basic"}}},
		{"import", AuditEvent{Time: time.Unix(1764892800, 123456000), Action: "account.import", Outcome: OutcomeSuccess,
			AccountID: "919825402279580407165", Actor: "import", Data: map[string]string{"exported_at": "2026-12-01T12:00:00Z"}}},
		{"large", AuditEvent{Time: time.Unix(1764892800, 123456000), Action: "account.update", Outcome: OutcomeSuccess,
			AccountID: "919825402279580407165", Actor: "919825402279580407166", Source: "192.0.2.10",
			Data: map[string]string{"description": strings.Repeat("d", 300), "scopes": strings.Repeat("orders.read ", 20)}}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e := bb.ev
				e.Prepare()
			}
		})
	}
}
