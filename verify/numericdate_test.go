package verify

import (
	"encoding/json"
	"testing"
	"time"
)

// TestNumericDate: a NumericDate beyond years 0 to 9999 is malformed, not
// converted to whatever int64 the platform makes of it (the far past on
// amd64, which would pass an nbf or iat check).
func TestNumericDate(t *testing.T) {
	for _, tc := range []struct {
		in   json.Number
		want time.Time
		ok   bool
	}{
		{"", time.Time{}, true},
		{"1700000000", time.Unix(1700000000, 0), true},
		{"1700000000.9", time.Unix(1700000000, 0), true},
		{"-62167219200", time.Unix(-62167219200, 0), true},
		{"253402300799", time.Unix(253402300799, 0), true},
		{"253402300800", time.Time{}, false},
		{"1e19", time.Time{}, false},
		{"-1e19", time.Time{}, false},
		{"1e400", time.Time{}, false},
		{"soon", time.Time{}, false},
	} {
		got, err := numericDate(tc.in)
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("numericDate(%s) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
