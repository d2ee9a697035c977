package signer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// memStore is a fake Store.
type memStore struct {
	mu   sync.Mutex
	keys []storage.SigningKey
	evs  []storage.AuditEvent
}

func (m *memStore) ListSigningKeys(context.Context) ([]storage.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.keys), nil
}

func (m *memStore) UpdateSigningKeys(_ context.Context, fn func([]storage.SigningKey) ([]storage.SigningKey, error), ev storage.AuditEvent) ([]storage.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys, err := fn(slices.Clone(m.keys))
	if err != nil {
		return nil, err
	}
	m.keys = keys
	m.evs = append(m.evs, ev)
	return slices.Clone(keys), nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestSigner(t *testing.T, st Store, master []byte, alg string, c *clock) *Signer {
	t.Helper()
	sealer, err := NewSealer(master)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), st, sealer, Config{
		Policy: Policy{Algorithm: alg, RotateEvery: 30 * 24 * time.Hour, RetainFor: 2 * time.Hour},
		Now:    c.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var master = bytes.Repeat([]byte{7}, 32)

func jwksKIDs(t *testing.T, s *Signer) []string {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range set.Keys {
		if k.Use != "sig" || k.Algorithm == "" || !k.IsPublic() {
			t.Fatalf("published key %+v must be a public signing key with alg", k)
		}
		ids = append(ids, k.KeyID)
	}
	slices.Sort(ids)
	return ids
}

type claims struct {
	jwt.Claims
	Scope string `json:"scope"`
}

func TestSignVerifyRotate(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			st := &memStore{}
			c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			s := newTestSigner(t, st, master, alg, c)
			if got := jwksKIDs(t, s); len(got) != 2 {
				t.Fatalf("first start publishes %d keys, want current and next", len(got))
			}
			first := s.CurrentKeyID()
			tok, err := s.Sign(claims{Claims: jwt.Claims{Subject: "x"}, Scope: "a b"})
			if err != nil {
				t.Fatal(err)
			}
			var got claims
			if err := s.Verify(tok, &got); err != nil || got.Subject != "x" || got.Scope != "a b" {
				t.Fatalf("Verify = %v, %+v", err, got)
			}
			next := slices.DeleteFunc(jwksKIDs(t, s), func(k string) bool { return k == first })[0]

			c.t = c.t.Add(time.Minute)
			if err := s.Rotate(context.Background(), "admin-1", "10.0.0.1"); err != nil {
				t.Fatal(err)
			}
			if s.CurrentKeyID() != next {
				t.Fatalf("after rotation the current key is %s, want the published next key %s", s.CurrentKeyID(), next)
			}
			if ev := st.evs[len(st.evs)-1]; ev.Action != "signing_key.rotate" || ev.Actor != "admin-1" || ev.Source != "10.0.0.1" {
				t.Fatalf("rotation audited as %+v, want the administrator who asked", ev)
			}
			if kids := jwksKIDs(t, s); len(kids) != 3 || !slices.Contains(kids, first) {
				t.Fatalf("after rotation JWKS = %v, want previous, current and next", kids)
			}
			if err := s.Verify(tok, &got); err != nil {
				t.Fatalf("token signed before rotation no longer verifies: %v", err)
			}

			// After RetainFor, the retired key leaves the JWKS.
			c.t = c.t.Add(3 * time.Hour)
			if err := s.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if kids := jwksKIDs(t, s); len(kids) != 2 || slices.Contains(kids, first) {
				t.Fatalf("retired key still published after RetainFor: %v", kids)
			}
			if ev := st.evs[len(st.evs)-1]; ev.Actor != "system" {
				t.Fatalf("scheduled change audited as %+v, want system", ev)
			}
			if err := s.Verify(tok, &got); !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("Verify with dropped key: %v, want ErrUnknownKey", err)
			}
		})
	}
}

func TestScheduledRotationAndReload(t *testing.T) {
	st := &memStore{}
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := newTestSigner(t, st, master, "ES256", c)
	b := newTestSigner(t, st, master, "ES256", c) // a second replica
	if a.CurrentKeyID() != b.CurrentKeyID() {
		t.Fatal("two signers on one store use different keys")
	}
	first := a.CurrentKeyID()
	c.t = c.t.Add(31 * 24 * time.Hour)
	if err := a.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.CurrentKeyID() == first {
		t.Fatal("key not rotated after RotateEvery")
	}
	if err := b.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b.CurrentKeyID() != a.CurrentKeyID() || !bytes.Equal(a.JWKS(), b.JWKS()) {
		t.Fatal("the second replica did not pick up the rotation")
	}
	rotations := 0
	for _, e := range st.evs {
		if e.Action == "signing_key.rotate" {
			rotations++
		}
	}
	if rotations != 1 {
		t.Fatalf("%d rotations recorded, want exactly 1 for the cluster", rotations)
	}
}

// A change of algorithm is a rotation like any other: the key of the new
// algorithm is published first and signs only after DefaultPublishFor, so
// resource servers' cached key sets know its kid before they meet it.
func TestAlgorithmChange(t *testing.T) {
	st := &memStore{}
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	es := newTestSigner(t, st, master, "ES256", c)
	tok, _ := es.Sign(claims{Scope: "a"})
	ed := newTestSigner(t, st, master, "EdDSA", c)
	published := jwksKIDs(t, ed)
	raw, _ := ed.Sign(claims{Scope: "b"})
	if _, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256}); err != nil || ed.CurrentKeyID() != es.CurrentKeyID() {
		t.Fatalf("right after the switch the ES256 key must still sign, while the EdDSA key is published: %v", err)
	}
	if len(published) != 2 {
		t.Fatalf("published %v, want the ES256 key and the next EdDSA key", published)
	}
	c.t = c.t.Add(DefaultPublishFor - time.Second)
	if err := ed.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ed.CurrentKeyID() != es.CurrentKeyID() {
		t.Fatal("the EdDSA key signed before it was published for DefaultPublishFor")
	}
	c.t = c.t.Add(time.Second)
	if err := ed.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw, _ = ed.Sign(claims{Scope: "b"})
	if _, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA}); err != nil {
		t.Fatalf("after publishing, tokens are not EdDSA: %v", err)
	}
	if !slices.Contains(published, ed.CurrentKeyID()) {
		t.Fatalf("the EdDSA key %s was not among the keys published at the switch %v", ed.CurrentKeyID(), published)
	}
	var got claims
	if err := ed.Verify(tok, &got); err != nil {
		t.Fatalf("ES256 token no longer verifies after the switch: %v", err)
	}
}

func TestWrongMasterKey(t *testing.T) {
	st := &memStore{}
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	newTestSigner(t, st, master, "ES256", c)
	sealer, _ := NewSealer(bytes.Repeat([]byte{8}, 32))
	_, err := New(context.Background(), st, sealer, Config{Policy: Policy{Algorithm: "ES256"}, Now: c.now})
	if !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("New with another master key: %v, want ErrWrongMasterKey", err)
	}
	// A sealed key moved to another ID does not open either.
	good, _ := NewSealer(master)
	k := st.keys[0]
	if _, err := good.Open(k.ID, k.Sealed); err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := good.Open("other-id", k.Sealed); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("Open under another ID: %v, want ErrWrongMasterKey", err)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := NewSealer([]byte("short")); err == nil {
		t.Fatal("NewSealer accepted a 5-byte key")
	}
	sealer, _ := NewSealer(master)
	if _, err := New(context.Background(), &memStore{}, sealer, Config{Policy: Policy{Algorithm: "HS256"}}); err == nil || !strings.Contains(err.Error(), "HS256") {
		t.Fatalf("New accepted HS256: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	st := &memStore{}
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newTestSigner(t, st, master, "ES256", c)
	other := newTestSigner(t, &memStore{}, master, "ES256", c)
	foreign, _ := other.Sign(claims{Scope: "a"})

	// Same store, so the same key, but typ JWT instead of at+jwt.
	sealer, _ := NewSealer(master)
	plain, err := New(context.Background(), st, sealer, Config{Policy: Policy{Algorithm: "ES256"}, Type: "JWT", Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	wrongTyp, _ := plain.Sign(claims{Scope: "a"})
	tests := map[string]string{
		"foreign key": foreign,
		"wrong typ":   wrongTyp,
		"alg none":    "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzY29wZSI6ImEifQ.",
		"garbage":     "not a jwt",
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			var got claims
			if err := s.Verify(raw, &got); err == nil {
				t.Fatal("Verify accepted it")
			}
		})
	}
}

func TestPlan(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := Policy{Algorithm: "ES256", RotateEvery: time.Hour, RetainFor: time.Hour}
	n := 0
	newKey := func() (storage.SigningKey, error) {
		n++
		return storage.SigningKey{ID: "new" + string(rune('0'+n)), Algorithm: "ES256", CreatedAt: now}, nil
	}
	cur := storage.SigningKey{ID: "cur", Algorithm: "ES256", ActivatedAt: now.Add(-time.Minute)}
	next := storage.SigningKey{ID: "next", Algorithm: "ES256"}
	old := storage.SigningKey{ID: "old", Algorithm: "ES256", ActivatedAt: now.Add(-3 * time.Hour), RetiredAt: now.Add(-2 * time.Hour)}
	rsaCur := storage.SigningKey{ID: "rsa", Algorithm: "RS256", ActivatedAt: now.Add(-time.Minute)}
	youngNext := storage.SigningKey{ID: "young", Algorithm: "ES256", CreatedAt: now.Add(-time.Minute)}
	publishedNext := storage.SigningKey{ID: "published", Algorithm: "ES256", CreatedAt: now.Add(-DefaultPublishFor)}
	tests := []struct {
		name        string
		keys        []storage.SigningKey
		force       bool
		wantChanged bool
		wantCurrent string
		wantLen     int
	}{
		{"steady", []storage.SigningKey{cur, next}, false, false, "cur", 2},
		{"empty", nil, false, true, "new1", 2},
		{"force", []storage.SigningKey{cur, next}, true, true, "next", 3},
		{"drops old", []storage.SigningKey{old, cur, next}, false, true, "cur", 2},
		{"missing next", []storage.SigningKey{cur}, false, true, "cur", 2},
		{"due", []storage.SigningKey{{ID: "cur", Algorithm: "ES256", ActivatedAt: now.Add(-2 * time.Hour)}, next}, false, true, "next", 3},
		{"wrong alg next", []storage.SigningKey{cur, {ID: "rsa", Algorithm: "RS256"}}, false, true, "cur", 2},
		{"new alg is published first", []storage.SigningKey{rsaCur}, false, true, "rsa", 2},
		{"new alg waits while young", []storage.SigningKey{rsaCur, youngNext}, false, false, "rsa", 2},
		{"new alg signs once published", []storage.SigningKey{rsaCur, publishedNext}, false, true, "published", 3},
		{"new alg with force", []storage.SigningKey{rsaCur}, true, true, "new1", 3},
		{"due waits for a young next", []storage.SigningKey{{ID: "cur", Algorithm: "ES256", ActivatedAt: now.Add(-2 * time.Hour)}, youngNext}, false, false, "cur", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n = 0
			got, changed, err := p.Plan(tt.keys, now, tt.force, newKey)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.wantChanged || len(got) != tt.wantLen {
				t.Fatalf("changed=%v len=%d, want %v %d: %+v", changed, len(got), tt.wantChanged, tt.wantLen, got)
			}
			currents, nexts := 0, 0
			for _, k := range got {
				switch {
				case !k.RetiredAt.IsZero():
				case !k.ActivatedAt.IsZero():
					currents++
					if k.ID != tt.wantCurrent {
						t.Fatalf("current = %s, want %s", k.ID, tt.wantCurrent)
					}
				default:
					nexts++
				}
			}
			if currents != 1 || nexts != 1 {
				t.Fatalf("%d current and %d next keys, want 1 and 1", currents, nexts)
			}
		})
	}
}

// A token whose header says b64 false (RFC 7797) is refused even when the
// signing key signed it: go-jose would check the signature over the raw
// claims and read the claims from the base64url segment, and a JWT's
// claims are always base64url-encoded (RFC 7519 §3). The introspection and
// revocation endpoints pass client input here.
func TestVerifyRefusesUnencodedPayload(t *testing.T) {
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newTestSigner(t, &memStore{}, master, "ES256", c)
	set := s.set.Load()
	payload := []byte(`{"iss":"https://issuer.example","jti":"j","scope":"a"}`)
	for name, hdr := range map[string]string{
		"b64 false, critical": `{"alg":"ES256","kid":"` + set.currentID + `","typ":"at+jwt","b64":false,"crit":["b64"]}`,
		"b64 false":           `{"alg":"ES256","kid":"` + set.currentID + `","typ":"at+jwt","b64":false}`,
		"b64 not a bool":      `{"alg":"ES256","kid":"` + set.currentID + `","typ":"at+jwt","b64":"false"}`,
	} {
		t.Run(name, func(t *testing.T) {
			h := b64.EncodeToString([]byte(hdr))
			input := []byte(h + ".")
			if strings.Contains(hdr, "b64\":false") {
				input = append(input, payload...) // RFC 7797: the raw payload is signed
			} else {
				input = append(input, b64.EncodeToString(payload)...)
			}
			sig, err := set.current.sign(nil, input)
			if err != nil {
				t.Fatal(err)
			}
			raw := h + "." + b64.EncodeToString(payload) + "." + string(sig)
			var got claims
			if err := s.Verify(raw, &got); err == nil {
				t.Fatalf("Verify accepted a token with %s", hdr)
			}
		})
	}
	// b64 true, the default, stays accepted, with or without crit.
	h := b64.EncodeToString([]byte(`{"alg":"ES256","kid":"` + set.currentID + `","typ":"at+jwt","b64":true,"crit":["b64"]}`))
	input := h + "." + b64.EncodeToString(payload)
	sig, err := set.current.sign(nil, []byte(input))
	if err != nil {
		t.Fatal(err)
	}
	var got claims
	if err := s.Verify(input+"."+string(sig), &got); err != nil || got.Scope != "a" {
		t.Fatalf("b64 true: Verify = %v, scope %q", err, got.Scope)
	}
}

// pausedStore is a memStore whose next ListSigningKeys, once armed, hands
// out what the store holds and then waits until released: a Refresh that
// read the keys just before a rotation committed.
type pausedStore struct {
	*memStore
	armed    atomic.Bool
	read     chan struct{}
	released chan struct{}
}

func (p *pausedStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	keys, err := p.memStore.ListSigningKeys(ctx)
	if p.armed.CompareAndSwap(true, false) {
		close(p.read)
		<-p.released
	}
	return keys, err
}

// A Refresh that read the keys before a rotation and finishes after it
// does not put the keys it read back in use: the rotated-out key would
// sign again, and the new next key leave the JWKS, until the next refresh.
func TestRefreshDoesNotUndoAConcurrentRotation(t *testing.T) {
	st := &pausedStore{memStore: &memStore{}, read: make(chan struct{}), released: make(chan struct{})}
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newTestSigner(t, st, master, "ES256", c)
	before := s.CurrentKeyID()

	st.armed.Store(true)
	refreshed := make(chan error)
	go func() { refreshed <- s.Refresh(context.Background()) }()
	<-st.read
	if err := s.Rotate(context.Background(), "admin-1", ""); err != nil {
		t.Fatal(err)
	}
	rotated, published := s.CurrentKeyID(), s.JWKS()
	if rotated == before {
		t.Fatal("Rotate did not change the current key")
	}
	close(st.released)
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if got := s.CurrentKeyID(); got != rotated {
		t.Fatalf("after the slower Refresh the current key is %s, want %s (the key rotated out is %s)", got, rotated, before)
	}
	if !bytes.Equal(s.JWKS(), published) {
		t.Fatalf("after the slower Refresh the JWKS is\n%s\nwant the one after the rotation\n%s", s.JWKS(), published)
	}
}

// A stored key that is not of the algorithm its row names (an edited
// export, say) is refused whatever its state, as the current one always
// was: published as a next or retired key it would carry an alg no
// verifier can use it with, and a next one would stop every replica once
// it became current.
func TestLoadRefusesKeyOfAnotherAlgorithm(t *testing.T) {
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	sealer, _ := NewSealer(master)
	for _, tc := range []struct {
		name, keyAlg, rowAlg string
		retired              bool
	}{
		// A next key named other than the policy's algorithm is replaced
		// before it is loaded (Plan): these name the policy's.
		{"next RSA key named ES256", "RS256", "ES256", false},
		{"next Ed25519 key named ES256", "EdDSA", "ES256", false},
		{"retired EC key named RS256", "ES256", "RS256", true},
		{"retired RSA key named EdDSA", "RS256", "EdDSA", true},
		{"retired Ed25519 key named HS256", "EdDSA", "HS256", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &memStore{}
			newTestSigner(t, st, master, "ES256", c)
			priv, err := generate(tc.keyAlg)
			if err != nil {
				t.Fatal(err)
			}
			der, _ := x509.MarshalPKCS8PrivateKey(priv)
			k := storage.SigningKey{ID: "odd", Algorithm: tc.rowAlg, Sealed: sealer.Seal("odd", der), CreatedAt: c.t.Add(-time.Hour)}
			if tc.retired {
				k.ActivatedAt, k.RetiredAt = c.t.Add(-time.Hour), c.t.Add(-time.Minute)
			} else {
				st.keys = slices.DeleteFunc(st.keys, func(k storage.SigningKey) bool { return k.ActivatedAt.IsZero() })
			}
			st.keys = append(st.keys, k)
			s, err := New(context.Background(), st, sealer, Config{Policy: Policy{Algorithm: "ES256", RetainFor: 2 * time.Hour}, Now: c.now})
			if err == nil {
				t.Fatalf("New loaded a %s key named %s; JWKS %s", tc.keyAlg, tc.rowAlg, s.JWKS())
			}
			if !strings.Contains(err.Error(), "signing key odd") {
				t.Fatalf("New: %v, want it to name the key", err)
			}
		})
	}
}

// Two replicas that find a rotation due at once rotate once, and record
// one rotation: the one that takes the store's lock second finds nothing
// left to change, and writes nothing, not the same keys again with an
// audit event of a rotation that did not happen.
func TestConcurrentScheduledRotationIsRecordedOnce(t *testing.T) {
	st := &pausedStore{memStore: &memStore{}, read: make(chan struct{}), released: make(chan struct{})}
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := newTestSigner(t, st, master, "ES256", c)
	b := newTestSigner(t, st, master, "ES256", c)
	c.t = c.t.Add(31 * 24 * time.Hour)
	events := len(st.evs)

	st.armed.Store(true)
	refreshed := make(chan error)
	go func() { refreshed <- a.Refresh(context.Background()) }()
	<-st.read // a found the rotation due
	if err := b.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(st.released)
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if got := st.evs[events:]; len(got) != 1 || got[0].Action != "signing_key.rotate" {
		t.Fatalf("recorded %+v, want one signing_key.rotate", got)
	}
	if a.CurrentKeyID() != b.CurrentKeyID() || !bytes.Equal(a.JWKS(), b.JWKS()) {
		t.Fatal("the replicas use different keys after the rotation")
	}
}

// txStore is a memStore that knows when UpdateSigningKeys's transaction is
// open, and that runs beforeUpdate, once, just before it opens: another
// replica's change after this one read the keys.
type txStore struct {
	*memStore
	inTx         atomic.Bool
	beforeUpdate func()
}

func (s *txStore) UpdateSigningKeys(ctx context.Context, fn func([]storage.SigningKey) ([]storage.SigningKey, error), ev storage.AuditEvent) ([]storage.SigningKey, error) {
	if f := s.beforeUpdate; f != nil {
		s.beforeUpdate = nil
		f()
	}
	return s.memStore.UpdateSigningKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		s.inTx.Store(true)
		defer s.inTx.Store(false)
		return fn(old)
	}, ev)
}

// Every new signing key is generated once, before the store's transaction,
// and stored: generating one (an RSA key takes 0.1–1 s) while the
// transaction holds SQLite's one writer lock would stall every write, token
// issuance's included, and generating it again in there threw away the
// first.
func TestKeysAreGeneratedOnceOutsideTheTransaction(t *testing.T) {
	st := &txStore{memStore: &memStore{}}
	generated := 0
	orig := newPrivateKey
	t.Cleanup(func() { newPrivateKey = orig })
	newPrivateKey = func(alg string) (crypto.Signer, error) {
		if st.inTx.Load() {
			t.Errorf("a %s key was generated while the store's transaction was open", alg)
		}
		generated++
		return orig(alg)
	}
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	sealer, _ := NewSealer(master)
	var s *Signer
	start := func(alg string) func() error {
		return func() (err error) {
			s, err = New(context.Background(), st, sealer, Config{Policy: Policy{Algorithm: alg, RotateEvery: 30 * 24 * time.Hour, RetainFor: 2 * time.Hour}, Now: c.now})
			return err
		}
	}
	rotate := func() error { return s.Rotate(context.Background(), "admin-1", "") }
	refresh := func() error { return s.Refresh(context.Background()) }
	steps := []struct {
		name   string
		before func()
		do     func() error
		want   int // keys generated, and stored
	}{
		{"first start", nil, start("ES256"), 2},
		{"steady refresh", nil, refresh, 0},
		{"rotate", nil, rotate, 1},
		{"scheduled rotation", func() { c.t = c.t.Add(31 * 24 * time.Hour) }, refresh, 1},
		{"change of algorithm", nil, start("EdDSA"), 1},
		{"rotate after another replica replaced the next key", func() {
			// It runs with ES256: its next key, put in while this
			// one generated, makes the change need two new keys.
			st.beforeUpdate = func() {
				priv, _ := generate("ES256")
				der, _ := x509.MarshalPKCS8PrivateKey(priv)
				for i, k := range st.keys {
					if k.ActivatedAt.IsZero() {
						st.keys[i] = storage.SigningKey{ID: "other", Algorithm: "ES256", Sealed: sealer.Seal("other", der), CreatedAt: c.t}
					}
				}
			}
		}, rotate, 2},
	}
	for _, step := range steps {
		if step.before != nil {
			step.before()
		}
		before := map[string]bool{"other": true}
		for _, k := range st.keys {
			before[k.ID] = true
		}
		generated = 0
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		stored := 0
		for _, k := range st.keys {
			if !before[k.ID] {
				stored++
			}
		}
		if generated != step.want || stored != step.want {
			t.Errorf("%s: generated %d keys and stored %d, want %d of each", step.name, generated, stored, step.want)
		}
	}
}

// The audit event of a change names what the change replaced, as the
// store's transaction finds it, not as read before: a replica that found
// no keys, and plans their creation, while another replica creates them,
// records the rotation of those keys it then makes, not a second create.
func TestRotationActionIsTheTransactions(t *testing.T) {
	st := &txStore{memStore: &memStore{}}
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	sealer, _ := NewSealer(master)
	// The other replica runs with RS256: its keys, created while this
	// one planned with ES256, are not this one's policy, so this one
	// still changes them.
	st.beforeUpdate = func() {
		if _, err := New(context.Background(), st.memStore, sealer, Config{Policy: Policy{Algorithm: "RS256", RotateEvery: 30 * 24 * time.Hour, RetainFor: 2 * time.Hour}, Now: c.now}); err != nil {
			t.Fatal(err)
		}
	}
	newTestSigner(t, st, master, "ES256", c)
	var got []string
	for _, ev := range st.evs {
		got = append(got, ev.Action)
	}
	if want := []string{"signing_key.create", "signing_key.rotate"}; !slices.Equal(got, want) {
		t.Fatalf("recorded %q, want %q", got, want)
	}
}

// TestSignedTokensStay: serialize returns a string over the bytes it
// wrote (unsafe.String), and Sign writes an Appender's claims into a
// pooled buffer. A token must not change after it is returned: should that
// buffer, or serialize's own, ever be pooled and written again, tokens
// already handed out would change under their holders.
func TestSignedTokensStay(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			s := newTestSigner(t, &memStore{}, master, alg, &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
			var toks, copies []string
			for i := range 40 {
				var tok string
				var err error
				if i%2 == 0 {
					tok, err = s.Sign(&oauth2.AccessClaims{Issuer: "https://keyward.internal", Audience: oauth2.Audience{"https://orders.internal"}, Subject: strings.Repeat("s", i), Scope: "a", ID: strconv.Itoa(i)})
				} else {
					tok, err = s.Sign(claims{Claims: jwt.Claims{Subject: strings.Repeat("s", i)}, Scope: "a"})
				}
				if err != nil {
					t.Fatal(err)
				}
				toks, copies = append(toks, tok), append(copies, strings.Clone(tok))
			}
			for i := range toks {
				if toks[i] != copies[i] {
					t.Fatalf("token %d changed after later ones were signed:\n%s\nwas\n%s", i, toks[i], copies[i])
				}
				if err := s.Verify(toks[i], &claims{}); err != nil {
					t.Fatalf("token %d: %v", i, err)
				}
			}
		})
	}
}

// failingStore fails to list the keys once fail is set.
type failingStore struct {
	*memStore
	fail atomic.Bool
}

func (f *failingStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	if f.fail.Load() {
		return nil, errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")
	}
	return f.memStore.ListSigningKeys(ctx)
}

// A failed refresh's error line says what it means for the replica (it
// keeps its keys, rotations wait) and names the key it keeps signing
// with: "refreshing signing keys failed" alone, at ERROR every minute,
// left operators guessing whether tokens were still issued. It says so in
// one sentence; it took two, about a rotation made here and one made on
// another replica apart.
func TestRunLogsWhatAFailedRefreshMeans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &failingStore{memStore: &memStore{}}
		c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s := newTestSigner(t, st, master, "ES256", c)
		var logs bytes.Buffer
		s.cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		st.fail.Store(true)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx, time.Minute) }()
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		cancel()
		<-done
		got := logs.String()
		for _, want := range []string{
			`level=ERROR msg="refreshing signing keys failed: until a refresh succeeds, this replica keeps signing with the keys it has and publishing the same JWKS, and makes and sees no rotation (while refreshes fail, this is logged at most once every 10m0s)"`,
			`err="load signing keys: dial tcp 10.0.0.5:5432: connect: connection refused"`,
			"current_key=" + s.CurrentKeyID(),
			"retry_every=1m0s",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("log\n%s\ndoes not contain %s", got, want)
			}
		}
	})
}

// Refreshes that keep failing are logged as failurelog has it: the first,
// then a count every ten refresh intervals, then the first success. An
// error at every minutely refresh, the same line 60 times an hour, buried
// the log while the store was down, and nothing said when it was over.
func TestRunSummarisesFailedRefreshes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &failingStore{memStore: &memStore{}}
		c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s := newTestSigner(t, st, master, "ES256", c)
		start := time.Now()
		s.cfg.Now = func() time.Time { return c.t.Add(time.Since(start)) } // the bubble's clock
		var logs, jsonLogs bytes.Buffer
		s.cfg.Logger = slog.New(slog.NewMultiHandler(slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&jsonLogs, nil)))
		st.fail.Store(true)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx, time.Minute) }()
		time.Sleep(25*time.Minute + time.Second) // 25 failed refreshes
		synctest.Wait()
		st.fail.Store(false)
		time.Sleep(time.Minute) // one that succeeds
		synctest.Wait()
		cancel()
		<-done

		key := "current_key=" + s.CurrentKeyID()
		want := []struct{ level, msg, attrs string }{
			{"ERROR", `"refreshing signing keys failed: `, key + " retry_every=1m0s"},
			{"ERROR", `"refreshing signing keys still fails: `, key + " failing_for=10m0s failed_refreshes=10"},
			{"ERROR", `"refreshing signing keys still fails: `, key + " failing_for=20m0s failed_refreshes=10"},
			{"INFO", `"signing keys refreshed again"`, "failed_for=25m0s " + key},
		}
		lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
		if len(lines) != len(want) {
			t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), logs.String())
		}
		for i, w := range want {
			if !strings.Contains(lines[i], "level="+w.level+" msg="+w.msg) || !strings.Contains(lines[i], w.attrs) {
				t.Errorf("line %d:\n%s\nwant level=%s msg=%s… with %s", i, lines[i], w.level, w.msg, w.attrs)
			}
		}
		// In JSON, durations are integers of nanoseconds, as slog writes
		// took and grace: failed_for was the string "25m0s".
		for _, w := range []string{`"retry_every":60000000000`, `"failing_for":600000000000`, `"failing_for":1200000000000`, `"failed_for":1500000000000`} {
			if !strings.Contains(jsonLogs.String(), w) {
				t.Errorf("JSON log lacks %s:\n%s", w, jsonLogs.String())
			}
		}
	})
}

// The line that names the key signing calls it current_key, as the lines
// about failed refreshes do: it was kid there.
func TestKeyInUseLogged(t *testing.T) {
	var logs bytes.Buffer
	sealer, err := NewSealer(master)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, err := New(context.Background(), &memStore{}, sealer, Config{
		Policy: Policy{Algorithm: "ES256", RotateEvery: 30 * 24 * time.Hour, RetainFor: 2 * time.Hour},
		Now:    c.now, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `msg="signing key in use" current_key=` + s.CurrentKeyID() + " alg=ES256 "
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log\n%s\nlacks %s", logs.String(), want)
	}
}
