package trustedproxy

import (
	"net/netip"
	"testing"

	"github.com/keyward/keyward/internal/oauth2"
)

// FuzzParsePrefix: a --trusted-proxies entry (flag, environment or
// config file) decides whose X-Forwarded-For is believed. Whatever the
// entry, a range ParsePrefix takes is masked, unzoned and never
// IPv4-mapped, and it trusts exactly the peers netip says the entry holds,
// an IPv4-mapped entry holding the IPv4 addresses it maps.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{
		"10.0.0.0/8", "10.1.2.3/8", "10.0.0.1", "::ffff:10.0.0.1", "::ffff:10.0.0.0/104",
		"::ffff:10.0.0.7/128", "::ffff:0.0.0.0/96", "::ffff:0.0.0.0/95", "fd00::/8", "::1",
		"fe80::1", "fe80::1%eth0", "fe80::1%eth0/64", "::/0", "0.0.0.0/0", "::ffff:0:0/96",
		"::fffe:0:0/95", "1.2.3.4/33", "010.0.0.1", "", "x",
	} {
		f.Add(s, []byte{10, 0, 0, 7})
	}
	f.Add("fd00::/8", []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add("::ffff:10.0.0.0/104", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 7})
	f.Fuzz(func(t *testing.T, s string, peerBytes []byte) {
		p, err := ParsePrefix(s)
		q, qerr := netip.ParsePrefix(s)
		if qerr != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				if err == nil {
					t.Fatalf("ParsePrefix(%q) = %v, which netip reads as no unzoned address or range", s, p)
				}
				return
			}
			q = netip.PrefixFrom(a, a.BitLen())
		}
		if q.Addr().Is4In6() && q.Bits() < 96 {
			if err == nil {
				t.Fatalf("ParsePrefix(%q) = %v, want the mapped range shorter than /96 refused", s, p)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParsePrefix(%q): %v", s, err)
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("ParsePrefix(%q) = %v: not a masked, unzoned, unmapped range", s, p)
		}
		peer, ok := netip.AddrFromSlice(peerBytes)
		if !ok {
			return
		}
		peer = peer.Unmap() // as the server sees its peers
		want := q.Contains(peer)
		if q.Addr().Is4In6() && peer.Is4() {
			want = q.Contains(netip.AddrFrom16(peer.As16()))
		}
		if got := oauth2.Trusted([]netip.Prefix{p}, peer); got != want {
			t.Fatalf("ParsePrefix(%q) = %v trusts %v: %v, want %v", s, p, peer, got, want)
		}
	})
}
