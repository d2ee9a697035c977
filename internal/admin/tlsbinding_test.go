package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// A TLS binding is accepted only if a certificate can match it: a subject
// DN must be an RFC 4514 distinguished name, and is stored in a canonical
// spelling that keeps the order and grouping of its RDNs, which matching
// a certificate's subject heeds; SAN values must be of their kind.
func TestTLSBindingIsChecked(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	if status, body, _ := f.call(t, "POST", "/v1/service-accounts", auth, admin.AccountInput{Name: "job", Project: "shop"}); status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	for _, tt := range []struct {
		name    string
		binding map[string]string
		want    string // the stored value on 200, in the description on 400
		status  int
	}{
		{"a DN", map[string]string{"tls_client_auth_subject_dn": "CN=job,O=Example"}, "CN=job,O=Example", 200},
		{"a DN with spaces and lower-case types", map[string]string{"tls_client_auth_subject_dn": "cn=job, o=Example, c=US"}, "CN=job,O=Example,C=US", 200},
		{"a DN in another order", map[string]string{"tls_client_auth_subject_dn": "O=Example,CN=job"}, "O=Example,CN=job", 200},
		{"a DN with escapes", map[string]string{"tls_client_auth_subject_dn": `CN=Smith\, J.,O=A\2bB`}, `CN=Smith\, J.,O=A\+B`, 200},
		{"a DN with a multi-valued RDN", map[string]string{"tls_client_auth_subject_dn": "CN=job + OU=ops,O=Example"}, "CN=job+OU=ops,O=Example", 200},
		{"a DN with an OID", map[string]string{"tls_client_auth_subject_dn": "2.5.4.3=job"}, "CN=job", 200},
		{"a DN with a hex value", map[string]string{"tls_client_auth_subject_dn": "CN=#0c036a6f62"}, "CN=job", 200},
		{"a DN with an email", map[string]string{"tls_client_auth_subject_dn": "CN=job,emailAddress=job@example.com"}, "CN=job,EMAILADDRESS=job@example.com", 200},
		{"garbage", map[string]string{"tls_client_auth_subject_dn": "garbage=="}, `unknown attribute type "garbage"`, 400},
		{"no =", map[string]string{"tls_client_auth_subject_dn": "job"}, `"job" is not attribute=value`, 400},
		{"an empty value", map[string]string{"tls_client_auth_subject_dn": "CN=,O=Example"}, "the value of CN is empty", 400},
		{"a trailing comma", map[string]string{"tls_client_auth_subject_dn": "CN=job,"}, "a , or + has nothing after it", 400},
		{"an unescaped special", map[string]string{"tls_client_auth_subject_dn": "CN=a;b"}, `unescaped ';'`, 400},
		{"a bad escape", map[string]string{"tls_client_auth_subject_dn": `CN=a\zz`}, `escapes neither`, 400},
		{"a bad hex value", map[string]string{"tls_client_auth_subject_dn": "CN=#0c03"}, "not one ASN.1 value", 400},
		{"a bad OID", map[string]string{"tls_client_auth_subject_dn": "2.5.x=job"}, "neither a known name nor an OID", 400},
		{"a DNS name", map[string]string{"tls_client_auth_san_dns": "job.example.com"}, "job.example.com", 200},
		{"a wildcard DNS name", map[string]string{"tls_client_auth_san_dns": "*.example.com"}, "*.example.com", 200},
		{"a bad DNS name", map[string]string{"tls_client_auth_san_dns": "job example.com"}, "is not a DNS name", 400},
		{"a DNS name with an empty label", map[string]string{"tls_client_auth_san_dns": "job..example.com"}, "is not a DNS name", 400},
		{"a URI", map[string]string{"tls_client_auth_san_uri": "spiffe://example.org/ns/prod/job"}, "spiffe://example.org/ns/prod/job", 200},
		{"a relative URI", map[string]string{"tls_client_auth_san_uri": "job"}, "is not an absolute URI", 400},
		{"a bad URI", map[string]string{"tls_client_auth_san_uri": "spiffe://exa mple/%zz"}, "is not a URI", 400},
		{"an IP", map[string]string{"tls_client_auth_san_ip": "2001:DB8::0:1"}, "2001:db8::1", 200},
		{"a bad IP", map[string]string{"tls_client_auth_san_ip": "10.0.0.256"}, "is not an IP address", 400},
		{"an email", map[string]string{"tls_client_auth_san_email": "job@example.com"}, "job@example.com", 200},
		{"a bad email", map[string]string{"tls_client_auth_san_email": "job@@example.com"}, "is not an email address", 400},
		// A certificate's SAN email is ASCII (an rfc822Name is an
		// IA5String): no certificate could match another.
		{"an email with an internationalized domain", map[string]string{"tls_client_auth_san_email": "job@exämple.com"}, "is not ASCII", 400},
		{"an email with a non-ASCII local part", map[string]string{"tls_client_auth_san_email": "jöb@example.com"}, "is not ASCII", 400},
		{"an email with an internationalized domain in its xn-- form", map[string]string{"tls_client_auth_san_email": "job@xn--exmple-cua.com"}, "job@xn--exmple-cua.com", 200},
		{"two fields", map[string]string{"tls_client_auth_san_dns": "job.example.com", "tls_client_auth_san_ip": "10.0.0.1"}, "exactly one of", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := f.call(t, "PATCH", "/v1/service-accounts/job@shop.iam.test", auth, map[string]any{"tls_binding": tt.binding})
			if status != tt.status {
				t.Fatalf("%d %v, want %d", status, body, tt.status)
			}
			if status != 200 {
				if desc, _ := body["error_description"].(string); body["error"] != "invalid_request" || !strings.Contains(desc, tt.want) {
					t.Fatalf("%v, want invalid_request naming %q", body, tt.want)
				}
				return
			}
			b, _ := body["tls_binding"].(map[string]any)
			for k := range tt.binding {
				if b[k] != tt.want {
					t.Fatalf("tls_binding %v, want %s %q", b, k, tt.want)
				}
			}
		})
	}
}

// Changing or dropping the binding CA-issued certificates authenticate an
// account with ends the tokens got with a certificate (tls_client_auth):
// they name only its thumbprint, which nothing could check against the new
// binding. It sets cert_tokens_revoked_before, not tokens_revoked_before:
// the tokens got with keys or secrets are not concerned. Other changes end
// nothing.
func TestTLSBindingChangeEndsCertificateTokens(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	if status, body, _ := f.call(t, "POST", "/v1/service-accounts", auth, admin.AccountInput{Name: "mesh", Project: "shop"}); status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	dn := func(v string) map[string]any {
		return map[string]any{"tls_binding": map[string]string{"tls_client_auth_subject_dn": v}}
	}
	methods := func(m ...string) map[string]any { return map[string]any{"auth_methods": m} }
	last := ""
	for _, tt := range []struct {
		name  string
		patch map[string]any
		ends  bool
	}{
		{"a binding while tls_client_auth is not allowed", dn("CN=a"), false},
		{"tls_client_auth allowed for the first time", methods("tls_client_auth", "private_key_jwt"), false},
		{"the description", map[string]any{"description": "mesh job"}, false},
		{"the same binding again", dn("CN=a"), false},
		{"another binding", dn("CN=b"), true},
		{"another kind of binding", map[string]any{"tls_binding": map[string]string{"tls_client_auth_san_dns": "mesh.example"}}, true},
		{"tls_client_auth taken away", methods("private_key_jwt"), true},
		{"tls_client_auth allowed again", methods("tls_client_auth"), false},
	} {
		status, body, _ := f.call(t, "PATCH", "/v1/service-accounts/mesh@shop.iam.test", auth, tt.patch)
		if status != 200 {
			t.Fatalf("%s: %d %v", tt.name, status, body)
		}
		if all, ok := body["tokens_revoked_before"]; ok {
			t.Errorf("%s: tokens_revoked_before %v set: the account's other tokens ended too", tt.name, all)
		}
		// As stored, to the microsecond (the answer to a change has more).
		now, _ := body["cert_tokens_revoked_before"].(string)
		if at, err := time.Parse(time.RFC3339Nano, now); err == nil {
			now = at.Truncate(time.Microsecond).Format(time.RFC3339Nano)
		}
		if ended := now != last; ended != tt.ends {
			t.Errorf("%s: cert_tokens_revoked_before %q after %q: ended %v, want %v", tt.name, now, last, ended, tt.ends)
		}
		// The audit event of the update says whether it ended the
		// certificate tokens.
		evs, err := f.store.ListAuditEvents(context.Background(), storage.AuditFilter{Newest: true, Limit: 1})
		if err != nil || len(evs) != 1 || evs[0].Action != "account.update" {
			t.Fatalf("%s: last audit event %+v, %v; want account.update", tt.name, evs, err)
		}
		if v, ok := evs[0].Data["tokens_revoked_before"]; ok {
			t.Errorf("%s: audit data records tokens_revoked_before %q", tt.name, v)
		}
		if v, ok := evs[0].Data["cert_tokens_revoked_before"]; ok != tt.ends {
			t.Errorf("%s: audit data %v: cert_tokens_revoked_before recorded %v, want %v", tt.name, evs[0].Data, ok, tt.ends)
		} else if ok {
			at, err := time.Parse(time.RFC3339Nano, v)
			if err != nil || at.Truncate(time.Microsecond).Format(time.RFC3339Nano) != now {
				t.Errorf("%s: audit records cert_tokens_revoked_before %q, the account %q", tt.name, v, now)
			}
		}
		last = now
	}
}

// An administrator that changes its own certificate binding with a token
// got with a secret keeps that token, and the next one it gets works: the
// change ends only the tokens got with a certificate.
func TestOwnTLSBindingChangeKeepsSecretTokens(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	sys := admin.Actor{ID: "t"}
	ops, err := f.srv.Admin.CreateAccount(ctx, sys, admin.AccountInput{Name: "ops", Project: "proj", Scopes: []string{admin.AdminScope}})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := f.srv.Admin.CreateSecret(ctx, sys, ops.Email, 0)
	if err != nil {
		t.Fatal(err)
	}
	token := func() string {
		t.Helper()
		code, body := f.clientToken(ops.ID, secret.Value, admin.AdminScope)
		tok, _ := body["access_token"].(string)
		if code != 200 || tok == "" {
			t.Fatalf("token: %d %v", code, body)
		}
		return "Bearer " + tok
	}
	path := "/v1/service-accounts/" + ops.Email
	first := token()
	for i, patch := range []map[string]any{
		{"auth_methods": []string{"client_secret_basic", "tls_client_auth"}, "tls_binding": map[string]string{"tls_client_auth_subject_dn": "CN=a"}},
		{"tls_binding": map[string]string{"tls_client_auth_subject_dn": "CN=b"}},
	} {
		if status, body, _ := f.call(t, "PATCH", path, first, patch); status != 200 {
			t.Fatalf("change %d: %d %v", i, status, body)
		}
	}
	if status, body, _ := f.call(t, "GET", path, first, nil); status != 200 {
		t.Errorf("the secret's token from before the change: %d %v, want 200", status, body)
	}
	if status, body, _ := f.call(t, "GET", path, token(), nil); status != 200 {
		t.Errorf("a token got after the change: %d %v, want 200", status, body)
	}
}
