package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/verify"
)

func TestMiddleware(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	v := newVerifier(t, k, verify.WithSelfSignedJWTs())
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFromContext(r.Context())
		w.Write([]byte(c.ClientID))
	})
	read := verify.Middleware(v)(verify.RequireScopes("orders.read")(ok))
	write := verify.Middleware(v)(verify.RequireScopes("orders.read", "orders.write")(ok))
	query := verify.Middleware(v, verify.AllowQueryToken())(ok)
	writeRealm := verify.Middleware(v, verify.WithRealm("orders"))(verify.RequireScopes("orders.read", "orders.write")(ok))
	writeNoRealm := verify.Middleware(v, verify.WithRealm(""))(verify.RequireScopes("orders.read", "orders.write")(ok))
	good := k.Sign(t, nil)
	expired := k.Sign(t, func(c *oauth2.AccessClaims) {
		c.IssuedAt, c.Expiry = k.Clock.Now().Add(-2*time.Hour).Unix(), k.Clock.Now().Add(-time.Hour).Unix()
	})
	sign, _, _ := selfSignedKey(t, k)
	// Sender-chosen text that must not come back in the challenge.
	const evil = `evil"\, error="x` + "\u00e9"
	evilIss := sign(evil+"@shop.iam.test", time.Hour, "https://orders.internal")
	evilTyp := func() string {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType(jose.ContentType(evil)).WithHeader("kid", "k"))
		raw, _ := jwt.Signed(s).Claims(map[string]any{"iss": k.URL}).Serialize()
		return raw
	}()
	const realm = `Bearer realm="https://orders.internal"`
	tests := []struct {
		name       string
		h          http.Handler
		target     string
		auth       []string
		wantStatus int
		wantHeader string // fragment of WWW-Authenticate
		wantExact  bool   // wantHeader is all of it
		wantError  string // the error code of the body and the challenge
	}{
		{"ok", read, "/", []string{"Bearer " + good}, 200, "", false, ""},
		{"lower-case scheme", read, "/", []string{"bearer " + good}, 200, "", false, ""},
		{"no token", read, "/", nil, 401, realm, true, ""},
		{"another scheme", read, "/", []string{"Basic YTpi"}, 401, realm, true, ""},
		{"another scheme, query token", query, "/?access_token=" + good, []string{"Basic YTpi"}, 200, "", false, ""},
		{"bearer without a token", read, "/", []string{"Bearer "}, 400, `error="invalid_request"`, false, "invalid_request"},
		// Spaces and tabs alone separate the token (RFC 7235 §2.1, RFC 9110
		// §5.6.3), not other white space (a no-break space, U+3000).
		{"spaces and a tab around the token", read, "/", []string{"bearer  \t" + good + " \t"}, 200, "", false, ""},
		{"no-break space before the token", read, "/", []string{"Bearer \u00a0" + good}, 400, `error="invalid_request"`, false, "invalid_request"},
		{"ideographic space after the token", read, "/", []string{"Bearer " + good + "\u3000"}, 400, `error="invalid_request"`, false, "invalid_request"},
		{"no-break space before a DPoP token", read, "/", []string{"DPoP \u00a0" + good}, 400, `error="invalid_request"`, false, "invalid_request"},
		{"two headers", read, "/", []string{"Bearer " + good, "Bearer " + good}, 400, `error="invalid_request"`, false, "invalid_request"},
		{"bad token", read, "/", []string{"Bearer abc"}, 401, `error="invalid_token"`, false, "invalid_token"},
		{"expired token", read, "/", []string{"Bearer " + expired}, 401, `error="invalid_token", error_description="the token has expired"`, false, "invalid_token"},
		{"unverified typ", read, "/", []string{"Bearer " + evilTyp}, 401, `error="invalid_token"`, false, "invalid_token"},
		{"unverified iss", read, "/", []string{"Bearer " + evilIss}, 401, `error="invalid_token"`, false, "invalid_token"},
		{"insufficient scope", write, "/", []string{"Bearer " + good}, 403,
			realm + `, error="insufficient_scope", error_description="the token lacks the scope orders.write", scope="orders.read orders.write"`, true, "insufficient_scope"},
		{"insufficient scope, realm set", writeRealm, "/", []string{"Bearer " + good}, 403,
			`Bearer realm="orders", error="insufficient_scope", error_description="the token lacks the scope orders.write", scope="orders.read orders.write"`, true, "insufficient_scope"},
		{"insufficient scope, no realm", writeNoRealm, "/", []string{"Bearer " + good}, 403,
			`Bearer error="insufficient_scope", error_description="the token lacks the scope orders.write", scope="orders.read orders.write"`, true, "insufficient_scope"},
		{"query token refused by default", read, "/?access_token=" + good, nil, 401, realm, true, ""},
		{"query token when allowed", query, "/?access_token=" + good, nil, 200, "", false, ""},
		{"header and query", query, "/?access_token=" + good, []string{"Bearer " + good}, 400, `error="invalid_request"`, false, "invalid_request"},
		{"two query tokens", query, "/?access_token=" + good + "&access_token=" + good, nil, 400, `error="invalid_request"`, false, "invalid_request"},
		{"header, and an empty and a query token", query, "/?access_token=&access_token=" + good, []string{"Bearer " + good}, 400, `error="invalid_request"`, false, "invalid_request"},
		{"RequireScopes without Middleware", verify.RequireScopes("x")(ok), "/", nil, 401, `Bearer error="invalid_token"`, false, "invalid_token"},
	}
	// RFC 6750 §3: error_description is printable ASCII but " and \.
	descChars := regexp.MustCompile(`error_description="([\x20\x21\x23-\x5B\x5D-\x7E]*)"`)
	descText := regexp.MustCompile(`^[\x20\x21\x23-\x5B\x5D-\x7E]*$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			for _, a := range tt.auth {
				r.Header.Add("Authorization", a)
			}
			w := httptest.NewRecorder()
			tt.h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body, tt.wantStatus)
			}
			got := w.Header().Get("WWW-Authenticate")
			if !strings.Contains(got, tt.wantHeader) || tt.wantExact && got != tt.wantHeader {
				t.Fatalf("WWW-Authenticate = %q, want %q", got, tt.wantHeader)
			}
			if w.Code == 200 {
				return
			}
			if strings.Contains(got, `realm=""`) || strings.Contains(got, "evil") || strings.Contains(got, "error=") != (tt.wantError != "") ||
				strings.Contains(got, "error_description") && !descChars.MatchString(got) {
				t.Fatalf("WWW-Authenticate = %q: an empty realm, sender-chosen text, characters RFC 6750 refuses, or an error code where none belongs", got)
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] != tt.wantError || strings.Contains(body["error_description"], "evil") {
				t.Fatalf("body %s, want error %q (as the challenge) and no sender-chosen text", w.Body, tt.wantError)
			}
			// RFC 6750 §3.1: without a token, no error code or other
			// error information, in the body as in the challenge.
			if tt.wantError == "" && len(body) != 0 {
				t.Fatalf("body %s, want {} for a request without a token", w.Body)
			}
			// The body's description is the challenge's, as clean: it
			// held characters RFC 6749 §5.2 refuses (the § of "RFC 9068
			// §4") that the challenge had replaced.
			if m := descChars.FindStringSubmatch(got); m != nil && body["error_description"] != m[1] ||
				!descText.MatchString(body["error_description"]) {
				t.Fatalf("body error_description %q, want the challenge's (%q), in the characters RFC 6749 §5.2 allows", body["error_description"], got)
			}
		})
	}
}

// BenchmarkVerifyCold is signature-bound: a new token every time.
// go test ./verify -run '^$' -bench Verify -benchmem
func BenchmarkVerifyCold(b *testing.B) {
	k := testkeyward.Start(b)
	v := newVerifier(b, k)
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i] = k.Sign(b, func(c *oauth2.AccessClaims) { c.ID = string(rune(i)) + "-" + strings.Repeat("x", i%7) })
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := v.Verify(ctx, tokens[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyWarm is the hot path of a busy API: the same tokens again.
func BenchmarkVerifyWarm(b *testing.B) {
	k := testkeyward.Start(b)
	v := newVerifier(b, k)
	ctx := context.Background()
	tokens := make([]string, 64)
	for i := range tokens {
		tokens[i] = k.Sign(b, func(c *oauth2.AccessClaims) { c.ID = strings.Repeat("y", i+1) })
		v.Verify(ctx, tokens[i])
	}
	verifyParallel(b, ctx, v, tokens)
}

// verifyParallel benchmarks v.Verify of tokens (64 of them), warm, in
// parallel.
func verifyParallel(b *testing.B, ctx context.Context, v *verify.Verifier, tokens []string) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := v.Verify(ctx, tokens[i&63]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkVerifyWarmSelfSigned is the hot path for service accounts'
// own JWTs (WithSelfSignedJWTs), reused: early in their keys' 5 minutes,
// and in the last 30 s, where each hit also checks (under the account
// keys' read lock) whether the keys are due to be fetched ahead.
func BenchmarkVerifyWarmSelfSigned(b *testing.B) {
	for _, tt := range []struct {
		name string
		at   time.Duration
	}{{"fresh", time.Minute}, {"last30s", 4*time.Minute + 45*time.Second}} {
		b.Run(tt.name, func(b *testing.B) {
			s := newStubIssuer(b, true, nil)
			start := time.Now()
			var off atomic.Int64
			ctx := context.Background()
			v := s.verifier(b, ctx, verify.WithClock(func() time.Time { return start.Add(time.Duration(off.Load())) }))
			tokens := make([]string, 64)
			for i := range tokens {
				tokens[i] = s.token(b, "k1")
				if _, err := v.Verify(ctx, tokens[i]); err != nil {
					b.Fatal(err)
				}
			}
			off.Store(int64(tt.at))
			verifyParallel(b, ctx, v, tokens)
		})
	}
}

// Quoting a challenge's realm or scope allocates nothing when there is
// nothing to escape: a strings.Replacer was built (and its tables with
// it) for every refusal, twice with a scope.
func TestQuoteAllocs(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://orders.internal", "https://orders.internal"},
		{`a"b\c`, `a\"b\\c`},
	} {
		if got := verify.Quote(tt.in); got != tt.want {
			t.Fatalf("quote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { verify.Quote("https://orders.internal") }); n != 0 {
		t.Fatalf("quote of a realm with nothing to escape: %v allocations, want 0", n)
	}
}

func BenchmarkQuote(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		verify.Quote("https://orders.internal")
	}
}
