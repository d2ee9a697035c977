package throttle

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// FuzzAddressKey: the refusal throttles count a source by AddressKey of
// the address the request came from (the peer's, or the X-Forwarded-For
// client a trusted proxy names). A guesser cannot take a fresh allowance
// by moving within its /64, by a zone, or by writing its IPv4 address
// IPv4-mapped; and sources in different /64s, or IPv4 and IPv6 ones,
// never share an allowance. Whatever the source string, AddressKey does
// not panic.
func FuzzAddressKey(f *testing.F) {
	f.Add([]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, uint64(2), []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1}, "eth0", "2001:db8::1")
	f.Add([]byte{10, 0, 0, 1}, uint64(0), []byte{10, 0, 0, 2}, "", "::ffff:10.0.0.1")
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1}, uint64(7), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1}, "x", "fe80::1%eth0")
	f.Fuzz(func(t *testing.T, aBytes []byte, low uint64, bBytes []byte, zone, raw string) {
		AddressKey(raw)
		a, okA := netip.AddrFromSlice(aBytes)
		b, okB := netip.AddrFromSlice(bBytes)
		if !okA || !okB {
			return
		}
		key := AddressKey(a.String())
		if a.Is4In6() {
			if k := AddressKey(a.Unmap().String()); k != key {
				t.Fatalf("%v counts as %q, its IPv4 address %v as %q", a, key, a.Unmap(), k)
			}
		}
		if a.Is6() && !a.Is4In6() {
			b16 := a.As16()
			binary.BigEndian.PutUint64(b16[8:], low)
			same := netip.AddrFrom16(b16)
			if k := AddressKey(same.String()); k != key {
				t.Fatalf("%v counts as %q, %v in its /64 as %q", a, key, same, k)
			}
			if z := a.WithZone(zone); z.Zone() != "" {
				if k := AddressKey(z.String()); k != key {
					t.Fatalf("%v counts as %q, %v as %q", a, key, z, k)
				}
			}
		}
		ua, ub := a.Unmap(), b.Unmap()
		sameSource := ua == ub
		if ua.Is6() && ub.Is6() {
			pa, _ := ua.Prefix(64)
			pb, _ := ub.Prefix(64)
			sameSource = pa == pb
		}
		if k := AddressKey(b.String()); (k == key) != sameSource {
			t.Fatalf("%v counts as %q, %v as %q: same source %v", a, key, b, k, sameSource)
		}
	})
}
