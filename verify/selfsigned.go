package verify

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/time/rate"

	"github.com/keyward/keyward/internal/jwspad"
)

// accountKeys caches service accounts' public keys, fetched from the
// issuer's /service_accounts/v1/jwk/{email}.
type accountKeys struct {
	issuer string
	o      options

	mu   sync.Mutex
	sets map[string]accountSet
	// limiter bounds fetches for unknown accounts or kids, so a flood of
	// made-up emails cannot hammer the issuer.
	limiter *rate.Limiter
}

type accountSet struct {
	keys    jose.JSONWebKeySet
	fetched time.Time
}

func newAccountKeys(issuer string, o options) *accountKeys {
	return &accountKeys{issuer: issuer, o: o, sets: map[string]accountSet{}, limiter: rate.NewLimiter(rate.Every(time.Second), 10)}
}

// key returns the account's key with kid (any key when kid is empty).
func (a *accountKeys) key(ctx context.Context, email, kid string, alg string) []jose.JSONWebKey {
	now := a.o.now()
	a.mu.Lock()
	set, ok := a.sets[email]
	a.mu.Unlock()
	stale := !ok || now.Sub(set.fetched) > 5*time.Minute
	if (stale || (kid != "" && len(set.keys.Key(kid)) == 0)) && a.limiter.Allow() {
		var fresh jose.JSONWebKeySet
		if err := getJSON(ctx, a.o.client, a.issuer+"/service_accounts/v1/jwk/"+url.PathEscape(email), &fresh, nil); err == nil {
			set = accountSet{keys: fresh, fetched: now}
			a.mu.Lock()
			if len(a.sets) > 10_000 {
				clear(a.sets)
			}
			a.sets[email] = set
			a.mu.Unlock()
		}
	}
	var out []jose.JSONWebKey
	for _, k := range set.keys.Keys {
		if (kid == "" || k.KeyID == kid) && k.Algorithm == alg {
			out = append(out, k)
		}
	}
	return out
}

// verifySelfSigned checks a service account's own JWT used as a bearer
// token: iss = sub = the account email, aud = this API, at most an hour
// long, signed RS256 or ES256 with one of the account's published keys.
func (v *Verifier) verifySelfSigned(ctx context.Context, raw string, now time.Time) (*Claims, error) {
	// google-auth for Python before 1.6.3 pads the segments of the JWTs it
	// signs; the signature then covers them as sent.
	compact, padded, err := jwspad.Unpad(raw)
	if err != nil {
		return nil, invalid("the token's base64 padding is wrong", err)
	}
	jws, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return nil, invalid("the token is neither an access token nor a service account's JWT", err)
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Iat json.Number     `json:"iat"`
		Exp json.Number     `json:"exp"`
	}
	h := jws.Signatures[0].Protected
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil || c.Iss == "" || c.Iss != c.Sub || !strings.Contains(c.Iss, "@") {
		return nil, invalid("a service account's JWT needs iss = sub = the account email", err)
	}
	var payload []byte
	for _, k := range v.accounts.key(ctx, c.Iss, h.KeyID, h.Algorithm) {
		if padded != nil {
			if padded.Verify(k.Key, jose.SignatureAlgorithm(h.Algorithm)) == nil {
				payload = jws.UnsafePayloadWithoutVerification()
				break
			}
			continue
		}
		if p, err := jws.Verify(k.Key); err == nil {
			payload = p
			break
		}
	}
	if payload == nil {
		return nil, invalid("the JWT is not signed with a key of "+c.Iss, nil)
	}
	aud, err := parseAudience(c.Aud)
	if err != nil || len(aud) != 1 || aud[0] != v.audience {
		return nil, invalid("the JWT's aud must be this API, "+v.audience, err)
	}
	iat, err1 := numericDate(c.Iat)
	exp, err2 := numericDate(c.Exp)
	if err1 != nil || err2 != nil || iat.IsZero() || exp.IsZero() {
		return nil, invalid("the JWT needs numeric iat and exp", nil)
	}
	if life := exp.Sub(iat); life <= 0 || life > v.o.maxSelfSignedAge {
		return nil, invalid("a service account's JWT may live at most an hour (exp - iat)", nil)
	}
	cl := &Claims{Issuer: c.Iss, Subject: c.Sub, ClientEmail: c.Iss, Audience: aud, IssuedAt: iat, Expiry: exp, SelfSigned: true}
	if err := v.checkTimes(cl, now); err != nil {
		return nil, err
	}
	return cl, nil
}
