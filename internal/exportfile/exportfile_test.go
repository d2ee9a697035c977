package exportfile

import (
	"strings"
	"testing"
)

// TestParseByteOrderMark: an export an editor saved with a byte order
// mark (U+FEFF) imports, and a fault in it is named at its byte in the
// file. It was "not JSON: invalid character 'ï' looking for beginning of
// value".
func TestParseByteOrderMark(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{"an export", "\ufeff" + `{"format":"keyward-export/2","orgs":[{"domain":"example.com"}]}`, ""},
		{"cut short", "\ufeff" + `{"format":"keyward-export/2","orgs":[`, "at byte 40"},
		{"not JSON", "\ufeff" + `{"format":"keyward-export/2",}`, "(at byte 33)"},
		{"two values", "\ufeff" + `{"format":"keyward-export/2"} {}`, "the first ends at byte 32"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.in))
			if tt.want == "" && (err != nil || len(d.Orgs) != 1) {
				t.Fatalf("Parse = %d organizations, %v; want 1", len(d.Orgs), err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Parse: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
