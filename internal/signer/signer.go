// Package signer owns the server's token-signing keys: it generates them,
// keeps them encrypted at rest, rotates them, signs access tokens with the
// current key and publishes next, current and previous keys as a JWKS. It
// also keeps the client-secret pepper sealed beside them, and rotates the
// master key that seals both.
package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/failurelog"
	"github.com/keyward/keyward/internal/jsonappend"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// Supported signing algorithms.
var Algorithms = []string{string(jose.ES256), string(jose.RS256), string(jose.EdDSA)}

// Store is the part of storage the signer needs.
type Store interface {
	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	UpdateSigningKeys(ctx context.Context, fn func([]storage.SigningKey) ([]storage.SigningKey, error), ev storage.AuditEvent) ([]storage.SigningKey, error)
}

// Config configures a Signer.
type Config struct {
	Policy
	// Type is the JWS typ header of signed tokens; RFC 9068 says at+jwt.
	Type string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives rotation messages; nil discards them.
	Logger *slog.Logger
}

// Signer signs access tokens and publishes its public keys.
type Signer struct {
	store  Store
	sealer *Sealer
	cfg    Config
	set    atomic.Pointer[keySet]
}

// keySet is an immutable snapshot of the usable keys.
type keySet struct {
	current   *compactSigner
	currentID string
	// currentAlg is the current key's algorithm: after a change of
	// --signing-alg, the old one until the new key has been published.
	currentAlg string
	activated  time.Time
	public     map[string]jose.JSONWebKey // kid → public key
	algs       []jose.SignatureAlgorithm
	jwks       []byte
}

// New loads the signing keys, creating and activating them on first start.
func New(ctx context.Context, store Store, sealer *Sealer, cfg Config) (*Signer, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Type == "" {
		cfg.Type = "at+jwt"
	}
	if !slices.Contains(Algorithms, cfg.Algorithm) {
		return nil, fmt.Errorf("unsupported signing algorithm %q (want one of %v)", cfg.Algorithm, Algorithms)
	}
	s := &Signer{store: store, sealer: sealer, cfg: cfg}
	if err := s.update(ctx, false, "system", ""); err != nil {
		return nil, err
	}
	return s, nil
}

// Rotate makes the next key the current one at once and creates a new next
// key. The key it replaces stays published for RetainFor. The audit event
// names actor, who asked for it, and source, from where.
func (s *Signer) Rotate(ctx context.Context, actor, source string) error {
	return s.update(ctx, true, actor, source)
}

// Refresh applies the rotation schedule and reloads the keys from the store,
// picking up rotations made by other replicas.
func (s *Signer) Refresh(ctx context.Context) error { return s.update(ctx, false, "system", "") }

// refreshLogIntervals is how many refresh intervals pass, at least, between
// the lines that say the refreshes still fail: an error at every minutely
// refresh buried the log under the same line for as long as the store
// was down.
const refreshLogIntervals = 10

// Run refreshes the keys every interval until ctx ends. A refresh that
// fails changes nothing: the keys loaded before stay in use, and the log
// line says so. Failures that go on are logged as failurelog has it: at
// the first, then at most once each refreshLogIntervals intervals with a
// count, and once more at the first refresh that succeeds.
func (s *Signer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failures := failurelog.Spell{Every: max(failurelog.Every, refreshLogIntervals*interval)}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := s.Refresh(ctx)
			if ctx.Err() != nil {
				return
			}
			s.noteRefresh(&failures, err, interval)
		}
	}
}

// noteRefresh logs the outcome err of a scheduled refresh, in the spell
// of failures it belongs to.
func (s *Signer) noteRefresh(failures *failurelog.Spell, err error, interval time.Duration) {
	now := s.cfg.Now()
	if err == nil {
		if d, ok := failures.Succeeded(now); ok {
			s.cfg.Logger.Info("signing keys refreshed again", "failed_for", d.Round(time.Second), "current_key", s.CurrentKeyID())
		}
		return
	}
	switch n := failures.Failed(now); {
	case n.First:
		s.cfg.Logger.Error("refreshing signing keys failed: until a refresh succeeds, this replica keeps signing with the keys it has and publishing the same JWKS, "+
			"and makes and sees no rotation (while refreshes fail, this is logged at most once every "+failures.Every.String()+")",
			"err", err, "current_key", s.CurrentKeyID(), "retry_every", interval)
	case n.Again:
		s.cfg.Logger.Error("refreshing signing keys still fails: this replica keeps signing with the keys it has, and makes and sees no rotation",
			"err", err, "current_key", s.CurrentKeyID(), "failing_for", n.For.Round(time.Second), "failed_refreshes", n.Failures)
	}
}

// update applies the schedule (or, if force, rotates now) and reloads the
// keys; the audit event of a change names actor, from source.
func (s *Signer) update(ctx context.Context, force bool, actor, source string) error {
	// Updates run at once (the refresh ticker, another replica's change
	// notice, an administrator's rotation). The keys read here replace
	// prev only if no other update replaced it meanwhile: that one may
	// have read (or written) newer keys than these, which would otherwise
	// be put back in use — a rotated-out key signing again, the new next
	// key gone from the JWKS — until the next refresh.
	prev := s.set.Load()
	keys, err := s.plan(ctx, force, actor, source)
	if err != nil {
		return err
	}
	for {
		set, err := s.load(keys)
		if err != nil {
			return err
		}
		if s.set.CompareAndSwap(prev, set) {
			s.logChange(prev, set)
			return nil
		}
		// Another update stored keys since this one read: read again,
		// after it.
		prev = s.set.Load()
		if keys, err = s.store.ListSigningKeys(ctx); err != nil {
			return fmt.Errorf("load signing keys: %w", err)
		}
	}
}

// maxPlanAttempts bounds how often plan reads the keys again because
// another replica changed them so that the keys it generated for the
// change do not suffice.
const maxPlanAttempts = 3

// plan applies the schedule (or, if force, rotates now) to the stored keys
// and returns the keys stored afterwards. It generates the
// new keys before the store's transaction and, in it, only plans again
// with them: generating a key (an RSA one above all, 0.1–1 s) while the
// transaction holds SQLite's one writer lock would stall every write,
// token issuance's included. Each key is generated once and stored, unless
// another replica made the change first.
func (s *Signer) plan(ctx context.Context, force bool, actor, source string) ([]storage.SigningKey, error) {
	fresh := &freshKeys{generate: s.newKey}
	for attempt := 1; ; attempt++ {
		now := s.cfg.Now()
		keys, err := s.store.ListSigningKeys(ctx)
		if err != nil {
			return nil, fmt.Errorf("load signing keys: %w", err)
		}
		fresh.rewind()
		_, changed, err := s.cfg.Plan(keys, now, force, fresh.next)
		if err != nil || !changed {
			return keys, err
		}
		// Plan again under the store's lock: another replica may have
		// rotated since we read. The audit event is chosen from the keys
		// read; the transaction writes it only if the keys it replaces
		// agree (none for a create), else this plans again from a new read.
		create := len(keys) == 0
		action := "signing_key.rotate"
		if create {
			action = "signing_key.create"
		}
		keys, err = s.store.UpdateSigningKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
			// Never add a key sealed under another master key than the
			// stored ones: after a master-key rotation, a server still
			// running with the old key must not write.
			for _, k := range old {
				if _, err := s.sealer.Open(k.ID, k.Sealed); err != nil {
					return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
				}
			}
			fresh.rewind()
			planned, changed, err := s.cfg.Plan(old, now, force, fresh.generated)
			if err == nil && !changed {
				// Another replica made the change first: write
				// nothing, and record no change that did not happen.
				return nil, errNoChange
			}
			if err == nil && create != (len(old) == 0) {
				return nil, errActionChanged
			}
			return planned, err
		}, storage.AuditEvent{Time: now, Action: action, Outcome: storage.OutcomeSuccess, Actor: actor, Source: source})
		switch {
		case errors.Is(err, errNoChange):
			keys, err = s.store.ListSigningKeys(ctx)
			if err != nil {
				return nil, fmt.Errorf("load signing keys: %w", err)
			}
			return keys, nil
		case errors.Is(err, errNeedKey) && attempt < maxPlanAttempts:
			// Another replica changed the keys so that the change needs
			// more new keys than were generated: generate them, outside
			// the transaction, and try again.
			continue
		case errors.Is(err, errActionChanged) && attempt < maxPlanAttempts:
			// Another replica created the first keys (or the store
			// emptied) since the read: plan again from what is there, so
			// the audit event names what the change is.
			continue
		case err != nil:
			return nil, fmt.Errorf("rotate signing keys: %w", err)
		}
		return keys, nil
	}
}

// freshKeys hands Plan new keys: next generates them as needed and keeps
// them; generated hands out only those kept, in the same order, so that a
// second Plan in the store's transaction stores the keys the first one
// generated instead of generating (and discarding) others.
type freshKeys struct {
	generate func() (storage.SigningKey, error)
	keys     []storage.SigningKey
	used     int
}

// rewind starts handing out the kept keys from the first again.
func (f *freshKeys) rewind() { f.used = 0 }

// next returns the next kept key, or generates and keeps a new one.
func (f *freshKeys) next() (storage.SigningKey, error) {
	if f.used == len(f.keys) {
		k, err := f.generate()
		if err != nil {
			return storage.SigningKey{}, err
		}
		f.keys = append(f.keys, k)
	}
	f.used++
	return f.keys[f.used-1], nil
}

// generated returns the next kept key, or errNeedKey when none is left.
func (f *freshKeys) generated() (storage.SigningKey, error) {
	if f.used == len(f.keys) {
		return storage.SigningKey{}, errNeedKey
	}
	f.used++
	return f.keys[f.used-1], nil
}

// logChange logs what changed from the keys in use, old, to set.
func (s *Signer) logChange(old, set *keySet) {
	if old == nil || old.currentID != set.currentID {
		s.cfg.Logger.Info("signing key in use", "current_key", set.currentID, "alg", set.currentAlg, "published_keys", len(set.public))
	}
	if set.currentAlg != s.cfg.Algorithm && (old == nil || old.currentAlg != set.currentAlg) {
		s.cfg.Logger.Info("the signing algorithm changes once the new key has been published", "from", set.currentAlg, "to", s.cfg.Algorithm, "publish_for", s.cfg.publishFor())
	}
}

// errNoChange ends, without writing, an update of the signing keys that
// finds under the store's lock that they need no change.
var errNoChange = errors.New("the signing keys need no change")

// errNeedKey ends, without writing, an update of the signing keys that
// finds under the store's lock that the change needs more new keys than
// were generated before it took the lock.
var errNeedKey = errors.New("the signing keys changed meanwhile and need more new keys; try again")

// errActionChanged ends, without writing, an update of the signing keys
// that finds under the store's lock that it would record a create of keys
// that exist, or a rotation of keys that do not.
var errActionChanged = errors.New("the signing keys were created or removed meanwhile; try again")

func (s *Signer) newKey() (storage.SigningKey, error) {
	priv, err := newPrivateKey(s.cfg.Algorithm)
	if err != nil {
		return storage.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, err
	}
	id := randomKID()
	return storage.SigningKey{ID: id, Algorithm: s.cfg.Algorithm, Sealed: s.sealer.Seal(id, der), CreatedAt: s.cfg.Now()}, nil
}

func (s *Signer) load(keys []storage.SigningKey) (*keySet, error) {
	set := &keySet{public: make(map[string]jose.JSONWebKey, len(keys))}
	var pub jose.JSONWebKeySet
	seen := map[jose.SignatureAlgorithm]bool{}
	for _, k := range keys {
		der, err := s.sealer.Open(k.ID, k.Sealed)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		signer, ok := priv.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("signing key %s: unsupported key type %T", k.ID, priv)
		}
		// Every key, not only the current one, must be of its
		// algorithm: one that is not would be published under an alg no
		// verifier can use it with and, once a next key, refused as the
		// current one by every replica.
		cs, err := newCompactSigner(k.Algorithm, k.ID, s.cfg.Type, signer)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		alg := jose.SignatureAlgorithm(k.Algorithm)
		jwk := jose.JSONWebKey{Key: signer.Public(), KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"}
		set.public[k.ID] = jwk
		pub.Keys = append(pub.Keys, jwk)
		if !seen[alg] {
			seen[alg] = true
			set.algs = append(set.algs, alg)
		}
		if !k.ActivatedAt.IsZero() && k.RetiredAt.IsZero() {
			set.current = cs
			set.currentID, set.currentAlg, set.activated = k.ID, k.Algorithm, k.ActivatedAt
		}
	}
	if set.current == nil {
		return nil, errors.New("no current signing key")
	}
	var err error
	if set.jwks, err = json.Marshal(pub); err != nil {
		return nil, err
	}
	return set, nil
}

// Sign serializes claims as a JWT signed with the current key. It signs the
// JSON of claims as it is, without go-jose's round trip through a map;
// claims that write their own JSON (a jsonappend.Appender) skip reflection.
func (s *Signer) Sign(claims any) (string, error) {
	a, ok := claims.(jsonappend.Appender)
	if !ok {
		payload, err := json.Marshal(claims)
		if err != nil {
			return "", err
		}
		return s.set.Load().current.serialize(payload)
	}
	buf := payloadBuffers.Get().(*[]byte)
	*buf = a.AppendJSON((*buf)[:0])
	raw, err := s.set.Load().current.serialize(*buf)
	if cap(*buf) <= 64<<10 {
		payloadBuffers.Put(buf)
	}
	return raw, err
}

// payloadBuffers hold claims while they are signed: serialize copies them.
var payloadBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// CurrentKeyID is the kid of the key signing now.
func (s *Signer) CurrentKeyID() string { return s.set.Load().currentID }

// CurrentKeyAge is how long the current key has been signing.
func (s *Signer) CurrentKeyAge() time.Duration { return s.cfg.Now().Sub(s.set.Load().activated) }

// JWKS returns the published key set as JSON (RFC 7517 §5).
func (s *Signer) JWKS() []byte { return s.set.Load().jwks }

// ErrUnknownKey means a token names a kid that is not published.
var ErrUnknownKey = errors.New("the token was not signed by a published signing key")

// Verify checks that raw is a JWT of the configured type signed by one of
// the published keys and decodes its claims into dest. It checks only the
// signature and type; callers check the claims.
func (s *Signer) Verify(raw string, dest any) error {
	set := s.set.Load()
	tok, err := jwt.ParseSigned(raw, set.algs)
	if err != nil {
		return err
	}
	h := tok.Headers[0]
	// This signer never writes b64.
	if oauth2.Unencoded(h) {
		return errors.New("the token's b64 header must be true or absent (RFC 7797 unencoded payloads are not JWTs)")
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != s.cfg.Type {
		return fmt.Errorf("token type %q, want %q", typ, s.cfg.Type)
	}
	k, ok := set.public[h.KeyID]
	if !ok || k.Algorithm != h.Algorithm {
		return ErrUnknownKey
	}
	return tok.Claims(k.Key, dest)
}

// newPrivateKey generates a private key for alg; tests watch it.
var newPrivateKey = generate

func generate(alg string) (crypto.Signer, error) {
	switch alg {
	case string(jose.ES256):
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case string(jose.RS256):
		return rsa.GenerateKey(rand.Reader, 2048)
	case string(jose.EdDSA):
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	default:
		return nil, fmt.Errorf("unsupported signing algorithm %q (want one of %v)", alg, Algorithms)
	}
}

func randomKID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
