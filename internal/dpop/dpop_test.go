package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/internal/ascii"
)

var (
	t0       = time.Unix(1_800_000_000, 0)
	target   = "https://keyward.example/token"
	p256, _  = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _  = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b64(b)
}

// pubJWK is the public JWK of k as a JSON object.
func pubJWK(k crypto.PublicKey) map[string]any {
	b, err := json.Marshal(jose.JSONWebKey{Key: k})
	if err != nil {
		panic(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

// es256 signs input with an EC key as JWS wants it: r || s.
func es256(k *ecdsa.PrivateKey) func(string) []byte {
	return func(input string) []byte {
		sum := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			panic(err)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out
	}
}

// build makes a compact JWS from a header and claims, signed by sign.
func build(hdr, claims map[string]any, sign func(string) []byte) string {
	input := b64JSON(hdr) + "." + b64JSON(claims)
	return input + "." + b64(sign(input))
}

// unencoded is build with the signature over the claims unencoded, as
// b64 false (RFC 7797) has it; the claims are sent base64url-encoded all
// the same, as go-jose's compact serialization does.
func unencoded(hdr, claims map[string]any, sign func(string) []byte) string {
	raw, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	h := b64JSON(hdr)
	return h + "." + b64(raw) + "." + b64(sign(h+"."+string(raw)))
}

// signedClaims is build with the claims as given, raw JSON.
func signedClaims(hdr map[string]any, claims string, sign func(string) []byte) string {
	input := b64JSON(hdr) + "." + b64([]byte(claims))
	return input + "." + b64(sign(input))
}

func header() map[string]any {
	return map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": pubJWK(&p256.PublicKey)}
}

func claimSet() map[string]any {
	return map[string]any{"jti": "j-1", "htm": "POST", "htu": target, "iat": t0.Unix()}
}

// with returns a copy of m with changes; a nil value deletes the member.
func with(m map[string]any, changes map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

func checker() *Checker { return &Checker{Now: func() time.Time { return t0 }} }

func TestCheckAccepts(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		url  string // of the request, if not target
		req  Request
	}{
		{name: "ES256", key: p256},
		{name: "ES384", key: p384},
		{name: "EdDSA", key: edKey},
		{name: "RS256", key: rsaKey},
		{name: "query and fragment ignored", key: p256, url: target + "?a=b#frag"},
		{name: "host case and default port", key: p256, url: "HTTPS://Keyward.Example:443/token"},
		{name: "with access token", key: p256, req: Request{AccessToken: "tok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewProver(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := p.Proof("POST", target, tc.req.AccessToken, t0)
			if err != nil {
				t.Fatal(err)
			}
			req := tc.req
			req.Method, req.URL = "POST", target
			if tc.url != "" {
				req.URL = tc.url
			}
			got, err := checker().Check([]string{raw}, req)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got.JKT != p.JKT() || got.JTI == "" || !got.IssuedAt.Equal(t0) {
				t.Errorf("got %+v, want jkt %s", got, p.JKT())
			}
		})
	}
}

func TestCheckRefuses(t *testing.T) {
	sign := es256(p256)
	ok := build(header(), claimSet(), sign)
	hs := func(input string) []byte {
		m := hmac.New(sha256.New, []byte("secret"))
		m.Write([]byte(input))
		return m.Sum(nil)
	}
	privJWK := pubJWK(&p256.PublicKey)
	privJWK["d"] = b64(p256.D.FillBytes(make([]byte, 32)))
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallSign := func(input string) []byte {
		sum := sha256.Sum256([]byte(input))
		s, _ := rsa.SignPKCS1v15(rand.Reader, small, crypto.SHA256, sum[:])
		return s
	}
	ed, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edSign := func(input string) []byte { return ed25519.Sign(edKey, []byte(input)) }
	hdr, cl := header(), claimSet()

	for _, tc := range []struct {
		name   string
		values []string
		req    Request // Method and URL default to POST target
		want   string  // in the description
	}{
		{"none", nil, Request{}, "no DPoP proof"},
		{"two headers", []string{ok, ok}, Request{}, "more than one"},
		{"oversize", []string{ok + strings.Repeat("A", MaxProofSize)}, Request{}, "too large"},
		{"two parts", []string{b64JSON(hdr) + "." + b64JSON(cl)}, Request{}, "compact JWS"},
		{"line break", []string{ok[:10] + "\n" + ok[10:]}, Request{}, "compact JWS"},
		{"alg none", []string{build(with(hdr, map[string]any{"alg": "none"}), cl, func(string) []byte { return nil })}, Request{}, "alg is not one of"},
		{"alg None", []string{build(with(hdr, map[string]any{"alg": "None"}), cl, func(string) []byte { return nil })}, Request{}, "alg is not one of"},
		{"no alg", []string{build(with(hdr, map[string]any{"alg": nil}), cl, sign)}, Request{}, "alg is not one of"},
		{"alg HS256", []string{build(with(hdr, map[string]any{"alg": "HS256", "jwk": map[string]any{"kty": "oct", "k": b64([]byte("secret"))}}), cl, hs)}, Request{}, "alg is not one of"},
		{"alg HS256 with an EC jwk", []string{build(with(hdr, map[string]any{"alg": "HS256"}), cl, hs)}, Request{}, "alg is not one of"},
		{"alg ES512", []string{build(with(hdr, map[string]any{"alg": "ES512"}), cl, sign)}, Request{}, "alg is not one of"},
		{"symmetric jwk with an allowed alg", []string{build(with(hdr, map[string]any{"jwk": map[string]any{"kty": "oct", "k": b64([]byte("secret"))}}), cl, sign)}, Request{}, "private or symmetric"},
		{"header not JSON", []string{b64([]byte("{")) + "." + b64JSON(cl) + ".AAAA"}, Request{}, "not a JSON object"},
		{"no typ", []string{build(with(hdr, map[string]any{"typ": nil}), cl, sign)}, Request{}, "typ"},
		{"typ jwt", []string{build(with(hdr, map[string]any{"typ": "JWT"}), cl, sign)}, Request{}, "typ"},
		{"typ at+jwt", []string{build(with(hdr, map[string]any{"typ": "at+jwt"}), cl, sign)}, Request{}, "typ"},
		{"no jwk", []string{build(with(hdr, map[string]any{"jwk": nil}), cl, sign)}, Request{}, "no jwk"},
		{"private jwk", []string{build(with(hdr, map[string]any{"jwk": privJWK}), cl, sign)}, Request{}, "private or symmetric"},
		{"jwk of another key", []string{build(with(hdr, map[string]any{"jwk": pubJWK(&other.PublicKey)}), cl, sign)}, Request{}, "signature"},
		{"ES256 with a P-384 jwk", []string{build(with(hdr, map[string]any{"jwk": pubJWK(&p384.PublicKey)}), cl, es256(p384))}, Request{}, "does not fit"},
		{"EdDSA with an EC jwk", []string{build(with(hdr, map[string]any{"alg": "EdDSA"}), cl, edSign)}, Request{}, "does not fit"},
		{"ES256 with an Ed25519 jwk", []string{build(with(hdr, map[string]any{"jwk": pubJWK(ed)}), cl, sign)}, Request{}, "does not fit"},
		{"RSA 1024", []string{build(with(hdr, map[string]any{"alg": "RS256", "jwk": pubJWK(&small.PublicKey)}), cl, smallSign)}, Request{}, "does not fit"},
		{"RSA 8200", []string{build(with(hdr, map[string]any{"alg": "RS256", "jwk": map[string]any{"kty": "RSA", "n": b64(new(big.Int).Lsh(big.NewInt(1), 8199).Bytes()), "e": "AQAB"}}), cl, smallSign)}, Request{}, "usable public jwk"},
		{"bad signature", []string{ok[:len(ok)-4] + "AAAA"}, Request{}, "signature"},
		{"crit header", []string{build(with(hdr, map[string]any{"crit": []string{"exp"}, "exp": 1}), cl, sign)}, Request{}, ""},
		// go-jose honours b64 false (RFC 7797), with crit or without,
		// and would check the signature over the raw claims; a b64 that
		// is not a bool it reads as true.
		{"b64 false, critical", []string{unencoded(with(hdr, map[string]any{"b64": false, "crit": []string{"b64"}}), cl, sign)}, Request{}, "b64"},
		{"b64 false, not critical", []string{unencoded(with(hdr, map[string]any{"b64": false}), cl, sign)}, Request{}, "b64"},
		{"b64 not a bool", []string{build(with(hdr, map[string]any{"b64": "true"}), cl, sign)}, Request{}, "b64"},
		{"claims not JSON", []string{func() string {
			in := b64JSON(hdr) + "." + b64([]byte("not json"))
			return in + "." + b64(sign(in))
		}()}, Request{}, "malformed"},
		{"no jti", []string{build(hdr, with(cl, map[string]any{"jti": nil}), sign)}, Request{}, "lacks jti"},
		{"no htm", []string{build(hdr, with(cl, map[string]any{"htm": nil}), sign)}, Request{}, "lacks htm"},
		{"no htu", []string{build(hdr, with(cl, map[string]any{"htu": nil}), sign)}, Request{}, "lacks htu"},
		{"no iat", []string{build(hdr, with(cl, map[string]any{"iat": nil}), sign)}, Request{}, "lacks iat"},
		{"jti with a NUL", []string{build(hdr, with(cl, map[string]any{"jti": "a\x00b"}), sign)}, Request{}, "NUL"},
		{"jti too long", []string{build(hdr, with(cl, map[string]any{"jti": strings.Repeat("j", MaxJTILength+1)}), sign)}, Request{}, "too long"},
		{"htm other method", []string{ok}, Request{Method: "GET"}, "htm"},
		{"htm lower case", []string{build(hdr, with(cl, map[string]any{"htm": "post"}), sign)}, Request{}, "htm"},
		{"htu other path", []string{ok}, Request{URL: "https://keyward.example/introspect"}, "htu"},
		{"htu trailing slash", []string{ok}, Request{URL: target + "/"}, "htu"},
		{"htu other host", []string{ok}, Request{URL: "https://evil.example/token"}, "htu"},
		{"htu other port", []string{ok}, Request{URL: "https://keyward.example:8443/token"}, "htu"},
		{"htu http", []string{ok}, Request{URL: "http://keyward.example/token"}, "htu"},
		{"htu with userinfo", []string{build(hdr, with(cl, map[string]any{"htu": "https://a@keyward.example/token"}), sign)}, Request{}, "htu"},
		{"htu with %2F decoded", []string{build(hdr, with(cl, map[string]any{"htu": "https://keyward.example/a/b{"}), sign)}, Request{URL: "https://keyward.example/a%2Fb{"}, "htu"},
		{"htu dot segments", []string{build(hdr, with(cl, map[string]any{"htu": "https://keyward.example/x/../token"}), sign)}, Request{}, "htu"},
		{"htu relative", []string{build(hdr, with(cl, map[string]any{"htu": "/token"}), sign)}, Request{}, "htu"},
		{"htu not a string", []string{build(hdr, with(cl, map[string]any{"htu": 7}), sign)}, Request{}, "malformed"},
		{"iat string", []string{build(hdr, with(cl, map[string]any{"iat": "soon"}), sign)}, Request{}, "malformed"},
		// Claim names are case-sensitive (RFC 7519 §4), a NumericDate is a
		// JSON number (§2), and a claim named twice is refused, as go-jose
		// refuses a header member named twice.
		{"htu in upper case", []string{build(hdr, with(cl, map[string]any{"htu": nil, "HTU": target}), sign)}, Request{}, "lacks htu"},
		{"jti in mixed case", []string{build(hdr, with(cl, map[string]any{"jti": nil, "Jti": "j-1"}), sign)}, Request{}, "lacks jti"},
		{"iat a string of digits", []string{build(hdr, with(cl, map[string]any{"iat": strconv.FormatInt(t0.Unix(), 10)}), sign)}, Request{}, "malformed"},
		{"iat null", []string{build(hdr, with(cl, map[string]any{"iat": json.RawMessage("null")}), sign)}, Request{}, "lacks iat"},
		{"htu twice", []string{signedClaims(hdr, `{"jti":"j-1","htm":"POST","htu":"https://evil.example/token","iat":`+strconv.FormatInt(t0.Unix(), 10)+`,"htu":"`+target+`"}`, sign)}, Request{}, "malformed"},
		{"iat huge", []string{build(hdr, with(cl, map[string]any{"iat": 1e300}), sign)}, Request{}, "iat"},
		{"iat too old", []string{build(hdr, with(cl, map[string]any{"iat": t0.Add(-DefaultMaxAge - DefaultSkew - time.Second).Unix()}), sign)}, Request{}, "too old"},
		{"iat in the future", []string{build(hdr, with(cl, map[string]any{"iat": t0.Add(DefaultSkew + time.Second).Unix()}), sign)}, Request{}, "future"},
		{"no ath with a token", []string{ok}, Request{AccessToken: "tok"}, "lacks ath"},
		{"ath of another token", []string{build(hdr, with(cl, map[string]any{"ath": TokenHash("other")}), sign)}, Request{AccessToken: "tok"}, "another access token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			if req.Method == "" {
				req.Method = "POST"
			}
			if req.URL == "" {
				req.URL = target
			}
			p, err := checker().Check(tc.values, req)
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("Check = %+v, %v; want a refusal", p, err)
			}
			if !strings.Contains(de.Description, tc.want) {
				t.Errorf("description %q, want it to contain %q", de.Description, tc.want)
			}
		})
	}
	// The limits are inclusive.
	for _, iat := range []time.Time{t0.Add(-DefaultMaxAge - DefaultSkew), t0.Add(DefaultSkew)} {
		if _, err := checker().Check([]string{build(hdr, with(cl, map[string]any{"iat": iat.Unix()}), sign)}, Request{Method: "POST", URL: target}); err != nil {
			t.Errorf("iat %v: %v", iat.Sub(t0), err)
		}
	}
}

// TestCheckTyp: a proof's typ is the media type application/dpop+jwt
// (RFC 9449 §4.2), which a typ may write without "application/" (RFC
// 7515 §4.1.9) and in any case (RFC 6838 §4.2); any other typ is refused.
func TestCheckTyp(t *testing.T) {
	sign := es256(p256)
	for _, tc := range []struct {
		name string
		typ  any
		ok   bool
	}{
		{"dpop+jwt", "dpop+jwt", true},
		{"upper case", "DPoP+JWT", true},
		{"application/dpop+jwt", "application/dpop+jwt", true},
		{"mixed-case media type", "Application/DPoP+jwt", true},
		{"another top-level type", "text/dpop+jwt", false},
		{"application/ alone", "application/", false},
		{"application/jwt", "application/jwt", false},
		{"a parameter", "application/dpop+jwt; charset=utf-8", false},
		{"a space", "dpop+jwt ", false},
		{"two prefixes", "application/application/dpop+jwt", false},
		{"typ not a string", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := build(with(header(), map[string]any{"typ": tc.typ}), claimSet(), sign)
			_, err := checker().Check([]string{raw}, Request{Method: "POST", URL: target})
			if tc.ok {
				if err != nil {
					t.Fatalf("typ %v refused: %v", tc.typ, err)
				}
				return
			}
			var de *Error
			if !errors.As(err, &de) || !strings.Contains(de.Description, "typ") {
				t.Fatalf("typ %v: Check = %v, want a refusal of the typ", tc.typ, err)
			}
		})
	}
}

func TestNormalizeURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://a.example/token", "https://a.example/token"},
		{"HTTPS://A.Example:443/token?x=1#f", "https://a.example/token"},
		{"http://a.example:80", "http://a.example/"},
		{"https://a.example:80/", "https://a.example:80/"},
		{"http://a.example:443/", "http://a.example:443/"},
		{"https://[::1]:443/x", "https://[::1]/x"},
		{"https://[::1]:8443/x", "https://[::1]:8443/x"},
		{"https://a.example/%7euser/%2f", "https://a.example/~user/%2F"},
		{"https://a.example/Token", "https://a.example/Token"},
		{"https://a.example/token/", "https://a.example/token/"},
		// The path as written: a reserved character percent-encoded is not
		// that character (RFC 3986 §6.2.2.2), though a byte a URI cannot
		// hold ('{', non-ASCII) makes url.URL.EscapedPath decode it.
		{"https://a.example/a%2Fb{", "https://a.example/a%2Fb%7B"},
		{"https://a.example/a/b{", "https://a.example/a/b%7B"},
		{"https://a.example/ü%2f%3By", "https://a.example/%C3%BC%2F%3By"},
		{"https://a.example/%C3%BC/y", "https://a.example/%C3%BC/y"},
		{"https://a.example/a b", "https://a.example/a%20b"},
		{"https://a.example/a!$&'()*+,;=:@b", "https://a.example/a!$&'()*+,;=:@b"},
		{"https://a.example/a%21b", "https://a.example/a%21b"},
		{"ftp://a.example/", ""},
		{"https:///token", ""},
		{"https://u:p@a.example/", ""},
		{"mailto:a@b", ""},
		{"/token", ""},
		{"https://a.example/%zz", ""},
		{"https://a.example:bad/", ""},
		{"https://[fe80::1%25eth0]/token", ""}, // an IPv6 zone names an interface of the sender's
		{"https://a%25b.example/", ""},
		// A host name that is not ASCII is written as net/http sends it in
		// the Host header: each such label as "xn--" and its Punycode.
		{"https://bücher.example/token", "https://xn--bcher-kva.example/token"},
		{"https://b%C3%BCcher.example/token", "https://xn--bcher-kva.example/token"},
		{"https://Bücher.Example:443/token", "https://xn--bcher-kva.example/token"},
		{"https://XN--BCHER-KVA.example/token", "https://xn--bcher-kva.example/token"},
		{"https://münchen.bücher.example:8443/", "https://xn--mnchen-3ya.xn--bcher-kva.example:8443/"},
		{"https://%FF.example/", ""},
		{"https://" + strings.Repeat("ü", 59) + ".example/", ""},
		{"https://" + strings.Repeat("ü", 58) + ".example/", ""}, // xn--tdaaaa…, 64 characters
		{"https://" + strings.Repeat("a", 60) + "ü.example/", ""},
		{"https://" + strings.Repeat("a", 55) + "ü.example/", "https://xn--" + strings.Repeat("a", 55) + "-8yf.example/"}, // 63 characters
	} {
		got, err := NormalizeURL(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("NormalizeURL(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormalizeURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// WrittenPath gives a request-target's path as written, but for a '#',
// which is no fragment there and would end the path of a URL made of it.
func TestWrittenPath(t *testing.T) {
	for _, tc := range []struct{ target, want string }{
		{"/a/b", "/a/b"},
		{"/a%2Fb{", "/a%2Fb{"},
		{"/a#b", "/a%23b"},
		{"/a%2Fb{#/../x", "/a%2Fb{%23/../x"},
		{"http://h.example/p#q", "/p%23q"},
		{"http://h.example", ""},
	} {
		u, err := url.ParseRequestURI(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if got := WrittenPath(u); got != tc.want {
			t.Errorf("WrittenPath(%q) = %q, want %q", tc.target, got, tc.want)
		}
	}
}

// A RawPath that no longer decodes to Path, as a handler that sets Path
// alone leaves it, is not the path: WrittenPath is EscapedPath's then.
func TestWrittenPathStale(t *testing.T) {
	for _, tc := range []struct{ target, path, want string }{
		{"/api/a%2Fb{", "/a/b{", "/a/b%7B"},
		{"/api/a#b", "/a#b", "/a%23b"},
		{"/api/x%2Fy", "/x/y", "/x/y"},
	} {
		u, err := url.ParseRequestURI(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = tc.path // RawPath left as it was
		if got := WrittenPath(u); got != tc.want {
			t.Errorf("WrittenPath of %q with Path set to %q = %q, want %q", tc.target, tc.path, got, tc.want)
		}
	}
}

// FuzzNormalizeURL: NormalizeURL, which reads a proof's htu and, in
// verify, a URL built from the request's Host header, never panics, and
// what it returns is an http(s) URL without query or fragment that it
// returns unchanged (so without userinfo too).
func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{target, "HTTPS://A.Example:443/token?x=1#f", "https://[::1]:443/x", "https://a.example/%7euser/%2f",
		"https://[fe80::1%25eth0]/", "https://STRAẞE.example/orders", "http://a.example:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeURL(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(n, "https://") && !strings.HasPrefix(n, "http://") || strings.ContainsAny(n, "?#") {
			t.Fatalf("NormalizeURL(%q) = %q", s, n)
		}
		if again, err := NormalizeURL(n); err != nil || again != n {
			t.Fatalf("NormalizeURL(%q) = %q, and again %q, %v", s, n, again, err)
		}
	})
}

// A host name is lowered in its ASCII letters only: Unicode case mapping
// makes one name of two that net/http dials as different domains, so a
// proof made for the one would pass for the other. "STRAẞE" and "straße"
// lower alike, but IDNA maps them to strasse and xn--strae-oqa.
func TestNormalizeURLUnicodeHost(t *testing.T) {
	a, errA := NormalizeURL("https://STRAẞE.example/orders")
	b, errB := NormalizeURL("https://straße.example/orders")
	if errA != nil || errB != nil || a == b {
		t.Errorf("NormalizeURL: %q, %v and %q, %v; want two URLs", a, errA, b, errB)
	}
	if err := matchURL("https://STRAẞE.example/orders", "https://straße.example/orders", false); err == nil {
		t.Error("a proof for STRAẞE.example (strasse.example) matched straße.example (xn--strae-oqa.example)")
	}
	if got, err := NormalizeURL("https://ÄPI.Example/x"); err != nil || got != "https://xn--pi-3fa.example/x" {
		t.Errorf("NormalizeURL = %q, %v; want its ASCII letters lowered alone (Äpi), in Punycode", got, err)
	}
}

// A host name that is not ASCII is normalized to the name net/http puts
// in the Host header of a request to it (request.Write, and HTTP/2's
// :authority, both Punycode with no mapping): what a server that builds
// its URL from the Host header compares a proof's htu with. The names
// include RFC 3492 §7.1's samples, in mixed case among them.
func TestNormalizeURLHostAsSent(t *testing.T) {
	for _, host := range []string{
		"bücher.example", "Bücher.Example:8443", "münchen.bücher.example", "STRAẞE.example", "straße.example",
		"他们为什么不说中文.example", "ليهمابتكلموشعربي؟.example", "Pročprostěnemluvíčesky.example",
		"3年B組金八先生.example", "MajiでKoiする5秒前.example", "דפוס.example", "a.béééé.example",
		"😀.example", "ÄPI.Example", "Äpi.example",
	} {
		r, err := http.NewRequest("GET", "https://"+host+"/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := r.Write(&b); err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		_, sent, _ := strings.Cut(b.String(), "\r\nHost: ")
		sent, _, _ = strings.Cut(sent, "\r\n")
		want, err := NormalizeURL("https://" + sent + "/x")
		if err != nil {
			t.Fatalf("%s: the Host header %q: %v", host, sent, err)
		}
		if got, err := NormalizeURL("https://" + host + "/x"); err != nil || got != want {
			t.Errorf("NormalizeURL of %s = %q, %v; want %q (net/http sends Host: %s)", host, got, err, want, sent)
		}
	}
}

// A proof signed for a host name in Unicode matches a request that came
// to its Punycode form, as net/http sends it, and the other way round.
func TestCheckUnicodeHost(t *testing.T) {
	p, err := NewProver(p256)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ signed, received string }{
		{"https://bücher.example/token", "https://xn--bcher-kva.example/token"},
		{"https://xn--bcher-kva.example/token", "https://bücher.example/token"},
		{"https://bücher.example/token", "https://bücher.example/token"},
	} {
		raw, err := p.Proof("POST", tc.signed, "", t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := checker().Check([]string{raw}, Request{Method: "POST", URL: tc.received}); err != nil {
			t.Errorf("a proof for %s, received at %s: %v", tc.signed, tc.received, err)
		}
		// A checker given the request's URL already normalized.
		want, err := NormalizeURL(tc.received)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := checker().Check([]string{raw}, Request{Method: "POST", URL: want, URLNormalized: true}); err != nil {
			t.Errorf("a proof for %s, received at %s (normalized): %v", tc.signed, want, err)
		}
	}
}

func TestReplayCache(t *testing.T) {
	c := &Checker{}
	rc := NewReplayCache(c.Retention(), 3)
	now := t0
	if err := rc.Use("", "k", "a", now); err != nil {
		t.Fatal(err)
	}
	if err := rc.Use("", "k", "a", now.Add(time.Second)); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay: %v, want ErrReplayed", err)
	}
	// The same jti under another key is another proof; the separator
	// keeps "k"+"ab" apart from "ka"+"b".
	if err := rc.Use("", "k2", "a", now); err != nil {
		t.Fatal(err)
	}
	if err := rc.Use("", "ka", "", now); err != nil {
		t.Fatal(err)
	}
	if err := rc.Use("", "x", "y", now); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("full: %v, want ErrReplayCacheFull", err)
	}
	// Just before retention ends, the proof is still remembered; after,
	// it is forgotten and room is made.
	if err := rc.Use("", "k", "a", now.Add(c.Retention()-time.Nanosecond)); !errors.Is(err, ErrReplayed) {
		t.Fatalf("before retention: %v, want ErrReplayed", err)
	}
	later := now.Add(c.Retention())
	if err := rc.Use("", "x", "y", later); err != nil {
		t.Fatalf("after retention: %v", err)
	}
	if n := rc.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
}

// Remembering a proof allocates nothing but the room the cache grows
// into: it is on the path of every DPoP request to an API.
func TestReplayCacheUseAllocs(t *testing.T) {
	rc := NewReplayCache(time.Minute, 1<<20)
	jtis := make([]string, 1000)
	for i := range jtis {
		jtis[i] = fmt.Sprint("jti-", i)
	}
	i := 0
	if n := testing.AllocsPerRun(len(jtis)-1, func() {
		if err := rc.Use("client", "jkt", jtis[i], t0); err != nil {
			t.Fatal(err)
		}
		i++
	}); n != 0 {
		t.Errorf("Use: %v allocations, want 0", n)
	}
}

// TestReplayCacheOwnerShare: one owner (a client) fills at most a quarter
// of the cache; others still get room, and its share comes back as its
// proofs expire.
func TestReplayCacheOwnerShare(t *testing.T) {
	c := &Checker{}
	rc := NewReplayCache(c.Retention(), 8)
	for i := range 2 {
		if err := rc.Use("greedy", "k", fmt.Sprint(i), t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.Use("greedy", "k2", "x", t0); !errors.Is(err, ErrOwnerShareFull) {
		t.Fatalf("third proof of one owner in a cache of 8: %v, want ErrOwnerShareFull", err)
	}
	if err := rc.Use("greedy", "k", "0", t0); !errors.Is(err, ErrReplayed) {
		t.Fatalf("a replay is a replay, share or not: %v", err)
	}
	for i := range 6 {
		if err := rc.Use(fmt.Sprint("client", i), "k", fmt.Sprint("c", i), t0); err != nil {
			t.Fatalf("another client: %v", err)
		}
	}
	if err := rc.Use("late", "k", "a", t0); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("full: %v, want ErrReplayCacheFull", err)
	}
	if err := rc.Use("greedy", "k", "new", t0.Add(c.Retention())); err != nil {
		t.Fatalf("after its proofs expired: %v", err)
	}
}

// TestRetentionCoversAcceptance: a proof is remembered for as long as any
// clock within Skew would accept it, the last instant included. One dated
// Skew ahead, first used at t0, is accepted until t0+MaxAge+2*Skew.
func TestRetentionCoversAcceptance(t *testing.T) {
	now := t0
	c := &Checker{MaxAge: 30 * time.Second, Skew: 5 * time.Second, Now: func() time.Time { return now }}
	rc := NewReplayCache(c.Retention(), 8)
	p, err := NewProver(p256)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := p.Proof("POST", target, "", t0.Add(c.Skew))
	use := func() error {
		pr, err := c.Check([]string{raw}, Request{Method: "POST", URL: target})
		if err != nil {
			return err
		}
		return rc.Use("", pr.JKT, pr.JTI, now)
	}
	if err := use(); err != nil {
		t.Fatalf("first use: %v", err)
	}
	now = t0.Add(c.MaxAge + 2*c.Skew)
	if err := use(); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replayed at the last instant it is accepted: %v, want ErrReplayed", err)
	}
	now = now.Add(time.Nanosecond)
	if err := use(); err == nil || errors.Is(err, ErrReplayed) {
		t.Fatalf("replayed after: %v, want too old", err)
	}
}

func FuzzCheck(f *testing.F) {
	p, err := NewProver(p256)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := p.Proof("POST", target, "", t0)
	withTok, _ := p.Proof("GET", target, "tok", t0)
	f.Add(good)
	f.Add(withTok)
	f.Add(build(with(header(), map[string]any{"alg": "none"}), claimSet(), func(string) []byte { return nil }))
	f.Add("a.b.c")
	f.Add("")
	big := new(big.Int).Lsh(big.NewInt(1), 4000)
	f.Add(build(with(header(), map[string]any{"jwk": map[string]any{"kty": "RSA", "n": b64(big.Bytes()), "e": "AQAB"}, "alg": "RS256"}), claimSet(), es256(p256)))
	f.Fuzz(func(t *testing.T, raw string) {
		for _, tok := range []string{"", "tok"} {
			got, err := checker().Check([]string{raw}, Request{Method: "POST", URL: target, AccessToken: tok})
			if err == nil && (got.JKT == "" || got.JTI == "") {
				t.Fatalf("accepted without jkt or jti: %+v", got)
			}
			if err != nil && got != nil {
				t.Fatal("a refusal with a proof")
			}
		}
	})
}

func TestKeyFitsRSASize(t *testing.T) {
	for _, tc := range []struct {
		bits int
		ok   bool
	}{{2047, false}, {2048, true}, {8192, true}, {8193, false}} {
		n := new(big.Int).Lsh(big.NewInt(1), uint(tc.bits-1))
		n.SetBit(n, 0, 1)
		err := keyFits(jose.RS256, &rsa.PublicKey{N: n, E: 65537})
		if (err == nil) != tc.ok {
			t.Errorf("%d bits: %v, want ok %v", tc.bits, err, tc.ok)
		}
	}
}

// NewProver names the curves it signs with when given another.
func TestNewProverCurves(t *testing.T) {
	for _, tc := range []struct {
		curve elliptic.Curve
		alg   string // "" for refused
	}{{elliptic.P256(), "ES256"}, {elliptic.P384(), "ES384"}, {elliptic.P521(), ""}, {elliptic.P224(), ""}} {
		k, err := ecdsa.GenerateKey(tc.curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p, err := NewProver(k)
		name := tc.curve.Params().Name
		if tc.alg == "" {
			if err == nil || !strings.Contains(err.Error(), "must be on P-256 (ES256) or P-384 (ES384), not "+name) {
				t.Errorf("%s: %v, want a refusal naming the curves", name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		raw, _ := p.Proof("GET", target, "", t0)
		got, err := checker().Check([]string{raw}, Request{Method: "GET", URL: target})
		if err != nil || got.Algorithm != tc.alg {
			t.Errorf("%s: %v, alg %v; want %s", name, err, got, tc.alg)
		}
	}
}

// BenchmarkCheck is the cost a DPoP proof adds to a request: one ES256
// verification, the claims and the thumbprint; with the request's URL
// normalized once by the caller (the token endpoint), or on every call.
// go test ./internal/dpop -run '^$' -bench Check -benchmem
func BenchmarkCheck(b *testing.B) {
	p, _ := NewProver(p256)
	raw, _ := p.Proof("GET", target, "tok", t0)
	c := checker()
	for _, bb := range []struct {
		name string
		req  Request
	}{
		{"url", Request{Method: "GET", URL: target, AccessToken: "tok"}},
		{"normalized_url", Request{Method: "GET", URL: target, URLNormalized: true, AccessToken: "tok"}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.Check([]string{raw}, bb.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// With URLNormalized, Check compares htu with the request's URL as it is:
// the caller normalized it, once. Without, it normalizes the URL itself.
func TestCheckURLNormalized(t *testing.T) {
	p, _ := NewProver(p256)
	raw, _ := p.Proof("POST", target, "", t0)
	spelled := "HTTPS://Keyward.Example:443/token"
	if _, err := checker().Check([]string{raw}, Request{Method: "POST", URL: spelled}); err != nil {
		t.Errorf("URL %s, not normalized: %v", spelled, err)
	}
	if _, err := checker().Check([]string{raw}, Request{Method: "POST", URL: target, URLNormalized: true}); err != nil {
		t.Errorf("URL %s, normalized: %v", target, err)
	}
	if _, err := checker().Check([]string{raw}, Request{Method: "POST", URL: spelled, URLNormalized: true}); err == nil || !strings.Contains(err.Error(), "htu") {
		t.Errorf("URL %s said to be normalized: err = %v, want a refusal for htu", spelled, err)
	}
	u, _ := NormalizeURL(target)
	if n := testing.AllocsPerRun(100, func() { matchSink = matchURL(target, u, true) }) - testing.AllocsPerRun(100, func() { matchSink = matchURL(target, u, false) }); n >= 0 {
		t.Errorf("a normalized URL saves %v allocations, want some", -n)
	}
}

var matchSink error

// TestHeaderValues: HeaderValues finds the header however it was set, and
// costs a request without one no allocation.
func TestHeaderValues(t *testing.T) {
	h := http.Header{}
	h.Add("dpop", "a")
	h.Add(Header, "b")
	if got := HeaderValues(h); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("HeaderValues = %q, want [a b]", got)
	}
	h = http.Header{"Authorization": {"Bearer x"}}
	if n := testing.AllocsPerRun(100, func() { _ = HeaderValues(h) }); n != 0 {
		t.Fatalf("HeaderValues allocates %v times, want 0", n)
	}
}

// aceNotASCII reports whether a label, its ASCII letters lowered, begins
// "xn--" and holds characters beyond ASCII: no A-label, which
// golang.org/x/net/idna refuses or encodes again, as it takes it. (net/http,
// which sees the label's case as written, encodes an "Xn--" label again.)
func aceNotASCII(l string) bool {
	return strings.HasPrefix(l, "xn--") && strings.ContainsFunc(l, func(r rune) bool { return r >= utf8.RuneSelf })
}

// FuzzASCIIHost: asciiHost writes a host name as net/http sends it in
// the Host header of a request to it, its ASCII letters lowered; but it
// refuses one that is not UTF-8, which net/http sends as U+FFFD, a label
// "xn--", which it sends as "" when the name is not ASCII, and a label
// longer than DNS allows (63 characters) in Punycode. A label "xn--" and
// characters beyond ASCII (aceNotASCII) names no host: asciiHost may
// refuse it or not, and no proof for it matches a request.
func FuzzASCIIHost(f *testing.F) {
	for _, s := range []string{"bücher.example", "Bücher.Example", "STRAẞE.example", "他们为什么不说中文", "a.b.c", "😀", "xn--bcher-kva.ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if u, err := url.Parse("https://" + host + "/"); err != nil || u.Host != host || strings.ContainsAny(host, ":%") {
			return // not a host name alone, as a URL holds it
		}
		nonASCII := strings.ContainsFunc(host, func(r rune) bool { return r >= utf8.RuneSelf })
		labels := strings.Split(ascii.Lower(host), ".")
		if nonASCII && (!utf8.ValidString(host) || slices.Contains(labels, "xn--")) {
			if _, err := asciiHost(ascii.Lower(host)); err == nil {
				t.Fatalf("asciiHost(%q) took a host that is not UTF-8 or has a label xn--", host)
			}
			return
		}
		if nonASCII && slices.ContainsFunc(labels, aceNotASCII) {
			return
		}
		r := &http.Request{Method: "GET", URL: &url.URL{Scheme: "https", Host: host, Path: "/"}, Header: http.Header{}}
		var b strings.Builder
		if err := r.Write(&b); err != nil {
			return // net/http sends nothing
		}
		_, sent, _ := strings.Cut(b.String(), "\r\nHost: ")
		sent, _, _ = strings.Cut(sent, "\r\n")
		if sent == "" {
			return // not a valid Host header: net/http sends an empty one
		}
		got, err := asciiHost(ascii.Lower(host))
		long := false
		for i, l := range strings.Split(sent, ".") {
			long = long || len(l) > 63 && strings.HasPrefix(l, "xn--") && l != strings.Split(host, ".")[i]
		}
		if long {
			if err == nil {
				t.Fatalf("asciiHost(%q) = %q, a label longer than 63 characters", host, got)
			}
			return
		}
		if err != nil {
			t.Fatalf("asciiHost(%q): %v; net/http sends Host: %s", host, err, sent)
		}
		if want := ascii.Lower(sent); got != want {
			t.Fatalf("asciiHost(%q) = %q; net/http sends Host: %s", host, got, sent)
		}
	})
}
