package trustedproxy

import (
	"net/netip"
	"strings"
	"testing"
)

// TestParsePrefix: what --trusted-proxies takes, as the peers' addresses
// are compared with it (unmapped): an IPv4-mapped range or address is
// the IPv4 one, which it never matched before.
func TestParsePrefix(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"10.0.0.1", "10.0.0.1/32"},
		{"::ffff:10.0.0.1", "10.0.0.1/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:10.0.0.7/128", "10.0.0.7/32"},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0"},
		{"fd00::/8", "fd00::/8"},
		{"::1", "::1/128"},
		{"fe80::1", "fe80::1/128"},
		// Refused: a zone, which a range cannot hold (a zoned peer is
		// never trusted), and a mapped range shorter than /96,
		// which is no IPv4 range and matches IPv6 addresses only.
		{"fe80::1%eth0", ""},
		{"::ffff:10.0.0.0/95", ""},
		{"::ffff:0.0.0.0/0", ""},
	} {
		p, err := ParsePrefix(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParsePrefix(%q) = %v, want an error", tt.in, p)
			}
			continue
		}
		if err != nil || p.String() != tt.want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", tt.in, p, err, tt.want)
		}
		if peer := netip.MustParseAddr("10.0.0.7"); strings.HasPrefix(tt.want, "10.0.0.0/") && !p.Contains(peer) {
			t.Errorf("ParsePrefix(%q) = %v does not hold %v", tt.in, p, peer)
		}
	}
}
