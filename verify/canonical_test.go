package verify_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testkeyward"
)

// TestNonCanonicalBase64Refused: a JWT has one encoding. Go's base64
// ignores the unused low bits of a segment's last character, so a token
// with them set decoded to the same JWT and verified: a second string for
// one token, with a cache entry of its own (RFC 4648 §3.5 lets a decoder
// refuse it; RFC 7515 §2's base64url is the canonical one).
func TestNonCanonicalBase64Refused(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	v := newVerifier(t, k)
	raw := k.Sign(t, nil)
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatalf("the token as signed: %v", err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	segs := strings.Split(raw, ".")
	tested := 0
	for i, name := range []string{"header", "payload", "signature"} {
		if len(segs[i])%4 == 0 {
			continue // no unused bits
		}
		tested++
		t.Run(name, func(t *testing.T) {
			alt := append([]string(nil), segs...)
			last := strings.IndexByte(alphabet, alt[i][len(alt[i])-1])
			alt[i] = alt[i][:len(alt[i])-1] + string(alphabet[last^1]) // the lowest bit is unused
			_, err := v.Verify(context.Background(), strings.Join(alt, "."))
			wantInvalid(t, err, "compact JWS")
		})
	}
	if tested == 0 {
		t.Fatal("no segment with unused bits")
	}
}
