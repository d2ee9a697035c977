package verify

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzMaxAge: whatever Cache-Control lines and Age an issuer (or a cache
// in front of it) answers its keys with, maxAge never panics and keeps
// them fresh for no time (no max-age) or between the 10 s floor and
// maxKeysAge, and for the floor alone when a line says no-store.
func FuzzMaxAge(f *testing.F) {
	f.Add("public, max-age=300", "", "240")
	f.Add("max-age=31536000", "no-cache=\"Set-Cookie\"", "99999999999999999999999")
	f.Add("max-age=\"-1\"", "NO-STORE", "-5")
	f.Add("max-age=9223372036854775807", "max-age=1", "2147483648")
	f.Fuzz(func(t *testing.T, line1, line2, age string) {
		h := http.Header{}
		for _, line := range []string{line1, line2} {
			if line != "" {
				h.Add("Cache-Control", line)
			}
		}
		if age != "" {
			h.Set("Age", age)
		}
		got := maxAge(h)
		if got != 0 && (got < 10*time.Second || got > maxKeysAge) {
			t.Fatalf("maxAge(Cache-Control %q, %q; Age %q) = %s, outside [10s, %s]", line1, line2, age, got, maxKeysAge)
		}
		for _, part := range strings.Split(line1+","+line2, ",") {
			if strings.EqualFold(strings.TrimSpace(part), "no-store") && got != 10*time.Second {
				t.Fatalf("maxAge(Cache-Control %q, %q; Age %q) = %s beside no-store, want 10s", line1, line2, age, got)
			}
		}
	})
}

// FuzzParseRetryAfter: whatever Retry-After the issuer's introspection
// endpoint answers, parseRetryAfter never panics and waits for no time
// (no usable header) or within [minRetryAfter, maxRetryAfter].
func FuzzParseRetryAfter(f *testing.F) {
	f.Add("120")
	f.Add("0")
	f.Add("4294967296")
	f.Add("Mon, 07 Dec 2026 02:00:00 GMT")
	f.Add("Sunday, 06-Nov-94 08:49:37 GMT")
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, h string) {
		if got := parseRetryAfter(h, now); got != 0 && (got < minRetryAfter || got > maxRetryAfter) {
			t.Fatalf("parseRetryAfter(%q) = %s, outside [%s, %s]", h, got, minRetryAfter, maxRetryAfter)
		}
	})
}
