package dpop_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/dpop"
	"github.com/keyward/keyward/internal/dpop/dpoptest"
)

func TestNonces(t *testing.T) {
	n := dpop.NewNonces([]byte("key of the servers"))
	other := dpop.NewNonces([]byte("key of someone else"))
	now := time.Unix(1_800_000_000, 0)
	cur := n.Current(now)
	if again := n.Current(now.Add(time.Second)); again != cur { // now starts a minute
		t.Fatalf("two nonces in one period: %q, %q", cur, again)
	}
	flip := []byte(cur)
	flip[len(flip)-1] ^= 1
	tests := []struct {
		name  string
		nonce string
		at    time.Time
		want  bool
	}{
		{"current", cur, now, true},
		{"a period later", cur, now.Add(dpop.NoncePeriod), true},
		{"two periods later", cur, now.Add(2 * dpop.NoncePeriod), false},
		{"a period earlier (a replica's clock behind)", cur, now.Add(-dpop.NoncePeriod), true},
		{"two periods earlier", cur, now.Add(-2 * dpop.NoncePeriod), false},
		{"another key's", other.Current(now), now, false},
		{"altered", string(flip), now, false},
		{"empty", "", now, false},
		{"cut short", cur[:len(cur)-1], now, false},
		{"with a line break in place of a character", cur[:10] + "\n" + cur[11:], now, false},
		{"all line breaks", strings.Repeat("\n", len(cur)), now, false},
		{"not base64url", strings.Repeat("*", len(cur)), now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := n.Valid(tt.nonce, tt.at); got != tt.want {
				t.Errorf("Valid(%q) = %v, want %v", tt.nonce, got, tt.want)
			}
		})
	}
}

// Nonces keeps the latest period's nonce and MACs. Goroutines whose
// clocks straddle period changes, some behind the others, each get the
// nonce of their own period, and Valid judges as a Nonces without
// anything kept would. Run with -race.
func TestNoncesConcurrent(t *testing.T) {
	key := []byte("key of the servers")
	n := dpop.NewNonces(key)
	start := time.Unix(1_800_000_000, 0)
	// fresh computes from nothing kept: a new Nonces each time.
	fresh := func(at time.Time) string { return dpop.NewNonces(key).Current(at) }
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				// Mostly forward through five periods, every fourth
				// step a period behind.
				at := start.Add(time.Duration(i)*(5*dpop.NoncePeriod)/200 + time.Duration(g)*time.Second)
				if i%4 == 3 {
					at = at.Add(-dpop.NoncePeriod)
				}
				if got, want := n.Current(at), fresh(at); got != want {
					t.Errorf("Current(%v) = %q, want %q", at, got, want)
					return
				}
				for _, d := range []time.Duration{-2 * dpop.NoncePeriod, -dpop.NoncePeriod, 0, dpop.NoncePeriod, 2 * dpop.NoncePeriod} {
					nonce := fresh(at.Add(d))
					if got, want := n.Valid(nonce, at), dpop.NewNonces(key).Valid(nonce, at); got != want {
						t.Errorf("Valid(nonce of %v, %v) = %v, want %v", d, at, got, want)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

// Once the period's nonce is kept, Current and Valid allocate nothing:
// they run on every DPoP request where nonces are required.
func TestNoncesAllocs(t *testing.T) {
	n := dpop.NewNonces([]byte("key of the servers"))
	now := time.Unix(1_800_000_000, 0)
	cur, last := n.Current(now), n.Current(now.Add(-dpop.NoncePeriod))
	n.Current(now)
	junk, breaks := strings.Repeat("A", len(cur)), strings.Repeat("\n", len(cur))
	for name, f := range map[string]func(){
		"Current":                func() { nonceSink = n.Current(now) },
		"Valid":                  func() { validSink = n.Valid(cur, now) },
		"Valid, last period's":   func() { validSink = n.Valid(last, now) },
		"Valid, not a nonce":     func() { validSink = n.Valid(junk, now) },
		"Valid, all line breaks": func() { validSink = n.Valid(breaks, now) },
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocations, want 0", name, a)
		}
	}
}

var validSink bool

// The nonce a proof carries comes back from Check, for the caller to
// check.
func TestProofNonce(t *testing.T) {
	p := dpoptest.NewProver(t)
	now := time.Now()
	for _, nonce := range []string{"", "n-1"} {
		raw, err := p.ProofWithNonce("POST", "https://keyward.example/token", "", nonce, now)
		if err != nil {
			t.Fatal(err)
		}
		c := dpop.Checker{Now: func() time.Time { return now }}
		got, err := c.Check([]string{raw}, dpop.Request{Method: "POST", URL: "https://keyward.example/token"})
		if err != nil {
			t.Fatal(err)
		}
		if got.Nonce != nonce {
			t.Errorf("Nonce = %q, want %q", got.Nonce, nonce)
		}
	}
}

func FuzzNonceValid(f *testing.F) {
	n := dpop.NewNonces([]byte("k"))
	now := time.Unix(1_800_000_000, 0)
	f.Add(n.Current(now))
	f.Add(strings.Repeat("\r", 32))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if n.Valid(s, now) && s != n.Current(now) && s != n.Current(now.Add(-dpop.NoncePeriod)) && s != n.Current(now.Add(dpop.NoncePeriod)) {
			t.Fatalf("Valid(%q) for a nonce never made", s)
		}
	})
}

// BenchmarkNonces is what nonces cost a DPoP request at the token
// endpoint: Valid for the proof's nonce (of this period or the last),
// Current for the answer's DPoP-Nonce header.
// go test ./internal/dpop -run '^$' -bench Nonces -benchmem
func BenchmarkNonces(b *testing.B) {
	n := dpop.NewNonces([]byte("key of the servers"))
	now := time.Unix(1_800_000_000, 0)
	cur, last := n.Current(now), n.Current(now.Add(-dpop.NoncePeriod))
	b.Run("Current", func(b *testing.B) {
		for b.Loop() {
			nonceSink = n.Current(now)
		}
	})
	b.Run("Valid", func(b *testing.B) {
		for b.Loop() {
			if !n.Valid(cur, now) {
				b.Fatal("current nonce refused")
			}
		}
	})
	b.Run("Valid_last_period", func(b *testing.B) {
		for b.Loop() {
			if !n.Valid(last, now) {
				b.Fatal("last period's nonce refused")
			}
		}
	})
}

var nonceSink string
