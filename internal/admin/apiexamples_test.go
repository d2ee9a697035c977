package admin_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/oauth2"
)

// docJSONExamples returns the ```json examples of docs/ADMIN-API.md that
// are not errors, by the section they are in: the route heading
// (### `METHOD /v1/path`) or, before the first route of a part, the
// part's heading (## Name). Elisions (…) outside strings are dropped.
func docJSONExamples(t *testing.T) map[string][]map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "ADMIN-API.md"))
	if err != nil {
		t.Fatal(err)
	}
	elided := regexp.MustCompile(`,\s*…`)
	examples := map[string][]map[string]any{}
	section, block, in := "", "", false
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case in && trimmed == "```":
			in = false
			var v map[string]any
			if err := json.Unmarshal([]byte(elided.ReplaceAllString(block, "")), &v); err != nil {
				t.Errorf("ADMIN-API.md, %s: an example does not parse as JSON: %v\n%s", section, err, block)
				continue
			}
			if _, isError := v["error"]; !isError {
				examples[section] = append(examples[section], v)
			}
		case in:
			block += line + "\n"
		case trimmed == "```json":
			in, block = true, ""
		case strings.HasPrefix(line, "### `"):
			section = strings.Trim(strings.TrimPrefix(line, "### "), "`")
		case strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		}
	}
	return examples
}

// sameShape reports, as "path: problem", each member of the example doc
// that the answer got lacks or has with another JSON type; of an array
// it compares the first elements.
func sameShape(path string, doc, got any) []string {
	switch d := doc.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: an object in the example, %T in the answer", path, got)}
		}
		var bad []string
		for k, dv := range d {
			gv, ok := g[k]
			if !ok {
				bad = append(bad, fmt.Sprintf("%s.%s: in the example, not in the answer", path, k))
				continue
			}
			bad = append(bad, sameShape(path+"."+k, dv, gv)...)
		}
		return bad
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: an array in the example, %T in the answer", path, got)}
		}
		if len(d) > 0 && len(g) > 0 {
			return sameShape(path+"[0]", d[0], g[0])
		}
		return nil
	default:
		if fmt.Sprintf("%T", doc) != fmt.Sprintf("%T", got) {
			return []string{fmt.Sprintf("%s: %T in the example, %T in the answer", path, doc, got)}
		}
		return nil
	}
}

// The answers shown in docs/ADMIN-API.md are the server's: every member
// of each example is in the real answer of its route, with the same JSON
// type, so a renamed or retyped field cannot stay in the reference.
func TestAdminAPIExamples(t *testing.T) {
	f := newFixture(t)
	// A token naming the key it was got with, as whoami's example shows.
	_, keys, _ := f.call(t, "GET", "/v1/service-accounts/"+f.admin.ID+"/keys", "Bearer "+f.token(t, f.admin, "keyward.admin", nil), nil)
	adminKey, _ := keys["keys"].([]any)[0].(map[string]any)["key_id"].(string)
	auth := "Bearer " + f.token(t, f.admin, "keyward.admin", func(c *oauth2.AccessClaims) { c.Credential = "key:" + adminKey })
	const sa = "/v1/service-accounts/nightly-report@billing.iam.test"
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&p256.PublicKey)
	upload, _ := json.Marshal(map[string]string{"public_key_pem": pemOf("PUBLIC KEY", spki)})

	// What the examples show, set up as they have it.
	var secretID string
	setup := []struct {
		method, path, body string
		save               func(map[string]any)
	}{
		{"POST", "/v1/apis", `{"name":"orders","identifier":"https://orders.internal","scopes":["orders.read","orders.write"]}`, nil},
		{"POST", "/v1/service-accounts", `{"name":"nightly-report","project":"billing","scopes":["orders.read"]}`, nil},
		{"PATCH", sa, `{"auth_methods":["client_secret_basic","private_key_jwt","tls_client_auth"],"tls_binding":{"tls_client_auth_subject_dn":"CN=a"},"token_format":"opaque"}`, nil},
		{"PATCH", sa, `{"tls_binding":{"tls_client_auth_subject_dn":"CN=nightly-report,O=Example"}}`, nil},
		{"POST", sa + "/revoke-tokens", "", nil},
		{"POST", sa + "/keys", `{"expires_in_seconds":7776000}`, nil},
		{"POST", sa + "/secrets", `{"expires_in_seconds":2592000}`, func(v map[string]any) { secretID, _ = v["secret_id"].(string) }},
		{"POST", "/v1/orgs", `{"domain":"example.com","blocked_scopes":["orders.write"]}`, nil},
		{"PUT", "/v1/orgs/example.com/projects/billing", `{"internal":true}`, nil},
		{"POST", "/v1/users", `{"users":[{"email":"alice@example.com"},{"email":"bob@example.com"}]}`, nil},
	}
	for _, s := range setup {
		var body any
		if s.body != "" {
			body = s.body
		}
		status, v, _ := f.call(t, s.method, s.path, auth, body)
		if status >= 300 {
			t.Fatalf("%s %s: %d %v", s.method, s.path, status, v)
		}
		if s.save != nil {
			s.save(v)
		}
	}
	_, acct, _ := f.call(t, "GET", sa, auth, nil)
	clientID, _ := acct["client_id"].(string)
	if status, v, _ := f.call(t, "PUT", "/v1/orgs/example.com/delegations/"+clientID, auth, `{"scopes":["orders.read"]}`); status != 200 {
		t.Fatalf("delegation: %d %v", status, v)
	}

	// The request whose answer each section's examples show.
	requests := map[string]struct{ method, path, body string }{
		"GET /v1/whoami":                             {"GET", "/v1/whoami", ""},
		"GET /v1/apis":                               {"GET", "/v1/apis", ""},
		"POST /v1/apis":                              {"POST", "/v1/apis", `{"name":"billing","identifier":"https://billing.internal","description":"Billing","scopes":["billing.read"]}`},
		"PATCH /v1/apis/{name}":                      {"PATCH", "/v1/apis/orders", `{"description":"Orders","token_format":"opaque"}`},
		"Service accounts":                           {"GET", sa, ""},
		"GET /v1/service-accounts":                   {"GET", "/v1/service-accounts?limit=1", ""},
		"GET /v1/service-accounts/{sa}/keys":         {"GET", sa + "/keys", ""},
		"POST /v1/service-accounts/{sa}/keys":        {"POST", sa + "/keys", ""},
		"POST /v1/service-accounts/{sa}/keys/upload": {"POST", sa + "/keys/upload", string(upload)},
		"GET /v1/service-accounts/{sa}/secrets":      {"GET", sa + "/secrets", ""},
		"POST /v1/service-accounts/{sa}/secrets":     {"POST", sa + "/secrets", `{"expires_in_seconds":60}`},
		"GET /v1/service-accounts/{sa}/secrets/{id}": {"GET", sa + "/secrets/" + secretID, ""},
		"POST /v1/tokens/revoke":                     {"POST", "/v1/tokens/revoke", `{"jti":"xxxxxxxxxxxxxxxxxxxxxx"}`},
		"GET /v1/signing-keys":                       {"GET", "/v1/signing-keys", ""},
		"GET /v1/audit":                              {"GET", "/v1/audit?action=key.create&limit=1&account=" + clientID, ""},
		"GET /v1/orgs":                               {"GET", "/v1/orgs", ""},
		"GET /v1/orgs/{domain}":                      {"GET", "/v1/orgs/example.com", ""},
		"GET /v1/orgs/{domain}/users":                {"GET", "/v1/orgs/example.com/users?limit=1", ""},
		"POST /v1/users/{email}/suspend":             {"POST", "/v1/users/bob@example.com/suspend", ""},
		"GET /v1/orgs/{domain}/delegations":          {"GET", "/v1/orgs/example.com/delegations", ""},
	}
	examples := docJSONExamples(t)
	if len(examples) < 15 {
		t.Fatalf("found examples in %d sections of ADMIN-API.md; the parser has lost them", len(examples))
	}
	for section, docs := range examples {
		req, ok := requests[section]
		if !ok {
			t.Errorf("ADMIN-API.md, %s: an example answer this test does not request; add its request here", section)
			continue
		}
		var body any
		if req.body != "" {
			body = req.body
		}
		status, got, _ := f.call(t, req.method, req.path, auth, body)
		if status >= 300 {
			t.Errorf("ADMIN-API.md, %s: %s %s answered %d %v", section, req.method, req.path, status, got)
			continue
		}
		for _, doc := range docs {
			for _, problem := range sameShape("", doc, got) {
				t.Errorf("ADMIN-API.md, %s: %s", section, problem)
			}
		}
	}
}
