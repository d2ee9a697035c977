package verify_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/verify"
)

// jsonResponse is a 200 answer to r with v as its JSON body, from a fake
// issuer's RoundTripper.
func jsonResponse(r *http.Request, v any) (*http.Response, error) {
	b, _ := json.Marshal(v)
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(b)), Request: r}, nil
}

// The background refresh of the issuer's keys is bounded in time, as a
// fetch for an unknown kid is, whatever the HTTP client: with one that
// has no timeout (WithHTTPClient), an issuer that never answered held
// the refresh forever, so the keys were never refreshed again, and every
// token with a new kid, joining that refresh, waited on it forever, even
// once its request had ended.
func TestKeyRefreshBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stopIssuer := make(chan struct{})
		// Its client has no timeout: the client of an API that reaches
		// the issuer with its own TLS settings, say.
		s := newStubIssuer(t, false, func(r *http.Request, n int32) error {
			if n != 2 { // the first background refresh: never answered
				return nil
			}
			select {
			case <-r.Context().Done():
				return r.Context().Err()
			case <-stopIssuer:
				return errors.New("the issuer stopped")
			}
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		defer close(stopIssuer) // after the test, so the Verifier's goroutines end
		v := s.verifier(t, ctx)
		s.publish("k1", "k2")
		time.Sleep(5*time.Minute + time.Second) // the background refresh starts, and hangs
		synctest.Wait()
		if got := s.fetches.Load(); got != 2 {
			t.Fatalf("%d JWKS fetches, want 2 (New's, then the background refresh)", got)
		}

		now := time.Now()
		raw := s.token(t, "k2")
		// The new key is picked up within a minute: by the next fetch for
		// its kid once the hung refresh has given up.
		deadline := now.Add(time.Minute)
		for {
			done := make(chan error, 1)
			go func() {
				_, err := v.Verify(ctx, raw)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				t.Fatal("Verify of a token with a new kid still waits after a minute, on a background refresh the issuer never answers")
			}
			if err == nil {
				return
			}
			if !errors.Is(err, verify.ErrUnavailable) {
				t.Fatalf("Verify: %v, want ErrUnavailable or success", err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("the new key is still not used after a minute: %v", err)
			}
			time.Sleep(10 * time.Second)
		}
	})
}

// A key the issuer stops publishing is no longer trusted within an hour,
// whatever max-age its JWKS is sent with: a proxy or CDN in front of the
// issuer may send one of days, and a leaked key would stay trusted as long.
// Nor whatever WithKeyRefresh says when there is no max-age: one of a day
// kept the key a day.
func TestKeyRefreshCapped(t *testing.T) {
	for _, tt := range []struct {
		name         string
		cacheControl string
		opts         []verify.Option
	}{
		{"max-age of a year", "public, max-age=31536000", nil},
		{"WithKeyRefresh of a day", "", []verify.Option{verify.WithKeyRefresh(24 * time.Hour)}},
	} {
		t.Run(tt.name, func(t *testing.T) { testKeyRefreshCapped(t, tt.cacheControl, tt.opts) })
	}
}

func testKeyRefreshCapped(t *testing.T, cacheControl string, opts []verify.Option) {
	synctest.Test(t, func(t *testing.T) {
		const issuer, aud = "https://keyward.internal", "https://orders.internal"
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		leaked := jose.JSONWebKey{Key: k, KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig"}
		var published atomic.Pointer[jose.JSONWebKeySet]
		published.Store(&jose.JSONWebKeySet{Keys: []jose.JSONWebKey{leaked.Public()}})
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			var v any
			switch r.URL.Path {
			case "/.well-known/oauth-authorization-server":
				v = map[string]string{"issuer": issuer, "jwks_uri": issuer + "/jwks"}
			case "/jwks":
				v = published.Load()
			default:
				return &http.Response{StatusCode: http.StatusNotFound, Status: "404 Not Found", Header: http.Header{},
					Body: io.NopCloser(bytes.NewReader(nil)), Request: r}, nil
			}
			b, _ := json.Marshal(v)
			return &http.Response{StatusCode: http.StatusOK, Status: "200 OK",
				Header: http.Header{"Content-Type": {"application/json"}, "Cache-Control": {cacheControl}},
				Body:   io.NopCloser(bytes.NewReader(b)), Request: r}, nil
		})}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		v, err := verify.New(ctx, issuer, aud, append(opts, verify.WithHTTPClient(client))...)
		if err != nil {
			t.Fatal(err)
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: leaked.Key}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", leaked.KeyID))
		if err != nil {
			t.Fatal(err)
		}
		token := func() string {
			now := time.Now()
			raw, err := jwt.Signed(s).Claims(map[string]any{"iss": issuer, "sub": "1", "client_id": "1", "aud": aud,
				"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": now.String()}).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}
		if _, err := v.Verify(ctx, token()); err != nil {
			t.Fatalf("a token of the published key: %v", err)
		}
		published.Store(&jose.JSONWebKeySet{}) // the issuer drops the leaked key
		time.Sleep(time.Hour + 15*time.Second)
		synctest.Wait()
		_, err = v.Verify(ctx, token())
		wantInvalid(t, err, "")
	})
}

// New's fetches are bounded in time, as every later one is, whatever the
// HTTP client: its ctx is also how long the keys are kept fresh, so a
// program cannot bound New by it. With a client without a timeout
// (WithHTTPClient), an issuer that accepted the connection and never
// answered held New, and the program's start, forever.
func TestNewBounded(t *testing.T) {
	for _, hang := range []string{"/.well-known/oauth-authorization-server", "/jwks"} {
		t.Run(hang, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const issuer = "https://keyward.internal"
				stopIssuer := make(chan struct{})
				defer close(stopIssuer) // after the test, so the fetch ends
				client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
					if r.URL.Path == hang {
						select {
						case <-r.Context().Done():
							return nil, r.Context().Err()
						case <-stopIssuer:
							return nil, errors.New("the issuer stopped")
						}
					}
					v := any(jose.JSONWebKeySet{})
					if r.URL.Path == "/.well-known/oauth-authorization-server" {
						v = map[string]string{"issuer": issuer, "jwks_uri": issuer + "/jwks"}
					}
					return jsonResponse(r, v)
				})}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan error, 1)
				go func() {
					_, err := verify.New(ctx, issuer, "https://orders.internal", verify.WithHTTPClient(client))
					done <- err
				}()
				time.Sleep(time.Minute)
				synctest.Wait()
				select {
				case err := <-done:
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("New: %v, want a deadline exceeded", err)
					}
				default:
					t.Fatalf("New still waits after a minute on an issuer that never answers %s", hang)
				}
			})
		})
	}
}

// stubIssuer is a fake issuer, https://keyward.internal, reached through
// its client, whose keys k1 and k2 are either its own JWKS (for access
// tokens) or the keys of its service account job@shop.iam.test (for the
// account's JWTs), the other set being empty. Each fetch of those keys
// reads the set published when the request comes, is counted in fetches,
// and is then held by hold (given the request and the fetch's number,
// from 1) until it returns: with an error, the fetch fails with it.
type stubIssuer struct {
	client    *http.Client
	fetches   atomic.Int32
	published atomic.Pointer[jose.JSONWebKeySet]
	keys      map[string]jose.JSONWebKey
	account   bool
}

const (
	stubIssuerURL = "https://keyward.internal"
	stubAudience  = "https://orders.internal"
	stubAccount   = "job@shop.iam.test"
)

// newStubIssuer starts a stubIssuer publishing k1: its JWKS's keys, or
// with account its service account's. hold may be nil.
func newStubIssuer(t testing.TB, account bool, hold func(r *http.Request, n int32) error) *stubIssuer {
	t.Helper()
	s := &stubIssuer{keys: map[string]jose.JSONWebKey{}, account: account}
	for _, kid := range []string{"k1", "k2"} {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s.keys[kid] = jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}
	}
	s.publish("k1")
	keysPath := "/jwks"
	if account {
		keysPath = "/service_accounts/v1/jwk/" + stubAccount
	}
	s.client = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			return jsonResponse(r, map[string]string{"issuer": stubIssuerURL, "jwks_uri": stubIssuerURL + "/jwks"})
		case keysPath:
			set := s.published.Load() // the keys as the request finds them
			n := s.fetches.Add(1)
			if hold != nil {
				if err := hold(r, n); err != nil {
					return nil, err
				}
			}
			return jsonResponse(r, set)
		case "/jwks":
			return jsonResponse(r, jose.JSONWebKeySet{})
		}
		return &http.Response{StatusCode: http.StatusNotFound, Status: "404 Not Found", Header: http.Header{},
			Body: io.NopCloser(bytes.NewReader(nil)), Request: r}, nil
	})}
	return s
}

// publish makes the keys named by kids (public halves) the keys served.
func (s *stubIssuer) publish(kids ...string) {
	set := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, kid := range kids {
		k := s.keys[kid]
		set.Keys = append(set.Keys, k.Public())
	}
	s.published.Store(set)
}

// verifier is a Verifier of the issuer's tokens for stubAudience (and,
// for an account's keys, of the account's JWTs), with opts.
func (s *stubIssuer) verifier(t testing.TB, ctx context.Context, opts ...verify.Option) *verify.Verifier {
	t.Helper()
	opts = append([]verify.Option{verify.WithHTTPClient(s.client)}, opts...)
	if s.account {
		opts = append(opts, verify.WithSelfSignedJWTs())
	}
	v, err := verify.New(ctx, stubIssuerURL, stubAudience, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// token is a token signed with the key kid, living an hour from now: an
// access token of the issuer's, or a JWT of its service account.
func (s *stubIssuer) token(t testing.TB, kid string) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{"iss": stubIssuerURL, "sub": "1", "client_id": "1", "aud": stubAudience,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "1"}
	if s.account {
		return s.accountJWT(t, stubAccount, kid)
	}
	return s.sign(t, "at+jwt", kid, claims)
}

// accountJWT is a JWT of the service account email, signed with the key
// kid, living an hour from now; each one new (jti), so none is answered
// from the Verifier's cache.
func (s *stubIssuer) accountJWT(t testing.TB, email, kid string) string {
	t.Helper()
	now := time.Now()
	return s.sign(t, "JWT", kid, map[string]any{"iss": email, "sub": email, "aud": stubAudience,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": rand.Text()})
}

// sign signs claims with the key kid, its header's typ typ.
func (s *stubIssuer) sign(t testing.TB, typ jose.ContentType, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.keys[kid].Key}, (&jose.SignerOptions{}).WithType(typ).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// running is a Verifier of s (see verifier) under a ctx that ends with
// the test, and that ctx.
func (s *stubIssuer) running(t *testing.T, opts ...verify.Option) (context.Context, *verify.Verifier) {
	t.Helper()
	ctx := t.Context()
	return ctx, s.verifier(t, ctx, opts...)
}

// stopped is a Verifier of s whose New's ctx has ended: its background
// refresh has stopped, and the keys are fetched on demand.
func (s *stubIssuer) stopped(t *testing.T) *verify.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	v := s.verifier(t, ctx)
	cancel() // the background refresh stops
	synctest.Wait()
	return v
}

// goVerify verifies a new token of the key kid (see token) in a
// goroutine, and returns, once every goroutine in the bubble is blocked,
// where its error will be sent: whether it has been says whether Verify
// waits.
func (s *stubIssuer) goVerify(t *testing.T, ctx context.Context, v *verify.Verifier, kid string) chan error {
	t.Helper()
	raw := s.token(t, kid)
	done := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, raw)
		done <- err
	}()
	synctest.Wait()
	return done
}

// mustVerify verifies raw with v, and fails the test if it is refused.
func mustVerify(t *testing.T, ctx context.Context, v *verify.Verifier, raw string) {
	t.Helper()
	if _, err := v.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
}

// sleepUntilStale sleeps until 1 s after keys fetched at fetched are
// stale: an account's are trusted 5 minutes.
func sleepUntilStale(fetched time.Time) {
	time.Sleep(time.Until(fetched.Add(5*time.Minute + time.Second)))
}

// The holds below are newStubIssuer's: how the issuer answers a fetch of
// its keys.

// holdFetch keeps the fetch numbered n unanswered until release is closed
// (or sent on): the issuer is slow to answer it.
func holdFetch(n int32, release <-chan struct{}) func(*http.Request, int32) error {
	return func(_ *http.Request, m int32) error {
		if m == n {
			<-release
		}
		return nil
	}
}

// holdAfterFirst keeps each fetch after the first unanswered until
// release is closed or sent on.
func holdAfterFirst(release <-chan struct{}) func(*http.Request, int32) error {
	return func(_ *http.Request, n int32) error {
		if n > 1 {
			<-release
		}
		return nil
	}
}

// noAnswer is an issuer that does not answer at all: the fetch ends only
// when its request does (at its 10 s timeout).
func noAnswer(r *http.Request) error {
	<-r.Context().Done()
	return r.Context().Err()
}

// noAnswerAfterFirst answers the first fetch, and no other (noAnswer).
func noAnswerAfterFirst(r *http.Request, n int32) error {
	if n == 1 {
		return nil
	}
	return noAnswer(r)
}

// noAnswerWhile answers no fetch (noAnswer) while down is true.
func noAnswerWhile(down *atomic.Bool) func(*http.Request, int32) error {
	return func(r *http.Request, _ int32) error {
		if down.Load() {
			return noAnswer(r)
		}
		return nil
	}
}

// failWhile fails each fetch at once while down is true.
func failWhile(down *atomic.Bool) func(*http.Request, int32) error {
	return func(*http.Request, int32) error {
		if down.Load() {
			return errors.New("the issuer is down")
		}
		return nil
	}
}

// fetchTakes answers each fetch after d.
func fetchTakes(d time.Duration) func(*http.Request, int32) error {
	return func(*http.Request, int32) error {
		time.Sleep(d)
		return nil
	}
}

// jobEmail is the email of the service account numbered i, of those that
// anyAccountClient serves keys for.
func jobEmail(i int) string { return fmt.Sprintf("job-%d@shop.iam.test", i) }

// anyAccountClient is a client of s that serves s's account keys for
// every account, each fetch first held by hold, which fails it with an
// error; other requests are s.client's.
func (s *stubIssuer) anyAccountClient(hold func(r *http.Request) error) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if !strings.HasPrefix(r.URL.Path, "/service_accounts/v1/jwk/") {
			return s.client.Transport.RoundTrip(r)
		}
		if err := hold(r); err != nil {
			return nil, err
		}
		return jsonResponse(r, s.published.Load())
	})}
}

// releaseWhenArmed is a test hook that, the first time it is called with
// armed set, closes release (the fetch in flight ends) and waits for the
// goroutines that unblocks.
func releaseWhenArmed(armed *atomic.Bool, release chan struct{}) func() {
	return func() {
		if armed.CompareAndSwap(true, false) {
			close(release)
			synctest.Wait()
		}
	}
}

// Tokens of a new kid that arrive while the keys are being fetched for
// one wait for that fetch, and are verified with what it brings: they
// were answered at once ErrUnavailable, with a Retry-After of up to 10 s,
// as if the keys had been fetched too recently, though the fetch in
// flight was bringing their key. Still one fetch, however many tokens.
func TestUnknownKidJoinsFetchInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		s := newStubIssuer(t, false, holdAfterFirst(release)) // the issuer is slow to answer
		ctx, v := s.running(t)
		s.publish("k1", "k2")
		raw := s.token(t, "k2")
		for _, err := range verifyDuringFetch(release, func() error { _, err := v.Verify(ctx, raw); return err }) {
			if err != nil {
				t.Fatalf("a token of a new kid, while its key was being fetched: %v", err)
			}
		}
		if got := s.fetches.Load(); got != 2 {
			t.Fatalf("%d JWKS fetches, want 2 (New's, then one for the new kid)", got)
		}
	})
}

// verifyDuringFetch runs verifyOne 20 times at once, in a synctest
// bubble: the first starts a fetch that waits for release, and the others
// come while it is in flight; then it closes release and returns each
// run's error.
func verifyDuringFetch(release chan struct{}, verifyOne func() error) []error {
	const n = 20
	errs := make(chan error, n)
	run := func() { errs <- verifyOne() }
	go run()
	synctest.Wait() // its fetch is in flight
	for range n - 1 {
		go run()
	}
	synctest.Wait()
	close(release)
	got := make([]error, n)
	for i := range got {
		got[i] = <-errs
	}
	return got
}

// A Verify waiting for the keys to be fetched for its token's unknown kid
// ends with its context, ErrUnavailable: it waited for the fetch to end,
// up to 10 s on an issuer that does not answer, whatever its context.
func TestUnknownKidFetchHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStubIssuer(t, false, noAnswerAfterFirst)
		ctx, v := s.running(t)
		s.publish("k1", "k2")
		raw := s.token(t, "k2")
		for _, name := range []string{"starting the fetch", "while it is in flight"} {
			rctx, rcancel := context.WithTimeout(ctx, time.Second)
			start := time.Now()
			_, err := v.Verify(rctx, raw)
			rcancel()
			if d := time.Since(start); d > time.Second {
				t.Fatalf("%s: Verify returned after %s, past its context's 1 s deadline", name, d)
			}
			if !errors.Is(err, verify.ErrUnavailable) {
				t.Fatalf("%s: Verify: %v, want ErrUnavailable", name, err)
			}
		}
		time.Sleep(time.Minute) // the fetch gives up
	})
}

// A Verify waiting for a service account's keys to be fetched for its
// JWT's unknown kid ends with its context, ErrUnavailable: it waited for
// the fetch to end, up to 10 s on an issuer that does not answer,
// whatever its context.
func TestAccountKidFetchHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStubIssuer(t, true, noAnswerAfterFirst)
		ctx, v := s.running(t)
		mustVerify(t, ctx, v, s.token(t, "k1"))
		s.publish("k1", "k2")
		time.Sleep(11 * time.Second) // the account's keys may be fetched again
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		start := time.Now()
		_, err := v.Verify(rctx, s.token(t, "k2"))
		rcancel()
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Verify returned after %s, past its context's 1 s deadline", d)
		}
		if !errors.Is(err, verify.ErrUnavailable) {
			t.Fatalf("Verify: %v, want ErrUnavailable", err)
		}
		time.Sleep(time.Minute) // the fetch gives up
	})
}

// Service account JWTs of a new kid that arrive while the account's keys
// are being fetched for one wait for that fetch, and are verified with
// what it brings: they were answered at once ErrUnavailable, as if the
// keys could not be fetched. Still one fetch, however many JWTs.
func TestAccountKidJoinsFetchInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		s := newStubIssuer(t, true, holdAfterFirst(release)) // the issuer is slow to answer
		ctx, v := s.running(t)
		mustVerify(t, ctx, v, s.token(t, "k1"))
		s.publish("k1", "k2")
		time.Sleep(11 * time.Second) // the account's keys may be fetched again
		verifyNew := func() error {
			_, err := v.Verify(ctx, s.token(t, "k2")) // each JWT a new one, not in the cache
			return err
		}
		for _, err := range verifyDuringFetch(release, verifyNew) {
			if err != nil {
				t.Fatalf("a JWT of a new kid, while the account's keys were being fetched: %v", err)
			}
		}
		if got := s.fetches.Load(); got != 2 {
			t.Fatalf("%d fetches of the account's keys, want 2 (the first, then one for the new kid)", got)
		}
	})
}

// A token of a new kid that arrives while the background refresh is in
// flight, and may fetch the keys for its kid, joins that refresh but does
// not stop at it: the refresh began before the token came, and its answer
// may predate the token's key. The token's own fetch follows, and
// verifies it. It was refused invalid_token, as if the issuer did not
// publish its key, and the fetch it was allowed was spent on nothing.
func TestUnknownKidJoinsEarlierFetchThenFetches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		s := newStubIssuer(t, false, holdFetch(2, release)) // the background refresh: answered late
		ctx, v := s.running(t)
		time.Sleep(5*time.Minute + time.Second) // the background refresh starts
		synctest.Wait()
		s.publish("k1", "k2")
		done := make(chan error, 1)
		go func() {
			_, err := v.Verify(ctx, s.token(t, "k2"))
			done <- err
		}()
		synctest.Wait() // it waits for the refresh
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("a token of a key published after the refresh in flight began: %v", err)
		}
		if got := s.fetches.Load(); got != 3 {
			t.Fatalf("%d JWKS fetches, want 3 (New's, the background refresh, the token's)", got)
		}
	})
}

// A service account's JWT that may fetch its account's keys, but arrives
// while a fetch of them that began before it is in flight (for another
// JWT of an account new to the API), joins that fetch but does not stop
// at it: its answer may predate the JWT's key. The JWT's own fetch
// follows, and verifies it. It was refused invalid_token, as if the
// account did not publish its key.
func TestAccountKidJoinsEarlierFetchThenFetches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		s := newStubIssuer(t, true, holdFetch(1, release)) // answered late
		ctx, v := s.running(t)
		errs := make(chan error, 2)
		verifyOne := func(kid string) {
			_, err := v.Verify(ctx, s.token(t, kid))
			errs <- err
		}
		go verifyOne("k1")
		synctest.Wait() // the account's keys are being fetched
		s.publish("k1", "k2")
		go verifyOne("k2")
		synctest.Wait() // it waits for that fetch
		close(release)
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("a JWT of a key published after the fetch in flight began: %v", err)
			}
		}
		if got := s.fetches.Load(); got != 2 {
			t.Fatalf("%d fetches of the account's keys, want 2 (the first JWT's, the second's)", got)
		}
	})
}

// JWTs of one service account new to the Verifier that come together
// join one fetch of its keys, and spend one fetch of the budget for
// accounts new to the Verifier (10 at once): each spent one, so a burst
// of one account's JWTs used it all up, and the JWTs of other new
// accounts that came with them were answered ErrUnavailable, throttled,
// though one fetch was made.
func TestNewAccountJWTsShareOneFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		s := newStubIssuer(t, true, holdFetch(1, release)) // the issuer is slow to answer
		ctx, v := s.running(t)
		verifyOne := func() error {
			_, err := v.Verify(ctx, s.token(t, "k1"))
			return err
		}
		for _, err := range verifyDuringFetch(release, verifyOne) {
			if err != nil {
				t.Fatalf("a JWT of an account new to the Verifier, while its keys were being fetched: %v", err)
			}
		}
		if got := s.fetches.Load(); got != 1 {
			t.Fatalf("%d fetches of the account's keys, want 1", got)
		}
		// At the same instant, the rest of the budget: the issuer is
		// asked for each of 9 other accounts, which it does not know.
		for i := range 9 {
			email := fmt.Sprintf("other-%d@shop.iam.test", i)
			_, err := v.Verify(ctx, s.accountJWT(t, email, "k1"))
			var ve *verify.Error
			if !errors.As(err, &ve) || ve.Code != "invalid_token" {
				t.Fatalf("a JWT of another new account, %s, after one account's burst: %v, want invalid_token (no such account at the issuer)", email, err)
			}
		}
	})
}

// A service account's JWT that comes in the last 30 s before its
// account's keys would go stale (5 minutes after their fetch) has them
// fetched again in the background, and is verified meanwhile with those
// known: so the account's next JWTs, once the keys fetched before would
// be stale, need not wait for a fetch, as the first such JWT of an
// account in steady use did every 5 minutes. A key is still trusted only
// within 5 minutes of a fetch that brought it: a JWT that comes once
// that is past waits for the keys to be fetched again, and is refused if
// its key is gone.
func TestAccountKeysRefreshedAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		answer := make(chan struct{})
		s := newStubIssuer(t, true, holdAfterFirst(answer)) // the issuer answers when the test says
		ctx, v := s.running(t)
		start := time.Now()
		mustVerify(t, ctx, v, s.token(t, "k1"))
		// verifyNow runs Verify of a new JWT of k1, and says whether it
		// has returned once every goroutine is blocked, and with what.
		verifyNow := func() chan error { return s.goVerify(t, ctx, v, "k1") }

		time.Sleep(start.Add(4*time.Minute + 40*time.Second).Sub(time.Now()))
		select {
		case err := <-verifyNow():
			if err != nil {
				t.Fatalf("a JWT 4 min 40 s after its keys' fetch: %v", err)
			}
		default:
			t.Fatal("a JWT 4 min 40 s after its keys' fetch waits for them to be fetched again")
		}
		if got := s.fetches.Load(); got != 2 {
			t.Fatalf("%d fetches of the account's keys after a JWT 4 min 40 s after the first, want 2: refetched ahead", got)
		}
		answer <- struct{}{}
		synctest.Wait()

		time.Sleep(start.Add(5*time.Minute + 10*time.Second).Sub(time.Now()))
		select {
		case err := <-verifyNow():
			if err != nil {
				t.Fatalf("a JWT 5 min 10 s after the first fetch, 30 s after the one ahead: %v", err)
			}
		default:
			t.Fatal("a JWT 5 min 10 s after the first fetch waits for a fetch, though the keys were fetched ahead 30 s before")
		}

		// The issuer drops k1 just after the fetch ahead: it is trusted
		// until 5 minutes after that fetch, not after.
		s.publish("k2")
		time.Sleep(start.Add(9*time.Minute + 41*time.Second).Sub(time.Now()))
		done := verifyNow()
		select {
		case err := <-done:
			t.Fatalf("a JWT over 5 minutes after the last fetch of its keys did not wait for them to be fetched again: %v", err)
		default:
		}
		answer <- struct{}{}
		var ve *verify.Error
		if err := <-done; !errors.As(err, &ve) || ve.Code != "invalid_token" {
			t.Fatalf("a JWT of a key the issuer dropped, over 5 minutes after the last fetch that brought it: %v, want invalid_token", err)
		}
	})
}

// A fetch of a service account's keys ahead that fails does not keep
// them in use once they are stale: a JWT that comes then fetches them
// again, though the fetch ahead was under 10 s before, and is refused if
// its key is gone. Only a fetch that fails once they are stale keeps
// them in use (up to 15 minutes), the issuer not being reachable.
func TestAccountKeysFailedAheadNotTrustedLonger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		s := newStubIssuer(t, true, failWhile(&down))
		ctx, v := s.running(t)
		start := time.Now()
		mustVerify(t, ctx, v, s.token(t, "k1"))
		time.Sleep(start.Add(4*time.Minute + 55*time.Second).Sub(time.Now()))
		down.Store(true)
		if _, err := v.Verify(ctx, s.token(t, "k1")); err != nil {
			t.Fatalf("a JWT 4 min 55 s after its keys' fetch: %v", err)
		}
		synctest.Wait() // the fetch ahead fails
		if got := s.fetches.Load(); got != 2 {
			t.Fatalf("%d fetches of the account's keys, want 2: the first, then one ahead", got)
		}
		down.Store(false)
		s.publish("k2") // the issuer drops k1
		sleepUntilStale(start)
		_, err := v.Verify(ctx, s.token(t, "k1"))
		wantInvalid(t, err, "")
	})
}

// A service account's JWT is answered from the cache only while the keys
// it was verified with are trusted, 5 minutes from the fetch that brought
// them, as WithSelfSignedJWTs and WithRevocationCheck say: it was cached
// for 5 minutes from its verification, so one verified just before its
// keys went stale was accepted up to 10 minutes after the issuer dropped
// its key or the account was disabled.
func TestAccountJWTCachedWhileKeysTrusted(t *testing.T) {
	for _, tt := range []struct {
		name    string
		disable func(s *stubIssuer, gone *atomic.Bool)
	}{
		{"key dropped", func(s *stubIssuer, _ *atomic.Bool) { s.publish("k2") }},
		{"account disabled", func(_ *stubIssuer, gone *atomic.Bool) { gone.Store(true) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newStubIssuer(t, true, nil)
				var gone atomic.Bool // the account is disabled: its keys are 404
				client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
					if gone.Load() && r.URL.Path == "/service_accounts/v1/jwk/"+stubAccount {
						return &http.Response{StatusCode: http.StatusNotFound, Status: "404 Not Found", Header: http.Header{},
							Body: io.NopCloser(bytes.NewReader(nil)), Request: r}, nil
					}
					return s.client.Transport.RoundTrip(r)
				})}
				ctx, v := s.running(t, verify.WithHTTPClient(client))
				start := time.Now() // the keys' fetch
				mustVerify(t, ctx, v, s.token(t, "k1"))
				time.Sleep(4*time.Minute + 50*time.Second)
				tt.disable(s, &gone)
				time.Sleep(8 * time.Second)
				// Verified with the keys fetched 4 min 58 s before, still
				// trusted (their fetch ahead, now, finds them gone).
				raw := s.token(t, "k1")
				if _, err := v.Verify(ctx, raw); err != nil {
					t.Fatalf("a JWT 4 min 58 s after its keys' fetch: %v", err)
				}
				synctest.Wait()
				time.Sleep(start.Add(5*time.Minute - time.Second).Sub(time.Now()))
				if _, err := v.Verify(ctx, raw); err != nil {
					t.Fatalf("the JWT again, 1 s before its keys are no longer trusted: %v", err)
				}
				// Once they are not, it is answered as a new JWT of the key
				// is: with the key dropped, the keys were fetched ahead
				// under 10 s before, so both are ErrUnavailable until they
				// may be fetched again.
				time.Sleep(2 * time.Second)
				_, err := v.Verify(ctx, raw)
				_, newErr := v.Verify(ctx, s.token(t, "k1"))
				var ve, newVE *verify.Error
				if !errors.As(err, &ve) || !errors.As(newErr, &newVE) || ve.Code != newVE.Code {
					t.Fatalf("the JWT again, 1 s after the keys it was verified with are no longer trusted: %v; a new JWT of its key: %v; want both refused alike", err, newErr)
				}
				time.Sleep(10 * time.Second)
				_, err = v.Verify(ctx, raw)
				if !errors.As(err, &ve) || ve.Code != "invalid_token" {
					t.Fatalf("the JWT again, 11 s after the keys it was verified with are no longer trusted, the issuer having dropped them: %v, want invalid_token", err)
				}
			})
		})
	}
}

// While the issuer cannot be reached, a service account's JWT cached
// near the end of its keys' 5 minutes is answered once they are stale as
// a new JWT of the account is: accepted with the stale keys, and refused
// with them 15 minutes after their fetch. Cached for 5 minutes from its
// verification, one verified with them at 14 min 30 s was accepted until
// 19 min 30 s.
func TestAccountJWTCachedWhileIssuerDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		s := newStubIssuer(t, true, failWhile(&down))
		ctx, v := s.running(t)
		start := time.Now() // the keys' fetch
		mustVerify(t, ctx, v, s.token(t, "k1"))
		time.Sleep(4*time.Minute + 58*time.Second)
		down.Store(true)
		raw := s.token(t, "k1")
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Fatalf("a JWT 4 min 58 s after its keys' fetch: %v", err)
		}
		synctest.Wait() // the fetch ahead fails
		for _, at := range []time.Duration{5*time.Minute + time.Second, 14*time.Minute + 30*time.Second, 15*time.Minute + time.Second} {
			time.Sleep(start.Add(at).Sub(time.Now()))
			_, err := v.Verify(ctx, raw)
			_, newErr := v.Verify(ctx, s.token(t, "k1"))
			if (err == nil) != (newErr == nil) || err != nil && !errors.Is(err, verify.ErrUnavailable) {
				t.Fatalf("%s after its keys' fetch, the issuer down since 4 min 58 s: the JWT cached then: %v; a new JWT: %v; want both accepted, or both ErrUnavailable", at, err, newErr)
			}
			if want := at < 15*time.Minute; (err == nil) != want {
				t.Fatalf("%s after its keys' fetch, the issuer down since 4 min 58 s: %v, want accepted %v (the keys are used up to 15 minutes)", at, err, want)
			}
		}
	})
}

// farToken is an access token signed with the key kid that expires in 30
// days: one signed with a leaked key, say.
func (s *stubIssuer) farToken(t *testing.T, kid string) string {
	t.Helper()
	now := time.Now()
	return s.sign(t, "at+jwt", kid, map[string]any{"iss": stubIssuerURL, "sub": "1", "client_id": "1", "aud": stubAudience,
		"iat": now.Unix(), "exp": now.Add(30 * 24 * time.Hour).Unix(), "jti": rand.Text()})
}

// An access token is answered from the cache only while the issuer's keys
// it was verified with are trusted, until they are due to be fetched
// again: it was cached until its exp, so one signed with a leaked key and
// verified once before the issuer dropped it stayed accepted long past
// the hour within which WithKeyRefresh says such a key is no longer
// trusted. A token whose key stays published is verified again with the
// keys the refresh brought, without fetching them once more. The entries
// end when the keys are due to be fetched again, not a refresh interval
// after the verification.
func TestJWTCachedWhileKeysTrusted(t *testing.T) {
	for _, tt := range []struct {
		name     string
		interval time.Duration
		opts     []verify.Option
	}{
		{"default refresh", 5 * time.Minute, nil},
		{"WithKeyRefresh of a day, an hour", time.Hour, []verify.Option{verify.WithKeyRefresh(24 * time.Hour)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newStubIssuer(t, false, nil)
				s.publish("k1", "k2")
				ctx, v := s.running(t, tt.opts...)
				start := time.Now() // the keys' fetch
				// Verified halfway to the refresh: the entries end with the
				// keys' trust, not a refresh interval after the verification.
				time.Sleep(tt.interval / 2)
				leaked, kept := s.farToken(t, "k1"), s.farToken(t, "k2")
				for _, raw := range []string{leaked, kept} {
					mustVerify(t, ctx, v, raw)
				}
				s.publish("k2") // the issuer drops the leaked key
				for i := 1; i <= 3; i++ {
					time.Sleep(start.Add(time.Duration(i)*tt.interval + time.Second).Sub(time.Now()))
					synctest.Wait() // the background refresh
					n := s.fetches.Load()
					if want := int32(i + 1); n < want {
						t.Fatalf("%d JWKS fetches after %d refresh intervals, want at least %d", n, i, want)
					}
					start := time.Now()
					if _, err := v.Verify(ctx, kept); err != nil {
						t.Fatalf("%d refresh intervals on, a token whose key is still published: %v", i, err)
					}
					if got := s.fetches.Load(); got != n || !time.Now().Equal(start) {
						t.Fatalf("%d refresh intervals on, a token whose key is still published was verified with %d more fetches, after %s; want none, at once", i, got-n, time.Since(start))
					}
					_, err := v.Verify(ctx, leaked)
					var ve *verify.Error
					if !errors.As(err, &ve) || ve.Code != "invalid_token" {
						t.Fatalf("%d refresh intervals on, a token of the key the issuer dropped, expiring in a month: %v, want invalid_token", i, err)
					}
				}
			})
		})
	}
}

// While the issuer cannot be reached, an access token cached before is
// answered once the keys are due to be fetched again as a new token of
// its key is: accepted with the stale keys, at once and without fetching
// them. Once the issuer is back without its key, it is refused.
func TestJWTCachedWhileIssuerDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		s := newStubIssuer(t, false, failWhile(&down))
		ctx, v := s.running(t)
		start := time.Now() // the keys' fetch
		raw := s.farToken(t, "k1")
		mustVerify(t, ctx, v, raw)
		time.Sleep(4 * time.Minute)
		down.Store(true)
		for _, at := range []time.Duration{5*time.Minute + time.Second, 9 * time.Minute, 30 * time.Minute} {
			time.Sleep(start.Add(at).Sub(time.Now()))
			synctest.Wait() // the background refresh fails
			n, now := s.fetches.Load(), time.Now()
			_, err := v.Verify(ctx, raw)
			_, newErr := v.Verify(ctx, s.farToken(t, "k1"))
			if err != nil || newErr != nil {
				t.Fatalf("%s after the keys' fetch, the issuer down since 4 min: the token cached then: %v; a new token of its key: %v; want both accepted with the stale keys", at, err, newErr)
			}
			if got := s.fetches.Load(); got != n || !time.Now().Equal(now) {
				t.Fatalf("%s after the keys' fetch, the issuer down: %d fetches, after %s, to verify tokens of a known key; want none, at once", at, got-n, time.Since(now))
			}
		}
		s.publish("k2") // back, without the key
		down.Store(false)
		time.Sleep(start.Add(35*time.Minute + time.Second).Sub(time.Now()))
		synctest.Wait() // the background refresh succeeds
		_, err := v.Verify(ctx, raw)
		wantInvalid(t, err, "")
	})
}

// A background refresh of the issuer's keys that fails is tried again
// within seconds, not a whole refresh interval later: with WithKeyRefresh
// of an hour, one failed refresh, the issuer reachable again at once,
// kept a key it had dropped (a leaked one) trusted for a second hour, and
// every token verified again on each request meanwhile, none cached.
func TestKeyRefreshRetriedAfterFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStubIssuer(t, false, func(_ *http.Request, n int32) error {
			if n == 2 { // the first background refresh
				return errors.New("the issuer is briefly unreachable")
			}
			return nil
		})
		s.publish("k1", "k2")
		ctx, v := s.running(t, verify.WithKeyRefresh(time.Hour))
		start := time.Now()
		leaked := s.farToken(t, "k1")
		mustVerify(t, ctx, v, leaked)
		s.publish("k2") // the issuer drops the leaked key
		time.Sleep(start.Add(time.Hour + time.Second).Sub(time.Now()))
		synctest.Wait() // the background refresh fails
		if got := s.fetches.Load(); got != 2 {
			t.Fatalf("%d JWKS fetches an hour on, want 2 (New's, then the failed refresh)", got)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		_, err := v.Verify(ctx, leaked)
		wantInvalid(t, err, "")
	})
}

// The new-accounts budget (10 at once, one a second after) is spent at
// the time of the spending: a JWT of a new account that joined a fetch of
// its keys begun before it came, and fetches them again once that one
// ends, spent from the budget at the time it came. Its clock, seconds
// behind with a slow issuer, turned the budget's back, which then counted
// those seconds again: every such JWT gave back more fetches than it
// spent, so a flood of made-up emails, with the issuer slowed, reached
// it beyond the budget.
func TestNewAccountBudgetSpentNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStubIssuer(t, true, nil)
		var asked atomic.Int32 // the issuer's lookups of accounts
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/.well-known/oauth-authorization-server" || r.URL.Path == "/jwks" {
				return s.client.Transport.RoundTrip(r)
			}
			asked.Add(1)
			time.Sleep(5 * time.Second) // the issuer is slow: no such account, 5 s on
			return &http.Response{StatusCode: http.StatusNotFound, Status: "404 Not Found", Header: http.Header{},
				Body: io.NopCloser(bytes.NewReader(nil)), Request: r}, nil
		})}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		defer time.Sleep(time.Minute) // the fetches end
		v := s.verifier(t, ctx, verify.WithHTTPClient(client))
		verifyLater := func(email string) {
			go v.Verify(ctx, s.accountJWT(t, email, "k1"))
			synctest.Wait()
		}
		// At 0 s: two JWTs of one new account, the second joining the
		// first's fetch, and 8 other new accounts: 1 fetch of the budget
		// left.
		verifyLater("x@made.up")
		verifyLater("x@made.up")
		for i := range 8 {
			verifyLater(fmt.Sprintf("early-%d@made.up", i))
		}
		// At 4 s: one more, from the 5 the budget then holds.
		time.Sleep(4 * time.Second)
		verifyLater("y@made.up")
		// At 5 s the first fetch ends (no such account), and the JWT that
		// joined it fetches again: 4 fetches left, whenever it came.
		time.Sleep(time.Second)
		synctest.Wait()
		before := asked.Load()
		for i := range 10 {
			verifyLater(fmt.Sprintf("late-%d@made.up", i))
		}
		if got := asked.Load() - before; got != 4 {
			t.Fatalf("%d new accounts looked up at 5 s, want 4: the budget left", got)
		}
	})
}

// A service account's JWT that comes while its account's stale keys are
// being fetched again waits for that fetch, as the JWT that started it
// does: it was verified at once with the stale keys, so a key the issuer
// had dropped (or a disabled account's) was trusted past the 5 minutes
// from its fetch though the issuer could be reached, for as long as the
// fetch took.
func TestAccountJWTWaitsForStaleKeysFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		answer := make(chan struct{})
		s := newStubIssuer(t, true, holdFetch(2, answer)) // the issuer is slow to answer
		ctx, v := s.running(t)
		start := time.Now()
		mustVerify(t, ctx, v, s.token(t, "k1"))
		s.publish("k2") // the issuer drops k1
		sleepUntilStale(start)
		first := s.goVerify(t, ctx, v, "k1") // the keys are stale: it fetches them again
		time.Sleep(time.Second)
		second := s.goVerify(t, ctx, v, "k1")
		select {
		case err := <-second:
			if err == nil {
				t.Fatal("a JWT of a key the issuer dropped, while the account's stale keys were being fetched again, was accepted with them")
			}
		default: // it waits for the fetch
		}
		close(answer)
		for _, done := range []chan error{first, second} {
			if err := <-done; err == nil {
				t.Fatal("a JWT of a key the issuer dropped was accepted once the keys were fetched again")
			}
		}
	})
}

// The issuer's keys are fetched again a few seconds before they stop
// being trusted, so that a token cached until then is verified again
// with the keys that fetch brought as soon as its entry ends, and cached
// again at once. The refresh was scheduled a refresh interval after the
// previous fetch ended, while the keys are trusted from when it started:
// each cycle, for two fetches' time, the keys known were no longer
// trusted and no newer were in place, and every request in between
// verified its token again, none cached. No request waits for a fetch.
func TestKeyRefreshBeforeTrustEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStubIssuer(t, false, fetchTakes(2*time.Second))
		ctx, v := s.running(t)
		raw, start := s.farToken(t, "k1"), time.Now()
		var (
			prev       *verify.Claims
			reverified bool // the previous request's token was verified again
			again      int  // how many times the token was verified again
		)
		for range 20 * 60 { // a request a second for 20 minutes
			time.Sleep(time.Second)
			synctest.Wait()
			n, now := s.fetches.Load(), time.Now()
			c, err := v.Verify(ctx, raw)
			if err != nil {
				t.Fatalf("%s on: %v", now.Sub(start), err)
			}
			if got := s.fetches.Load(); got != n || !time.Now().Equal(now) {
				t.Fatalf("a cached token was verified with %d fetches, after %s; want none, at once", got-n, time.Since(now))
			}
			// The cache answers the Claims it holds: new ones are a
			// verification.
			if c != prev && prev != nil {
				if reverified {
					t.Fatal("a token verified again a second before was verified again: the keys known were no longer trusted, and no newer were in place")
				}
				again++
			}
			reverified = c != prev && prev != nil
			prev = c
		}
		if again > 4 {
			t.Fatalf("the token was verified again %d times in 20 minutes of 5-minute refreshes, want at most 4", again)
		}
	})
}

// A service account's JWT reused for its whole hour (as google-auth and
// Go's JWTAccessTokenSource do), answered from the cache, has its
// account's keys fetched ahead in the last 30 s before they go stale, as
// a JWT verified anew does: so when its entry ends with the keys' trust,
// it is verified again at once with the keys fetched since. Only a JWT
// missing the cache had them fetched ahead, so every 5 minutes one of
// its requests waited for a fetch of the stale keys.
func TestReusedAccountJWTNeverWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStubIssuer(t, true, fetchTakes(2*time.Second))
		ctx, v := s.running(t)
		start := time.Now()
		raw := s.token(t, "k1")
		mustVerify(t, ctx, v, raw)
		for time.Since(start) < 20*time.Minute { // a request every 7 s
			time.Sleep(7 * time.Second)
			synctest.Wait()
			now := time.Now()
			if _, err := v.Verify(ctx, raw); err != nil {
				t.Fatalf("%s on: %v", now.Sub(start), err)
			}
			if !time.Now().Equal(now) {
				t.Fatalf("%s on, the JWT reused since waited %s for its account's keys", now.Sub(start), time.Since(now))
			}
		}
		if got := s.fetches.Load(); got < 5 {
			t.Fatalf("%d fetches of the account's keys in 20 minutes, want at least 5: trusted 5 minutes", got)
		}
	})
}

// Once a fetch of an account's stale keys has failed, the issuer not
// answering at all, its next JWTs are verified at once with the stale
// keys (for up to 15 minutes), the next fetch made in the background. Each
// JWT after the 10 s pause between tries started a fetch and waited for it,
// up to its 10 s timeout, and every JWT that came meanwhile waited too:
// while the issuer was unreachable the account's every request waited.
func TestAccountJWTNotHeldWhileIssuerDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		s := newStubIssuer(t, true, noAnswerWhile(&down))
		ctx, v := s.running(t)
		start := time.Now()
		mustVerify(t, ctx, v, s.token(t, "k1"))
		sleepUntilStale(start)
		down.Store(true)
		// The keys are stale: this one waits for the fetch, which fails.
		if _, err := v.Verify(ctx, s.token(t, "k1")); err != nil {
			t.Fatalf("with the issuer unreachable, the account's stale keys are used: %v", err)
		}
		for range 3 {
			// Past the pause between tries: 10 s after the last ended,
			// which hung 10 s.
			time.Sleep(21 * time.Second)
			began := time.Now()
			if _, err := v.Verify(ctx, s.token(t, "k1")); err != nil {
				t.Fatalf("with the issuer unreachable, the account's stale keys are used: %v", err)
			}
			if d := time.Since(began); d > 0 {
				t.Fatalf("a JWT waited %s for a fetch of its account's keys, though the last one had found the issuer unreachable", d)
			}
		}
		synctest.Wait() // the last fetch in the background has begun
		if n := s.fetches.Load(); n < 4 {
			t.Fatalf("%d fetches, want the keys fetched again in the background (at least 4)", n)
		}
		time.Sleep(11 * time.Second) // the fetch in the background times out
	})
}

// Once the ctx given to New has ended, the issuer's keys are fetched on
// demand, within the bounds the background refresh kept: a token that
// comes once they are due to be fetched again waits for that fetch, and
// the tokens verified with what it brings are cached until they are due
// again. The keys fetched last were used for good, so a key the issuer
// dropped (a leaked one) stayed trusted, and, no longer trusted, they
// cached no token: every request verified its token again.
func TestKeysFetchedOnDemandAfterContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStubIssuer(t, false, nil)
		s.publish("k1", "k2")
		ctx, cancel := context.WithCancel(context.Background())
		v := s.verifier(t, ctx)
		leaked, kept := s.farToken(t, "k1"), s.farToken(t, "k2")
		for _, raw := range []string{leaked, kept} {
			mustVerify(t, ctx, v, raw)
		}
		cancel() // the background refresh stops
		synctest.Wait()
		s.publish("k2") // the issuer drops the leaked key
		time.Sleep(time.Hour)
		rctx := context.Background()
		_, err := v.Verify(rctx, leaked)
		wantInvalid(t, err, "")
		n := s.fetches.Load()
		prev, err := v.Verify(rctx, kept)
		if err != nil {
			t.Fatal(err)
		}
		// A request every 10 s for 30 minutes: how many times the token
		// was verified again.
		again := 0
		for i := range 30 * 6 {
			time.Sleep(10 * time.Second)
			c, err := v.Verify(rctx, kept)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if c != prev { // the cache answers the Claims it holds
				again++
			}
			prev = c
		}
		if again < 5 || again > 7 {
			t.Fatalf("the token was verified again %d times in 30 minutes of requests every 10 s, want 5 to 7: cached while its keys are trusted (5 minutes)", again)
		}
		if got := s.fetches.Load() - n; got < 5 || got > 7 {
			t.Fatalf("%d JWKS fetches in 30 minutes of requests every 10 s, want 5 to 7 (every 5 minutes)", got)
		}
	})
}

// Once a fetch of the keys has failed, the issuer not answering at all, a
// token of an unknown kid is answered ErrUnavailable at once, with a
// RetryAfter, while a fetch it did not start is in flight: each such
// token joined that fetch (another token's, or a retry) and waited for
// it, up to its 10 s timeout, for the same answer, so while the issuer
// was unreachable every request with a new kid waited. The issuer's keys
// and a service account's alike.
func TestUnknownKidNotHeldWhileIssuerDown(t *testing.T) {
	for _, tt := range []struct {
		name    string
		account bool
	}{{"issuer's keys", false}, {"account's keys", true}} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newStubIssuer(t, tt.account, noAnswerAfterFirst)
				ctx, v := s.running(t)
				mustVerify(t, ctx, v, s.token(t, "k1"))
				s.publish("k1", "k2")
				time.Sleep(11 * time.Second) // the keys may be fetched again
				// The first token of k2 waits for the fetch it starts, which
				// fails.
				if _, err := v.Verify(ctx, s.token(t, "k2")); !errors.Is(err, verify.ErrUnavailable) {
					t.Fatalf("a token of a new kid, the issuer not answering: %v, want ErrUnavailable", err)
				}
				// The keys may be fetched again: one starts a fetch ...
				time.Sleep(time.Second)
				go v.Verify(ctx, s.token(t, "k2"))
				synctest.Wait()
				// ... and one that comes while it is in flight is not held.
				began := time.Now()
				_, err := v.Verify(ctx, s.token(t, "k2"))
				if d := time.Since(began); d > 0 {
					t.Fatalf("a token of a new kid waited %s for a fetch it did not start, though the last one had found the issuer unreachable", d)
				}
				var ve *verify.Error
				if !errors.As(err, &ve) || !errors.Is(err, verify.ErrUnavailable) || ve.RetryAfter <= 0 {
					t.Fatalf("a token of a new kid while the issuer is unreachable: %v, want ErrUnavailable with a RetryAfter", err)
				}
				time.Sleep(time.Minute) // the fetches give up
			})
		})
	}
}

// A service account's JWT that comes while the account's stale keys are
// being fetched again, that fetch ending just as the JWT's keys are read,
// is verified with the keys it brought: the keys and the fetch in flight
// were read under two locks, so the JWT found the fetch gone, did not
// wait, and was verified with the stale keys read before, a key the
// issuer had dropped among them.
func TestAccountJWTKeysReadWithFetchInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		s := newStubIssuer(t, true, holdFetch(2, release)) // the issuer is slow to answer
		var hooked atomic.Bool
		// The fetch in flight ends ...
		verify.SetKeySnapshotHook(t, releaseWhenArmed(&hooked, release))
		ctx, v := s.running(t)
		start := time.Now()
		mustVerify(t, ctx, v, s.token(t, "k1"))
		s.publish("k2") // the issuer drops k1
		sleepUntilStale(start)
		go v.Verify(ctx, s.token(t, "k1")) // the keys are stale: it fetches them again
		synctest.Wait()
		time.Sleep(time.Second)
		hooked.Store(true) // ... just as the next JWT has read its keys
		done := make(chan error, 1)
		go func() {
			_, err := v.Verify(ctx, s.token(t, "k1"))
			done <- err
		}()
		if err := <-done; err == nil {
			t.Fatal("a JWT of a key the issuer dropped, whose keys were read as their fetch ended, was accepted with the stale keys")
		}
	})
}

// Service accounts whose keys were fetched together, and so are due to be
// fetched ahead together, do not have them all fetched at once: at most 4
// fetches in the background are in flight, and an account left out has
// its keys fetched ahead by its next JWT. Each of their JWTs fired its
// own fetch, however many accounts.
func TestAccountKeysAheadCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStubIssuer(t, true, nil)
		var (
			held              atomic.Bool // the issuer is slow to answer
			inFlight, maxSeen atomic.Int32
			fetched           atomic.Int32
			release           = make(chan struct{})
		)
		client := s.anyAccountClient(func(*http.Request) error {
			fetched.Add(1)
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := maxSeen.Load(); n > m && !maxSeen.CompareAndSwap(m, n); m = maxSeen.Load() {
			}
			if held.Load() {
				<-release
			}
			return nil
		})
		releaseAll := sync.OnceFunc(func() { close(release) })
		defer releaseAll()
		ctx, v := s.running(t, verify.WithHTTPClient(client))
		const accounts = 8
		start := time.Now()
		for i := range accounts {
			mustVerify(t, ctx, v, s.accountJWT(t, jobEmail(i), "k1"))
		}
		held.Store(true)
		time.Sleep(start.Add(4*time.Minute + 40*time.Second).Sub(time.Now()))
		for i := range accounts {
			began := time.Now()
			mustVerify(t, ctx, v, s.accountJWT(t, jobEmail(i), "k1"))
			if d := time.Since(began); d > 0 {
				t.Fatalf("a JWT in its keys' last 30 s waited %s", d)
			}
		}
		synctest.Wait()
		if got := maxSeen.Load(); got != 4 {
			t.Fatalf("%d fetches ahead in flight at once for %d accounts, want 4", got, accounts)
		}
		releaseAll()
		synctest.Wait()
		held.Store(false)
		before := fetched.Load()
		time.Sleep(time.Second)
		for i := range accounts {
			mustVerify(t, ctx, v, s.accountJWT(t, jobEmail(i), "k1"))
			synctest.Wait()
		}
		if got := fetched.Load() - before; got != accounts-4 {
			t.Fatalf("%d fetches ahead by the accounts' next JWTs, want %d: those left out", got, accounts-4)
		}
	})
}

// Once a fetch of the issuer's keys has failed, a token of an unknown kid
// that finds another fetch in flight does not wait for it; if that fetch
// then ends without the token's key, the token is not called invalid
// (ErrUnavailable, with a RetryAfter): the fetch began before the token
// came, and its answer may predate the key. It was invalid_token, the
// key not being waited for, nor fetched again, as a token that joined
// such a fetch has its keys fetched again.
func TestUnknownKidNotInvalidAfterFetchNotWaitedFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		s := newStubIssuer(t, false, func(_ *http.Request, n int32) error {
			switch n {
			case 2:
				return errors.New("connection refused")
			case 3:
				<-release // the issuer is slow to answer
			}
			return nil
		})
		ctx, v := s.running(t, verify.WithUnknownKidEvery(time.Second))
		time.Sleep(2 * time.Second)
		if _, err := v.Verify(ctx, s.token(t, "k2")); !errors.Is(err, verify.ErrUnavailable) {
			t.Fatalf("a token of an unknown kid, the fetch failing: %v, want ErrUnavailable", err)
		}
		time.Sleep(2 * time.Second)
		go v.Verify(ctx, s.token(t, "k2")) // a fetch that finds only k1
		synctest.Wait()
		s.publish("k1", "k2") // the issuer publishes k2 as that fetch is in flight
		time.Sleep(2 * time.Second)
		var hooked atomic.Bool
		hooked.Store(true)
		// The fetch in flight ends ...
		verify.SetKidFetchHook(t, releaseWhenArmed(&hooked, release))
		// ... just as a token of k2 has chosen not to wait for it.
		_, err := v.Verify(ctx, s.token(t, "k2"))
		var ve *verify.Error
		if !errors.As(err, &ve) || !errors.Is(err, verify.ErrUnavailable) || ve.RetryAfter <= 0 {
			t.Fatalf("a token of a key published as the fetch in flight, not waited for, ended: %v, want ErrUnavailable with a RetryAfter", err)
		}
		time.Sleep(ve.RetryAfter)
		if _, err := v.Verify(ctx, s.token(t, "k2")); err != nil {
			t.Fatalf("a token of k2 once the keys may be fetched again: %v", err)
		}
	})
}

// Once the ctx given to New has ended, a fetch of the issuer's keys that
// failed by hanging until its 10 s timeout is tried again 10 s after it
// ended, as the background refresh does, not at once: the pause counted
// from when it began, so the next token, coming as it timed out, started
// another fetch, and while the issuer did not answer one connection hung
// after another.
func TestKeysOnDemandRetryPausedAfterFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		s := newStubIssuer(t, false, noAnswerWhile(&down))
		defer time.Sleep(time.Minute) // the fetches in flight give up
		v := s.stopped(t)
		time.Sleep(time.Hour) // the keys are no longer trusted
		down.Store(true)
		rctx := context.Background()
		// It waits for the fetch it starts, which times out: the stale
		// keys are then used.
		if _, err := v.Verify(rctx, s.farToken(t, "k1")); err != nil {
			t.Fatalf("with the issuer unreachable, the stale keys are used: %v", err)
		}
		n := s.fetches.Load()
		mustVerify(t, rctx, v, s.farToken(t, "k1"))
		synctest.Wait()
		if got := s.fetches.Load() - n; got != 0 {
			t.Fatalf("a token as the fetch that hung timed out started %d fetches, want none until 10 s after it ended", got)
		}
		time.Sleep(10 * time.Second)
		mustVerify(t, rctx, v, s.farToken(t, "k1"))
		synctest.Wait()
		if got := s.fetches.Load() - n; got != 1 {
			t.Fatalf("a token 10 s after the fetch failed started %d fetches, want 1", got)
		}
	})
}

// Once the ctx given to New has ended, a token answered from the cache
// has the issuer's keys fetched ahead when they are due, as the
// background refresh did: so when they stop being trusted, and its entry
// ends, it is verified again at once with the keys fetched since. Only a
// token verified anew had them fetched, so a busy API's cached tokens
// never did, and every 5 minutes the first request waited for the fetch.
func TestCachedTokenFetchesKeysAheadAfterContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStubIssuer(t, false, fetchTakes(2*time.Second))
		v := s.stopped(t)
		rctx := context.Background()
		raw, start := s.farToken(t, "k1"), time.Now()
		n := s.fetches.Load()
		for range 20 * 60 { // a request a second for 20 minutes
			time.Sleep(time.Second)
			synctest.Wait()
			now := time.Now()
			if _, err := v.Verify(rctx, raw); err != nil {
				t.Fatalf("%s on: %v", now.Sub(start), err)
			}
			if d := time.Since(now); d > 0 {
				t.Fatalf("%s on, a request waited %s for the issuer's keys, though a token cached until then was verified every second", now.Sub(start), d)
			}
		}
		if got := s.fetches.Load() - n; got < 4 {
			t.Fatalf("%d JWKS fetches in 20 minutes, want at least 4 (every 5 minutes)", got)
		}
	})
}

// While the fetches of accounts' keys in the background are at their cap
// (4 in flight), a cached JWT of an account left out, in its keys' last
// 30 s, does not take the write lock to find that out: each such hit
// called start, which took it only to find no slot free, and, its try not
// noted, so did the account's every hit after, queueing a busy account's
// requests on one lock.
func TestAccountAheadCappedTakesNoWriteLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStubIssuer(t, true, nil)
		var held atomic.Bool // the issuer is slow to answer
		release := make(chan struct{})
		client := s.anyAccountClient(func(*http.Request) error {
			if held.Load() {
				<-release
			}
			return nil
		})
		releaseAll := sync.OnceFunc(func() { close(release) })
		defer releaseAll()
		ctx, v := s.running(t, verify.WithHTTPClient(client))
		const accounts = 5
		raws := make([]string, accounts) // each reused, so answered from the cache
		start := time.Now()
		for i := range raws {
			raws[i] = s.accountJWT(t, jobEmail(i), "k1")
			mustVerify(t, ctx, v, raws[i])
		}
		held.Store(true)
		time.Sleep(start.Add(4*time.Minute + 40*time.Second).Sub(time.Now()))
		for _, raw := range raws[:4] { // their fetches ahead fill the slots
			mustVerify(t, ctx, v, raw)
		}
		synctest.Wait()
		var starts atomic.Int32
		verify.SetAccountStartHook(t, func() { starts.Add(1) })
		for range 10 {
			mustVerify(t, ctx, v, raws[4])
		}
		if got := starts.Load(); got != 0 {
			t.Fatalf("10 cached JWTs of an account left out of the full fetch slots took the write lock %d times, want 0", got)
		}
		releaseAll()
		synctest.Wait()
		mustVerify(t, ctx, v, raws[4])
		if got := starts.Load(); got != 1 {
			t.Fatalf("a cached JWT of the account left out, the slots free again, started %d fetches, want 1", got)
		}
		synctest.Wait()
	})
}

// Nor does a JWT verified anew with an account's stale keys while the
// issuer cannot be reached, whose next try is made in the background:
// while those fetches were at their cap, each such JWT of an account
// left out took the write lock only to find no slot free.
func TestAccountDownCappedTakesNoWriteLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		s := newStubIssuer(t, true, nil)
		client := s.anyAccountClient(func(r *http.Request) error {
			if down.Load() {
				return noAnswer(r)
			}
			return nil
		})
		defer time.Sleep(time.Minute) // the fetches in flight give up
		ctx, v := s.running(t, verify.WithHTTPClient(client))
		const accounts = 5
		verifyAll := func(n int) {
			t.Helper()
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() { _, errs[i] = v.Verify(ctx, s.accountJWT(t, jobEmail(i), "k1")) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		verifyAll(accounts)
		down.Store(true)
		sleepUntilStale(start)
		verifyAll(accounts) // stale: each waits for a fetch, which fails
		time.Sleep(11 * time.Second)
		verifyAll(4) // the next tries, in the background, fill the slots
		synctest.Wait()
		var starts atomic.Int32
		verify.SetAccountStartHook(t, func() { starts.Add(1) })
		for range 10 {
			if _, err := v.Verify(ctx, s.accountJWT(t, jobEmail(4), "k1")); err != nil {
				t.Fatalf("with the issuer unreachable, the account's stale keys are used: %v", err)
			}
		}
		if got := starts.Load(); got != 0 {
			t.Fatalf("10 JWTs of an account left out of the full fetch slots took the write lock %d times, want 0", got)
		}
	})
}

// While the issuer does not answer, a fetch of a service account's stale
// keys that hung until its 10 s timeout is tried again 10 s after it
// ended, not at once: the pause counted from when it began, so the
// account's next JWT, coming as it timed out, started another fetch in
// the background, and one connection hung after another per account.
func TestAccountKeysRetryPausedAfterFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		s := newStubIssuer(t, true, noAnswerWhile(&down))
		defer time.Sleep(time.Minute) // the fetch in flight gives up
		ctx, v := s.running(t)
		start := time.Now()
		mustVerify(t, ctx, v, s.token(t, "k1"))
		sleepUntilStale(start)
		down.Store(true)
		// The keys are stale: this one waits for the fetch, which times
		// out, and the stale keys are then used.
		if _, err := v.Verify(ctx, s.token(t, "k1")); err != nil {
			t.Fatalf("with the issuer unreachable, the account's stale keys are used: %v", err)
		}
		verifyCounting := func(when string, want int32) {
			t.Helper()
			n := s.fetches.Load()
			if _, err := v.Verify(ctx, s.token(t, "k1")); err != nil {
				t.Fatalf("a JWT %s: %v", when, err)
			}
			synctest.Wait()
			if got := s.fetches.Load() - n; got != want {
				t.Fatalf("a JWT %s started %d fetches of its account's keys, want %d", when, got, want)
			}
		}
		verifyCounting("as the fetch waited for timed out", 0)
		time.Sleep(10 * time.Second)
		verifyCounting("10 s after the fetch waited for failed", 1) // in the background
		time.Sleep(10 * time.Second)
		synctest.Wait() // the fetch in the background times out
		verifyCounting("as the fetch in the background timed out", 0)
		time.Sleep(10 * time.Second)
		verifyCounting("10 s after the fetch in the background failed", 1)
	})
}
