// Package trustedproxy reads the entries of --trusted-proxies, the
// addresses and ranges of the proxies whose X-Forwarded-For the server
// believes, as the peers' addresses are compared with them. It is a
// package of its own, not part of cmd/keyward, so that its fuzz test
// links neither the server nor its stores.
package trustedproxy

import (
	"errors"
	"net/netip"
)

// ParsePrefix reads an address or CIDR range. An IPv4-mapped IPv6 one
// (::ffff:10.0.0.0/104) is the IPv4 range it maps, as a mapped address
// is that IPv4 address: the peers it is matched against are unmapped. A
// mapped range shorter than /96 is refused: it is no IPv4 range, and
// holds IPv6 addresses alone (::ffff:10.0.0.0/95 is ::fffe:0:0/95). So is
// an address with a zone (fe80::1%eth0): a range holds none, and a peer
// with a zone is never trusted (oauth2.Trusted).
func ParsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked(), nil
		} else if a.Is4In6() {
			return netip.Prefix{}, errors.New("is an IPv4-mapped range shorter than /96, which holds no IPv4 address but IPv6 ones: write the IPv4 range (0.0.0.0/0 for all of IPv4)")
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errNotPrefix
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("has a zone, which a range cannot hold: a proxy that connects from a link-local address is never trusted, as the address names a host on one link alone; give the proxy an address that is not link-local")
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// errNotPrefix refuses an entry that parses as neither an address nor a
// CIDR range.
var errNotPrefix = errors.New("is not an IP address or CIDR range")
