package server_test

import (
	"strings"
	"testing"
)

// TestLogLinesNameThePeerAndTimeAlike: every line that names the
// client's address calls it source, and every line that says how long
// something took calls it took, so that an operator's grep or log
// query for one finds them all; the request line said remote and
// duration while the refusals said source and the shutdown took.
func TestLogLinesNameThePeerAndTimeAlike(t *testing.T) {
	f, logs, _ := newLoggedFailingFixture(t)
	tests := []struct {
		name, path, msg string
		want            []string
	}{
		{"request line", "/token", `msg=request `, []string{" source=192.0.2.1", " took="}},
		{"token refusal", "/token", `msg="token request refused" `, []string{" source=192.0.2.1"}},
		{"introspection refusal", "/introspect", `msg="introspection refused" `, []string{" source=192.0.2.1"}},
		{"admin refusal", "/v1/apis", `msg="admin request refused" `, []string{" source=192.0.2.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(logs.String())
			basic := "Basic " + "MTIzOmt3X3dyb25n" // 123:kw_wrong
			if strings.HasPrefix(tt.path, "/v1/") {
				basic = ""
			}
			if w := f.doPath(tt.path, "grant_type=client_credentials&token=x", basic); w.Code < 400 {
				t.Fatalf("%s: %d %s, want a refusal", tt.path, w.Code, w.Body)
			}
			var line string
			for l := range strings.Lines(logs.String()[before:]) {
				if strings.Contains(l, tt.msg) {
					line = l
				}
			}
			if line == "" {
				t.Fatalf("no %s line in\n%s", tt.msg, logs.String()[before:])
			}
			for _, want := range tt.want {
				if !strings.Contains(line, want) {
					t.Errorf("line %q, want %s", line, want)
				}
			}
			for _, old := range []string{" remote=", " duration="} {
				if strings.Contains(line, old) {
					t.Errorf("line %q holds %s", line, old)
				}
			}
		})
	}
}
