package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/verify"
)

// hop is a request that reached redirectingIssuer.
type hop struct{ method, url, auth, body string }

// redirectingIssuer serves an issuer's metadata, keys and introspection
// answers at any URL, but answers a request for a URL in redirects with a
// redirect (status) to the URL it maps to. It records every request.
type redirectingIssuer struct {
	issuer    string
	redirects map[string]string
	status    int
	jwks      jose.JSONWebKeySet

	mu   sync.Mutex
	hops []hop
}

func (f *redirectingIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u := *r.URL
	if !u.IsAbs() { // served by httptest, not in memory
		u = url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
	}
	at := u.Scheme + "://" + u.Host + u.Path
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
	}
	f.mu.Lock()
	f.hops = append(f.hops, hop{r.Method, at, r.Header.Get("Authorization"), string(body)})
	f.mu.Unlock()
	if to, ok := f.redirects[at]; ok {
		http.Redirect(w, r, to, f.status)
		return
	}
	var doc any
	switch u.Path {
	case "/.well-known/oauth-authorization-server":
		doc = map[string]string{"issuer": f.issuer, "jwks_uri": f.issuer + "/jwks", "introspection_endpoint": f.issuer + "/introspect"}
	case "/jwks", "/jwks/v2":
		doc = f.jwks
	case "/introspect", "/introspect/v2":
		doc = map[string]any{"active": true, "aud": "https://orders.internal", "client_id": "1", "sub": "1", "exp": time.Now().Add(time.Hour).Unix()}
	default:
		http.NotFound(w, r)
		return
	}
	json.NewEncoder(w).Encode(doc)
}

// The issuer's metadata and keys are not fetched through a redirect from
// HTTPS down to plain HTTP, where anyone on the path could change them;
// other redirects are followed, and the caller's CheckRedirect still has
// its say. An introspection request, which carries the API's credentials
// and the token, follows no redirect at all. Both hold with the default
// HTTP client and with the caller's, which is left unchanged.
func TestRedirects(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}}
	const (
		iss  = "https://issuer.test"
		md   = "/.well-known/oauth-authorization-server"
		down = "down to plain HTTP"
	)
	errCaller := errors.New("the caller's CheckRedirect says no")
	tests := []struct {
		name string
		// issuer is the issuer's URL, reached with the caller's client in
		// memory; "" for a plain HTTP server reached with the default
		// client, named ISS in redirects.
		issuer     string
		redirects  map[string]string
		status     int
		introspect bool   // verify an opaque token, after New
		callerSays error  // the caller's CheckRedirect
		wantErr    string // of New, or of Verify when introspecting; "" for none
	}{
		{"keys, HTTPS to HTTP", iss, map[string]string{iss + "/jwks": "http://issuer.test/jwks"}, 302, false, nil, down},
		{"metadata, HTTPS to HTTP", iss, map[string]string{iss + md: "http://issuer.test" + md}, 301, false, nil, down},
		{"keys, HTTPS to HTTPS to HTTP", iss, map[string]string{iss + "/jwks": "https://cdn.test/jwks", "https://cdn.test/jwks": "http://cdn.test/jwks"}, 302, false, nil, down},
		{"keys, to another HTTPS host", iss, map[string]string{iss + "/jwks": "https://cdn.test/jwks"}, 302, false, nil, ""},
		{"keys, HTTP to HTTP", "http://issuer.test", map[string]string{"http://issuer.test/jwks": "http://cdn.test/jwks"}, 302, false, nil, ""},
		{"keys, the caller's CheckRedirect", iss, map[string]string{iss + "/jwks": "https://cdn.test/jwks"}, 302, false, errCaller, errCaller.Error()},
		{"keys, default client, HTTP to HTTP", "", map[string]string{"ISS/jwks": "ISS/jwks/v2"}, 302, false, nil, ""},
		{"introspection, 307 to HTTP", iss, map[string]string{iss + "/introspect": "http://issuer.test/introspect"}, 307, true, nil, "redirect of the introspection request"},
		{"introspection, 308 to another host", iss, map[string]string{iss + "/introspect": "https://elsewhere.test/introspect"}, 308, true, nil, "redirect of the introspection request"},
		{"introspection, 302 on the host", iss, map[string]string{iss + "/introspect": iss + "/introspect/v2"}, 302, true, nil, "redirect of the introspection request"},
		{"introspection, default client, 307", "", map[string]string{"ISS/introspect": "ISS/introspect/v2"}, 307, true, nil, "redirect of the introspection request"},
		{"introspection, no redirect", iss, nil, 302, true, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &redirectingIssuer{issuer: tt.issuer, redirects: map[string]string{}, status: tt.status, jwks: jwks}
			opts := []verify.Option{verify.WithIntrospection("api", "api-secret")}
			var caller *http.Client
			if tt.issuer == "" {
				srv := httptest.NewServer(f)
				t.Cleanup(srv.Close)
				f.issuer = srv.URL
			} else {
				caller = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
					w := httptest.NewRecorder()
					f.ServeHTTP(w, r)
					resp := w.Result()
					resp.Request = r
					return resp, nil
				})}
				if tt.callerSays != nil {
					caller.CheckRedirect = func(*http.Request, []*http.Request) error { return tt.callerSays }
				}
				opts = append(opts, verify.WithHTTPClient(caller))
			}
			for from, to := range tt.redirects {
				f.redirects[strings.ReplaceAll(from, "ISS", f.issuer)] = strings.ReplaceAll(to, "ISS", f.issuer)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			v, err := verify.New(ctx, f.issuer, "https://orders.internal", opts...)
			if caller != nil && (caller.CheckRedirect == nil) != (tt.callerSays == nil) {
				t.Fatal("New changed the caller's HTTP client")
			}
			if tt.introspect {
				if err != nil {
					t.Fatal(err)
				}
				_, err = v.Verify(ctx, randomOpaque())
				if tt.wantErr != "" {
					wantUnavailable(t, err)
				}
				if posts := f.count(http.MethodPost); posts != 1 {
					t.Fatalf("%d introspection requests reached the issuer (%+v), want 1", posts, f.hops)
				}
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr == down {
				for _, h := range f.hops {
					if strings.HasPrefix(h.url, "http:") {
						t.Fatalf("%s reached over plain HTTP", h.url)
					}
				}
			}
		})
	}
}

// count is how many requests of method reached f.
func (f *redirectingIssuer) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, h := range f.hops {
		if h.method == method {
			n++
		}
	}
	return n
}
