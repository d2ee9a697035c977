package verify_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/verify"
)

// TestNewIssuerURL: an issuer URL that is not an http or https URL with a
// host is refused, saying what an issuer URL is, not with url.Parse's or
// net/http's words for what went wrong after; one with a password does not
// show it. A trailing slash is fine.
func TestNewIssuerURL(t *testing.T) {
	k := testkeyward.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	host := strings.TrimPrefix(k.URL, "http://")
	for _, tt := range []struct{ name, issuer string }{
		{"no scheme, host and port", host},
		{"no scheme, host name", "keyward.internal"},
		{"another scheme", "ftp://" + host},
		{"no host", "https:///keyward"},
		{"a query", k.URL + "?tenant=a"},
		{"a fragment", k.URL + "#top"},
		{"an empty fragment", k.URL + "#"},
		{"a password", "http://admin:hunter2@" + host},
		{"a password with a space", "http://admin:hunter2 x@" + host},
		{"a password with a bare %", "http://admin:hunter2%@" + host},
		{"a password, no scheme", "admin:hunter2@" + host},
		{"a password, a bad port", "http://admin:hunter2@keyward.internal:http"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify.New(ctx, tt.issuer, "https://orders.internal")
			if err == nil || !strings.Contains(err.Error(), "is not an http or https URL") {
				t.Fatalf("New(%q): %v, want an error saying it is not an http or https URL", tt.issuer, err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("New's error %q shows the password", err)
			}
		})
	}
	if _, err := verify.New(ctx, k.URL+"/", "https://orders.internal"); err != nil {
		t.Fatalf("New with a trailing slash: %v", err)
	}
}
