package verify

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/keyward/keyward/internal/keyfile"
	"github.com/keyward/keyward/internal/oauth2"
)

type introspectionCredentials struct {
	clientID, secret string
	keyFile          []byte
	// From keyFile, for private_key_jwt.
	signer jose.Signer
}

// withKeyFile returns c with the signer of its key file, or why the key
// file cannot sign client assertions Keyward accepts (internal/keyfile:
// RS256 with RSA of 2048 to 8192 bits, ES256 with P-256).
func (c introspectionCredentials) withKeyFile() (*introspectionCredentials, error) {
	var f struct {
		PrivateKeyID string `json:"private_key_id"`
		PrivateKey   string `json:"private_key"`
		ClientID     string `json:"client_id"`
	}
	if err := keyfile.DecodeJSON(c.keyFile, &f); err != nil {
		return nil, fmt.Errorf("the introspection key file %w", err)
	}
	if f.ClientID == "" || f.PrivateKey == "" {
		return nil, errors.New("the introspection key file lacks client_id or private_key")
	}
	s, err := keyfile.NewSigner(f.PrivateKey, f.PrivateKeyID)
	if err != nil {
		return nil, fmt.Errorf("the introspection key file: %w", err)
	}
	c.signer, c.clientID = s, f.ClientID
	return &c, nil
}

// introspector asks the issuer about tokens (RFC 7662). Each question
// writes an audit event at the issuer, so requests for one token share one
// question, and a refused token is remembered for the introspection cache
// lifetime: the same unknown token sent again and again reaches the issuer
// once. Many different tokens are bounded by a budget: a rate for tokens
// not seen active before, and a number of questions in flight. When the
// issuer asks for a pause (Retry-After on 429 or 503) or refuses this
// API's credentials, it is not asked again until the pause is over.
type introspector struct {
	endpoint string
	issuer   string
	o        options
	client   *http.Client // o.client following no redirects
	sf       singleflight.Group
	refused  *tokenCache[*Error]
	// Opaque tokens seen active, until they expire: not held to limiter.
	active  *tokenCache[struct{}]
	limiter *rate.Limiter
	slots   chan struct{} // nil for no bound

	mu          sync.Mutex
	pausedUntil time.Time
	pauseErr    *Error // the answer that started the pause
}

// newIntrospector asks endpoint with o.introspect, whose key file (if
// any) withKeyFile has read.
func newIntrospector(endpoint, issuer string, o options) *introspector {
	in := &introspector{endpoint: endpoint, issuer: issuer, o: o, client: introspectionClient(o.client),
		refused: newTokenCache[*Error](o.cacheSize), active: newTokenCache[struct{}](o.cacheSize),
		limiter: rate.NewLimiter(rate.Inf, 0)}
	if o.introspectionRate > 0 {
		in.limiter = rate.NewLimiter(rate.Limit(o.introspectionRate), max(1, o.introspectionBurst))
	}
	if o.introspectionInFlight > 0 {
		in.slots = make(chan struct{}, o.introspectionInFlight)
	}
	return in
}

// introspection is an introspection answer (RFC 7662 §2.2): active, and
// the token's claims under the names its JWT has them.
type introspection struct {
	Active bool `json:"active"`
	wireClaims
}

// errLeaderLeft is the answer of a question abandoned before it was asked,
// because the request that was to ask it ended while waiting for a slot:
// the requests that joined it ask again.
var errLeaderLeft = errors.New("the request asking about the token ended")

// answer is an introspection's claims and when it was asked.
type answer struct {
	c     *Claims
	asked time.Time
}

// introspect returns the claims of an active token meant for audience,
// and when the question they answer was asked: by the request that asked
// it, which may have come before this one (which then joined it), and
// the answer is reused from then, not from when this one came (reuse).
// A signed JWT (signed: its signature verified) is not held to the rate.
func (in *introspector) introspect(ctx context.Context, raw, audience string, now time.Time, signed bool) (c *Claims, asked time.Time, err error) {
	key := tokenKey(raw)
	if e, ok := in.refused.get(key, now); ok {
		return nil, time.Time{}, e
	}
	if e := in.paused(now); e != nil {
		return nil, time.Time{}, e
	}
	for {
		// The question outlives a cancelled request: others may wait on it.
		ch := in.sf.DoChan(string(key[:]), func() (any, error) {
			if e, ok := in.refused.get(key, now); ok { // answered meanwhile
				return nil, e
			}
			release, err := in.budget(ctx, key, now, signed)
			if err != nil {
				return nil, err
			}
			defer release()
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
			defer cancel()
			c, err := in.ask(fctx, raw, audience, now)
			var e *Error
			switch {
			case err == nil && !signed: // a JWT is never held to the rate
				in.active.put(key, struct{}{}, c.Expiry, now)
			case errors.As(err, &e) && e.Code == "invalid_token":
				until := now.Add(in.o.introspectionTTL)
				if c != nil && c.NotBefore.After(now.Add(in.o.leeway)) { // refused for its nbf: until it comes
					until = minTime(until, c.NotBefore.Add(-in.o.leeway))
				}
				in.refused.put(key, e, until, now)
			}
			return answer{c, now}, err
		})
		select {
		case <-ctx.Done():
			return nil, time.Time{}, unavailable("the issuer could not be asked about the token", ctx.Err())
		case r := <-ch:
			if errors.Is(r.Err, errLeaderLeft) {
				if ctx.Err() != nil {
					return nil, time.Time{}, unavailable("the issuer could not be asked about the token", ctx.Err())
				}
				// Ask anew, as of now: held to the rate at the time
				// this request came, seconds before, it would turn the
				// rate's clock back, and the rate would count the time
				// between again.
				now = in.o.now()
				continue
			}
			if r.Err != nil {
				return nil, time.Time{}, r.Err
			}
			a := r.Val.(answer)
			return a.c, a.asked, nil
		}
	}
}

// budget takes a question from the rate (unless the token was seen active
// or is a signed JWT) and a slot, waiting for the slot as long as ctx
// allows, at most fetchTimeout; release frees the slot.
func (in *introspector) budget(ctx context.Context, key [32]byte, now time.Time, signed bool) (release func(), err error) {
	if _, seen := in.active.get(key, now); !seen && !signed {
		r := in.limiter.ReserveN(now, 1)
		if d := r.DelayFrom(now); !r.OK() || d > 0 {
			r.CancelAt(now)
			e := unavailable("too many tokens to introspect just now", ErrIntrospectionThrottled)
			e.RetryAfter = boundRetryAfter(d)
			return nil, e
		}
	}
	if in.slots == nil {
		return func() {}, nil
	}
	select {
	case in.slots <- struct{}{}:
		return func() { <-in.slots }, nil
	default:
	}
	wait := time.NewTimer(fetchTimeout)
	defer wait.Stop()
	select {
	case in.slots <- struct{}{}:
		return func() { <-in.slots }, nil
	case <-ctx.Done():
		return nil, errLeaderLeft
	case <-wait.C:
		return nil, unavailable("too many tokens being introspected just now", ErrIntrospectionThrottled)
	}
}

// paused returns the answer that started a pause still running, with the
// time left.
func (in *introspector) paused(now time.Time) *Error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.pauseErr == nil || !now.Before(in.pausedUntil) {
		return nil
	}
	e := *in.pauseErr
	e.RetryAfter = boundRetryAfter(in.pausedUntil.Sub(now))
	return &e
}

// pause stops questions for e.RetryAfter: the issuer asked for it, or
// refused this API's credentials.
func (in *introspector) pause(e *Error, now time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if until := now.Add(e.RetryAfter); until.After(in.pausedUntil) {
		in.pausedUntil, in.pauseErr = until, e
	}
}

// ask asks the issuer about raw. A token the answer calls active but
// this API's clock refuses is returned with the refusal.
func (in *introspector) ask(ctx context.Context, raw, audience string, now time.Time) (*Claims, error) {
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	cred := in.o.introspect
	if cred.signer != nil {
		a, err := jwt.Signed(cred.signer).Claims(map[string]any{
			"iss": cred.clientID, "sub": cred.clientID, "aud": in.issuer, "jti": rand.Text(),
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		}).Serialize()
		if err != nil {
			return nil, unavailable("cannot sign the introspection client assertion", err)
		}
		form.Set("client_assertion_type", oauth2.ClientAssertionJWT)
		form.Set("client_assertion", a)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, unavailable("cannot build the introspection request", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if cred.signer == nil {
		req.SetBasicAuth(url.QueryEscape(cred.clientID), url.QueryEscape(cred.secret))
	}
	resp, err := in.client.Do(req)
	if err != nil {
		return nil, unavailable("the issuer could not be asked about the token", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		// Not the token's fault: the issuer failed, or refused this API's
		// own credentials.
		refused := resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
			resp.StatusCode == http.StatusBadRequest && clientRefused(body)
		if len(body) > 512 { // for logs: an error page can be large
			body = append(body[:512:512], "…"...)
		}
		cause := fmt.Errorf("introspection: %s: %s", resp.Status, body)
		switch {
		case refused:
			// The caller learns only that its token could not be checked;
			// the cause is for the operator.
			e := unavailable("the issuer could not be asked about the token", fmt.Errorf("%w: %w", ErrIntrospectionUnauthorized, cause))
			e.RetryAfter = retryAfter
			in.pause(e, now)
			return nil, e
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
			e := unavailable("the issuer could not be asked about the token", cause)
			if e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now); e.RetryAfter > 0 {
				in.pause(e, now) // as the issuer asks
			}
			return nil, e
		}
		return nil, unavailable("the issuer could not be asked about the token", cause)
	}
	var r introspection
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, unavailable("the issuer's introspection answer is malformed", err)
	}
	if !r.Active {
		return nil, invalid("the token is not active: expired, revoked, or unknown", nil)
	}
	aud, err := parseAudience(r.Aud)
	if err != nil {
		return nil, invalid("the introspection answer's aud is malformed", err)
	}
	if !slices.Contains(aud, audience) {
		return nil, invalid("the token is not for this API", nil)
	}
	if r.Iss != "" && r.Iss != in.issuer {
		return nil, invalid("the token was issued by another issuer", nil)
	}
	c, err := r.claims(aud)
	if err != nil {
		return nil, invalid("the introspection answer's times are malformed", err)
	}
	c.Issuer = in.issuer
	if c.Expiry.IsZero() {
		return nil, invalid("the introspection answer has no exp", errors.New("missing exp"))
	}
	// RFC 7662 §2.2 makes active the issuer's word, but its clock or a
	// cache of its answers may be off: the token is held to this API's
	// clock and leeway, as a JWT is. Refused here, the answer is
	// remembered like an inactive one (for an nbf ahead, only until the
	// leeway reaches it), and never marks the token active.
	if err := checkTimes(c, now, in.o.leeway); err != nil {
		return c, err // c too: a refusal for an nbf ahead lasts until it comes
	}
	return c, nil
}

// parseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3), seconds
// or an HTTP date, bounded by boundRetryAfter; 0 if absent or malformed.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.ParseUint(h, 10, 32); err == nil {
		return boundRetryAfter(time.Duration(n) * time.Second)
	}
	if t, err := http.ParseTime(h); err == nil {
		return boundRetryAfter(t.Sub(now))
	}
	return 0
}

// clientRefused reports whether body, a 400 answer of the introspection
// endpoint, refuses this API's own credentials, not the request: the
// error codes of RFC 6749 §5.2 for a client (a 400 invalid_client comes
// from an issuer that answers 401 only to Basic authentication), and
// disabled_client, which Keyward, as Google, gives a disabled account.
func clientRefused(body []byte) bool {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return false
	}
	switch e.Error {
	case "invalid_client", "unauthorized_client", "disabled_client":
		return true
	}
	return false
}
