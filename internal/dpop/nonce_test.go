package dpop_test

import (
	"strings"
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
