package verify

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The keys are fresh for their max-age less their Age, the time a cache
// in front of the issuer already held them (RFC 9111 §4.2.3): a JWKS a
// CDN had held for 4 minutes of a 5-minute max-age was kept 5 minutes
// more. Never less than 10 s, never more than an hour; a malformed Age
// is ignored. max-age=0, no-store and no-cache are the 10 s floor, not
// the refresh interval, and every Cache-Control line counts.
func TestMaxAge(t *testing.T) {
	for _, tt := range []struct {
		name, cacheControl, age string
		want                    time.Duration
	}{
		{"no max-age", "", "", 0},
		{"no max-age, an Age", "public", "100", 0},
		{"max-age", "max-age=300", "", 300 * time.Second},
		{"max-age and Age", "public, max-age=300", "240", 60 * time.Second},
		{"Age 0", "max-age=300", "0", 300 * time.Second},
		{"Age past max-age", "max-age=300", "1000", 10 * time.Second},
		{"Age leaving under 10 s", "max-age=300", "295", 10 * time.Second},
		{"Age of max-age", "max-age=300", "300", 10 * time.Second},
		{"Age too large to read", "max-age=300", "99999999999999999999999", 10 * time.Second},
		{"max-age of a year less an Age", "max-age=31536000", "3600", time.Hour},
		{"max-age over an hour less an Age", "max-age=3700", "400", 3300 * time.Second},
		{"negative Age", "max-age=300", "-100", 300 * time.Second},
		{"fractional Age", "max-age=300", "240.5", 300 * time.Second},
		{"Age with a unit", "max-age=300", "240s", 300 * time.Second},
		{"Age a list", "max-age=300", "240, 100", 300 * time.Second},
		{"Age a date", "max-age=300", "Mon, 07 Dec 2026 02:00:00 GMT", 300 * time.Second},
		{"max-age=0", "max-age=0", "", 10 * time.Second},
		{"no-store", "no-store", "", 10 * time.Second},
		{"no-cache", "no-cache", "", 10 * time.Second},
		{"NO-CACHE, any case", "NO-CACHE", "", 10 * time.Second},
		{"no-store beside a max-age", "max-age=300, no-store", "", 10 * time.Second},
		{"no-cache before a max-age", "no-cache, max-age=300", "", 10 * time.Second},
		{"no-cache naming fields", `no-cache="Set-Cookie", max-age=300`, "", 300 * time.Second},
		{"max-age on the second line", "public\nmax-age=300", "", 300 * time.Second},
		{"no-store on the second line", "max-age=300\nno-store", "", 10 * time.Second},
		{"two max-ages, the first counts", "max-age=300\nmax-age=3600", "", 300 * time.Second},
		{"max-age quoted", `max-age="300"`, "", 300 * time.Second},
		{"max-age negative", "max-age=-1", "", 0},
		{"max-age malformed", "max-age=soon", "", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.cacheControl != "" {
				for _, line := range strings.Split(tt.cacheControl, "\n") {
					h.Add("Cache-Control", line) // one header line each
				}
			}
			if tt.age != "" {
				h.Set("Age", tt.age)
			}
			if got := maxAge(h); got != tt.want {
				t.Errorf("maxAge(Cache-Control %q, Age %q) = %s, want %s", tt.cacheControl, tt.age, got, tt.want)
			}
		})
	}
}
