package verify_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/internal/dpop/dpoptest"
	"github.com/keyward/keyward/verify"
)

// FuzzVerifyDPoP: whatever DPoP proof comes with a DPoP-bound token, for
// whatever method and URL (RFC 9449 §7.1), VerifyDPoP never panics, its
// error is a *verify.Error with a code Middleware answers, a proof passes
// only for the request's method, signed with the token's key, and a proof
// that passed is refused the second time (replay). FuzzMiddleware's
// tokens are not DPoP-bound, so its proofs never reach these checks.
func FuzzVerifyDPoP(f *testing.F) {
	tk := newFuzzTokens(f)
	const target = fuzzAud + "/orders"
	proof := func(method, u, token string, at time.Time) string {
		raw, err := tk.prover.Proof(method, u, token, at)
		if err != nil {
			f.Fatal(err)
		}
		return raw
	}
	genuine := proof("GET", target, tk.bound, fuzzNow)
	f.Add("GET", target, genuine)
	f.Add("POST", target, genuine)
	f.Add("GET", fuzzAud+"/billing", genuine)
	f.Add("GET", target, proof("GET", target, tk.access[0], fuzzNow))
	f.Add("GET", target, proof("GET", target, tk.bound, fuzzNow.Add(-time.Hour)))
	f.Add("GET", target, proof("GET", target, "", fuzzNow))
	other, err := dpoptest.NewProver(f).Proof("GET", target, tk.bound, fuzzNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("GET", target, other)
	f.Add("GET", "https://ORDERS.internal:443/orders?x#y", genuine)
	f.Add("GET", target, "eyJhbGciOiJub25lIn0.e30.")
	f.Add("GET", target, strings.Replace(genuine, ".", "..", 1))
	docs := map[string][]byte{"/.well-known/oauth-authorization-server": tk.metadata, "/jwks": tk.jwks}
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	// A replay cache per input (fuzzReplays.reset): one for them all
	// would refuse the genuine proof after its first pass.
	var seen fuzzReplays
	v, err := verify.New(ctx, fuzzIssuer, fuzzAud, verify.WithHTTPClient(memoryClient(docs, http.StatusServiceUnavailable, nil)),
		verify.WithClock(func() time.Time { return fuzzNow }), verify.WithDPoPReplayCache(&seen))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, u, raw string) {
		seen.reset()
		req := verify.DPoPRequest{Method: method, URL: u, Proofs: []string{raw}}
		c, err := v.VerifyDPoP(ctx, tk.bound, req)
		if method == "GET" && u == target && raw == genuine && err != nil {
			t.Fatalf("the genuine proof refused: %v", err)
		}
		if err != nil {
			ve, ok := errors.AsType[*verify.Error](err)
			if !ok {
				t.Fatalf("VerifyDPoP's error %T (%v) is not a *verify.Error", err, err)
			}
			if !slices.Contains([]string{"invalid_dpop_proof", "invalid_token", "invalid_request", "temporarily_unavailable"}, ve.Code) || ve.Description == "" {
				t.Fatalf("refused with code %q, description %q", ve.Code, ve.Description)
			}
			return
		}
		if c.KeyThumbprint != tk.prover.JKT() {
			t.Fatalf("passed with the claims of another token: %+v", c)
		}
		// The proof passed: its key is the token's, and its htm the
		// request's method.
		header, rest, _ := strings.Cut(raw, ".")
		payload, _, _ := strings.Cut(rest, ".")
		var ph struct {
			JWK jose.JSONWebKey `json:"jwk"`
		}
		b, _ := base64.RawURLEncoding.DecodeString(header)
		if json.Unmarshal(b, &ph) != nil {
			t.Fatalf("a proof passed with the header %q", b)
		}
		if tp, err := ph.JWK.Thumbprint(crypto.SHA256); err != nil || base64.RawURLEncoding.EncodeToString(tp) != tk.prover.JKT() {
			t.Fatalf("a proof passed signed with another key than the token's (%v)", err)
		}
		var pc struct {
			HTM string `json:"htm"`
		}
		b, _ = base64.RawURLEncoding.DecodeString(payload)
		if json.Unmarshal(b, &pc) != nil || pc.HTM != method {
			t.Fatalf("a proof with htm %q passed for method %q", pc.HTM, method)
		}
		if _, err := v.VerifyDPoP(ctx, tk.bound, req); err == nil {
			t.Fatal("a proof passed twice (replay)")
		}
	})
}

// fuzzReplays is a DPoP replay cache in memory, emptied for each input.
type fuzzReplays struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (r *fuzzReplays) Seen(_ context.Context, key string, _ time.Time) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys[key] {
		return true, nil
	}
	if r.keys == nil {
		r.keys = map[string]bool{}
	}
	r.keys[key] = true
	return false, nil
}

func (r *fuzzReplays) reset() {
	r.mu.Lock()
	r.keys = nil
	r.mu.Unlock()
}
