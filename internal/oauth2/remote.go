package oauth2

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

type clientAddrKey struct{}

// PeerIP returns the IP address of the request's TCP peer: the client, or
// the proxy in front of it.
func PeerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// RemoteIP returns the IP address of the client: the one a trusted proxy
// reported (TrustForwardedFor), else the peer's. Throttling and the audit
// log key on it.
func RemoteIP(r *http.Request) string {
	if ip, ok := r.Context().Value(clientAddrKey{}).(string); ok {
		return ip
	}
	return PeerIP(r)
}

// TrustForwardedFor takes the client's address from X-Forwarded-For when
// the peer is one of the trusted proxies: the right-most address that is
// not itself a trusted proxy, since each proxy appends the address it saw
// and only the trusted ones' additions can be believed. Entries further
// left are whatever the client sent. From any other peer, or without
// proxies, the header is ignored.
func TrustForwardedFor(trusted []netip.Prefix, next http.Handler) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	isTrusted := func(a netip.Addr) bool { return Trusted(trusted, a) }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddr(PeerIP(r))
		xff := r.Header.Values("X-Forwarded-For")
		if err != nil || len(xff) == 0 || !isTrusted(peer) {
			next.ServeHTTP(w, r)
			return
		}
		client := forwardedClient(peer, xff, isTrusted)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientAddrKey{}, client.Unmap().String())))
	})
}

// Trusted reports whether a is in one of the trusted prefixes, as its
// IPv4 address if it is IPv4-mapped. An address with an IPv6 zone (a
// link-local peer's interface, fe80::1%eth0) is in none: a link-local
// address names a host on one link alone, and matched without its zone
// it would trust whichever host took that address on any other link
// (fe80::1 is many a router's), so a proxy is trusted only at an
// address without a zone.
func Trusted(trusted []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	return slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(a) })
}

// forwardedClient walks the X-Forwarded-For hops from the right while the
// address at hand is a trusted proxy. An entry that is not an address ends
// the walk at the proxy that passed it on.
func forwardedClient(peer netip.Addr, xff []string, trusted func(netip.Addr) bool) netip.Addr {
	hops := strings.Split(strings.Join(xff, ","), ",")
	client := peer
	for i := len(hops) - 1; i >= 0 && trusted(client); i-- {
		a, ok := parseHop(strings.TrimSpace(hops[i]))
		if !ok {
			break
		}
		client = a
	}
	return client
}

// parseHop reads an X-Forwarded-For entry: an address, perhaps with a port
// ("203.0.113.7:4711", "[2001:db8::1]:4711").
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	return netip.Addr{}, false
}
