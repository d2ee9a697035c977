package oauth2

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestTrustForwardedFor(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("fe80::1/128")}
	tests := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"no header", "10.0.0.5:443", nil, "10.0.0.5"},
		{"direct client ignores the header", "198.51.100.9:5555", []string{"203.0.113.7"}, "198.51.100.9"},
		{"one proxy", "10.0.0.5:443", []string{"203.0.113.7"}, "203.0.113.7"},
		{"two proxies", "10.0.0.5:443", []string{"203.0.113.7, 10.1.2.3"}, "203.0.113.7"},
		{"spoofed entries left of the client are ignored", "10.0.0.5:443", []string{"1.1.1.1, 203.0.113.7"}, "203.0.113.7"},
		{"several header lines", "10.0.0.5:443", []string{"1.1.1.1", "203.0.113.7, 10.1.2.3"}, "203.0.113.7"},
		{"with ports", "10.0.0.5:443", []string{"[2001:db8::1]:4711"}, "2001:db8::1"},
		{"IPv4 in IPv6", "10.0.0.5:443", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"garbage stops at the proxy", "10.0.0.5:443", []string{"203.0.113.7, unknown"}, "10.0.0.5"},
		{"only proxies", "10.0.0.5:443", []string{"10.9.9.9"}, "10.9.9.9"},
		{"empty header", "192.0.2.1:443", []string{""}, "192.0.2.1"},
		// A link-local peer has its interface as a zone: it is never
		// trusted, though fe80::1 is listed (another link's host may
		// have that address).
		{"link-local proxy with a zone", "[fe80::1%eth0]:443", []string{"203.0.113.7"}, "fe80::1%eth0"},
		{"link-local proxy hop with a zone", "10.0.0.5:443", []string{"203.0.113.7, fe80::1%eth1"}, "fe80::1%eth1"},
		{"another link-local peer", "[fe80::2%eth0]:443", []string{"203.0.113.7"}, "fe80::2%eth0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			h := TrustForwardedFor(trusted, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = RemoteIP(r) }))
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got != tt.want {
				t.Fatalf("RemoteIP = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzForwardedClient(f *testing.F) {
	f.Add("203.0.113.7, 10.1.2.3")
	f.Add("[::1]:80,,x")
	trusted := func(a netip.Addr) bool { return a.IsPrivate() }
	f.Fuzz(func(t *testing.T, xff string) {
		for _, peer := range []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("203.0.113.1")} {
			got := forwardedClient(peer, []string{xff}, trusted)
			if !got.IsValid() {
				t.Fatalf("invalid client address from %q", xff)
			}
			// An untrusted peer is the client, whatever it forwards; a
			// trusted one names the client among the hops it forwards.
			if got != peer && (!trusted(peer) || !slices.ContainsFunc(strings.Split(xff, ","), func(h string) bool {
				a, ok := parseHop(strings.TrimSpace(h))
				return ok && a == got
			})) {
				t.Fatalf("peer %s, X-Forwarded-For %q: client %s", peer, xff, got)
			}
		}
	})
}
