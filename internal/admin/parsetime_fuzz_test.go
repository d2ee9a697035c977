package admin_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
)

// FuzzParseTime: the audit API's since and until, and the CLI's --since,
// --until and audit prune --before, are read by ParseTime. Whatever it is
// given, a count of days or a duration is a time at or before now and no
// more than 10,000 years before it (prune never cuts ahead of itself, and
// the stores' timestamps hold it), and anything else it takes is the RFC
// 3339 time time.Parse reads.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"1h", "90m", "0s", "90d", "+1d", "-0d", "-90d", "3652425d", "3652426d",
		"999999999999d", "9223372036854775807d", "-1h", "-0.5s", "2562047h",
		"2026-01-02T03:04:05Z", "2030-01-01T00:00:00+05:30", "0000-01-01T00:00:00Z",
		"9999-12-31T23:59:59.999999999-23:59", "yesterday", "", "d", "1.5d",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := admin.ParseTime(s, now)
		if err != nil {
			return
		}
		days, isDays := strings.CutSuffix(s, "d")
		if _, err := strconv.Atoi(days); !isDays || err != nil {
			_, err := time.ParseDuration(s)
			isDays = err == nil
		}
		if isDays {
			if got.After(now) || got.Before(now.AddDate(-10_000, 0, -1)) {
				t.Fatalf("ParseTime(%q) = %v, not within 10,000 years before %v", s, got, now)
			}
			return
		}
		if want, err := time.Parse(time.RFC3339, s); err != nil || !got.Equal(want) {
			t.Fatalf("ParseTime(%q) = %v, time.Parse reads %v, %v", s, got, want, err)
		}
	})
}
