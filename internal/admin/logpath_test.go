package admin_test

import (
	"strings"
	"testing"
)

// The admin API's log line for a request refused for its token names the
// path as it was sent, escapes kept, as the refusal's audit event and the
// request line do, so that one search finds all three; a credential in
// it is left out.
func TestRefusalLogPathAsSent(t *testing.T) {
	f := newFixture(t)
	secret := "kw_" + strings.Repeat("Zs9", 14) + "x"
	for _, tt := range []struct{ name, path, want string }{
		{"escaped slash", "/v1/service-accounts/a%2Fb", "/v1/service-accounts/a%2Fb"},
		{"escaped space", "/v1/service-accounts/no%20such", "/v1/service-accounts/no%20such"},
		{"escaped line break", "/v1/service-accounts/a%0Ab", "/v1/service-accounts/a%0Ab"},
		{"secret", "/v1/service-accounts/x/secrets/kw%5F" + secret[3:], "/v1/service-accounts/x/secrets/(credential)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.logs.String())
			if status, out, _ := f.call(t, "GET", tt.path, "", nil); status != 401 {
				t.Fatalf("%d %v, want 401", status, out)
			}
			var line string
			for _, l := range strings.Split(f.logs.String()[before:], "\n") {
				if strings.Contains(l, `msg="admin request refused"`) {
					line = l
				}
			}
			if !strings.Contains(line, " path="+tt.want+" ") {
				t.Errorf("logged %q, want path=%s", line, tt.want)
			}
		})
	}
}
