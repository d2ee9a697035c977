package oauth2

import "testing"

// TestRedactURL: a password is replaced by xxxxx whether or not url.Parse
// reads the URL as having one; a URL without one is shown as it is.
func TestRedactURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://keyward.internal/token", "https://keyward.internal/token"},
		{"https://admin:pw@keyward.internal/token", "https://admin:xxxxx@keyward.internal/token"},
		{"https://admin:p w@keyward.internal/token", "https://xxxxx@keyward.internal/token"},
		{"https://admin:p%@keyward.internal", "https://xxxxx@keyward.internal"},
		{"https://admin:pw@keyward.internal:http", "https://xxxxx@keyward.internal:http"},
		{"admin:pw@keyward.internal/token", "xxxxx@keyward.internal/token"},
		{"ftp://admin:pw@keyward.internal", "ftp://admin:xxxxx@keyward.internal"},
		{"https://keyward.internal/a@b", "https://keyward.internal/a@b"},
		{"https://keyward.internal?u=a@b", "https://keyward.internal?u=a@b"},
		{"keyward.internal:8080", "keyward.internal:8080"},
		// A "/", "?" or "#" in the password ends what url.Parse reads
		// as the host (a bad port then), or the opaque part's first
		// segment: the "@" after it still ends the password.
		{"https://admin:ab/cd@keyward.internal/token", "https://xxxxx@keyward.internal/token"},
		{"https://admin:ab?cd@keyward.internal", "https://xxxxx@keyward.internal"},
		{"https://admin:ab#cd@keyward.internal", "https://xxxxx@keyward.internal"},
		{"admin:ab/cd@keyward.internal/token", "xxxxx@keyward.internal/token"},
		// A password of digits before the "/", "?" or "#" is read as a
		// port, and the rest as a path, query or fragment, without
		// error: all before the "@" is still hidden, an "@" after a
		// port too.
		{"https://admin:1234/5678@keyward.internal", "https://xxxxx@keyward.internal"},
		{"https://admin:1234?5678@keyward.internal/token", "https://xxxxx@keyward.internal/token"},
		{"https://admin:1234#5678@keyward.internal", "https://xxxxx@keyward.internal"},
		{"https://admin:/5678@keyward.internal", "https://xxxxx@keyward.internal"},
		{"https://keyward.internal:8443/a@b", "https://xxxxx@b"},
		{"https://keyward.internal:8443/token", "https://keyward.internal:8443/token"},
	} {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
