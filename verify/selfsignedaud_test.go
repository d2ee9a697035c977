package verify_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/verify"
)

// Through Verify: an API identified as https://orders.internal accepts the
// self-signed JWTs Google's clients make for it, aud https://orders.internal/
// among them, and still refuses one for a path under it or another port.
func TestSelfSignedJWTAudienceSlash(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	ctx := context.Background()
	sign, _, _ := selfSignedKey(t, k)
	v := newVerifier(t, k, verify.WithSelfSignedJWTs())
	for _, tt := range []struct {
		aud  string
		want bool
	}{
		{"https://orders.internal", true},
		{"https://orders.internal/", true},
		{"https://ORDERS.internal/", true},
		{"https://orders.internal//", false},
		{"https://orders.internal/orders", false},
		{"https://orders.internal:8443/", false},
	} {
		t.Run(tt.aud, func(t *testing.T) {
			c, err := v.Verify(ctx, sign("job@shop.iam.test", time.Hour, tt.aud))
			if !tt.want {
				wantInvalid(t, err, "aud must be this API")
				return
			}
			if err != nil || !c.SelfSigned || len(c.Audience) != 1 || c.Audience[0] != tt.aud {
				t.Fatalf("claims = %+v, %v; want the JWT's own aud %q", c, err, tt.aud)
			}
		})
	}
	// Access tokens carry the identifier as Keyward has it registered: for
	// them aud is not loosened.
	if _, err := v.Verify(ctx, k.Sign(t, nil)); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(ctx, k.Sign(t, func(c *oauth2.AccessClaims) { c.Audience = oauth2.Audience{"https://orders.internal/"} }))
	wantInvalid(t, err, "not for this API")
}
