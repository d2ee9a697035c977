package validate

import (
	"strings"
	"testing"
)

// TestAccountDomain: the domain of account emails is a lower-case domain
// name short enough that the longest account email (a 30-byte name and
// project) is one Email accepts unchanged.
func TestAccountDomain(t *testing.T) {
	label := strings.Repeat("a", 63)
	longest := label + "." + label + "." + strings.Repeat("b", 61) + ".io" // 192 bytes
	for _, tt := range []struct {
		name, domain, want string // want: part of the error; "" for none
	}{
		{"default", "iam.keyward.internal", ""},
		{"two labels", "iam.test", ""},
		{"longest", longest, ""},
		{"one byte too long", "x" + longest, "is 193 bytes long; at most 192"},
		{"longer than a domain name", strings.Repeat(label+".", 4) + "com", "is 259 bytes long"},
		{"empty", "", `"" is not a domain name`},
		{"one label", "internal", `"internal" is not a domain name`},
		{"trailing dot", "iam.example.com.", `"iam.example.com." is not a domain name`},
		{"empty label", "iam..x", `"iam..x" is not a domain name`},
		{"leading dot", ".iam.test", `".iam.test" is not a domain name`},
		{"upper case", "IAM.example.com", `"IAM.example.com" has upper-case letters`},
		{"upper case non-ASCII", "iam.exÄmple.com", "has upper-case letters"},
		{"non-ASCII", "iam.exämple.com", `"iam.exämple.com" is not a domain name`},
		{"space", "iam example.com", "is not a domain name"},
		{"control character", "iam.example.com\n", `"iam.example.com\n" is not a domain name`},
		{"at sign", "a@iam.test", "is not a domain name"},
	} {
		err := AccountDomain(tt.domain)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: AccountDomain(%q) = %v, want nil", tt.name, tt.domain, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: AccountDomain(%q) = %v, want an error saying %q", tt.name, tt.domain, err, tt.want)
		}
	}
}

// The longest account email under the longest account domain is an email
// address Email takes as it is.
func TestAccountDomainLongestEmail(t *testing.T) {
	domain := strings.Repeat("a", 63) + "." + strings.Repeat("a", 63) + "." + strings.Repeat("b", 61) + ".io"
	name := "a" + strings.Repeat("0", 29)
	if len(domain) != MaxAccountDomainLength || !Name(name) {
		t.Fatalf("fixture: domain %d bytes, want %d; name %q valid %v", len(domain), MaxAccountDomainLength, name, Name(name))
	}
	email := name + "@" + name + "." + domain
	if got, err := Email(email); err != nil || got != email {
		t.Fatalf("Email(%d bytes) = %q, %v; want it unchanged", len(email), got, err)
	}
	if _, err := Email(name + "@" + name + ".x" + domain); err == nil {
		t.Fatalf("Email took a %d-byte address", len(email)+1)
	}
}
