package admin_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
)

// Every malformed admin request is a clear 4xx: trailing data after the
// JSON object, an oversized body, a page token that no page returned, an
// overlong or control-character display name or description, an overlong
// token ID, a public key sent to key or secret creation instead of upload.
func TestRefusesLooseInput(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	if code, out, _ := f.call(t, "POST", "/v1/orgs", auth, `{"domain":"example.com"}`); code != 201 && code != 200 {
		t.Fatalf("create org: %d %v", code, out)
	}
	sa := func(field, value string) string {
		return `{"name":"job","project":"shop","` + field + `":"` + value + `"}`
	}
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantDesc                 string
	}{
		{"trailing garbage", "POST", "/v1/service-accounts", `{"name":"job","project":"shop"}garbage`, 400, "more after the JSON value"},
		{"second object", "POST", "/v1/service-accounts", `{"name":"job","project":"shop"} {"name":"x"}`, 400, "more after the JSON value"},
		// A body that does not decode is described in JSON's words, not Go's.
		{"empty body", "POST", "/v1/service-accounts", "", 400, "The request body is empty; send a JSON object."},
		{"blank body", "POST", "/v1/apis", " \n", 400, "The request body is empty; send a JSON object."},
		{"form feed body", "POST", "/v1/apis", "\f", 400, "not valid JSON: invalid character '\\f' looking for beginning of value"},
		{"not JSON", "POST", "/v1/service-accounts", "name=job", 400, "not valid JSON: invalid character 'a' in literal null (expecting 'u') (at byte 2)"},
		{"cut short", "POST", "/v1/service-accounts", `{"name":`, 400, "not valid JSON: it ends in the middle of a value."},
		{"array body", "POST", "/v1/service-accounts", `[]`, 400, "The request body must be a JSON object, not an array."},
		{"string for an array", "POST", "/v1/apis", `{"scopes":"orders.read"}`, 400, `The field "scopes" of the request body must be an array, not a string.`},
		{"number in an array", "PATCH", "/v1/service-accounts/" + f.admin.Email, `{"scopes":[1]}`, 400, `The field "scopes" of the request body must be a string, not a number.`},
		{"fraction for a whole number", "POST", "/v1/service-accounts", `{"name":"job","project":"shop","token_lifetime_seconds":1.5}`, 400, `The field "token_lifetime_seconds" of the request body must be a whole number, in digits without a point or an exponent, not 1.5.`},
		{"whole number with a point", "POST", "/v1/service-accounts", `{"name":"job","project":"shop","token_lifetime_seconds":1.0}`, 400, `must be a whole number, in digits without a point or an exponent, not 1.0.`},
		{"whole number with an exponent", "POST", "/v1/service-accounts", `{"name":"job","project":"shop","token_lifetime_seconds":1e3}`, 400, `must be a whole number, in digits without a point or an exponent, not 1e3.`},
		{"whole number out of range", "POST", "/v1/service-accounts", `{"name":"job","project":"shop","token_lifetime_seconds":99999999999999999999}`, 400, `The field "token_lifetime_seconds" of the request body must be a whole number from -9223372036854775808 to 9223372036854775807, not 99999999999999999999.`},
		{"object for a string", "POST", "/v1/orgs", `{"domain":{}}`, 400, `The field "domain" of the request body must be a string, not an object.`},
		{"unknown field", "POST", "/v1/service-accounts", `{"name":"job","project":"shop","scope":"x"}`, 400, `The request body has a field this endpoint does not take: "scope".`},
		// encoding/json would take a field's name in any case, and keep the
		// last of a field given twice: what a proxy or policy in front of
		// the server checked could then differ from what is applied.
		{"field in other case", "POST", "/v1/service-accounts", `{"name":"job","project":"shop","Scopes":["keyward.admin"]}`, 400, `The request body has a field this endpoint does not take: "Scopes" (field names are case-sensitive: "scopes").`},
		{"field in a Unicode case fold", "POST", "/v1/service-accounts", `{"name":"job","project":"shop","\u017fcopes":["keyward.admin"]}`, 400, `this endpoint does not take: "ſcopes" (field names are case-sensitive: "scopes").`},
		{"nested field in other case", "PATCH", "/v1/service-accounts/" + f.admin.Email, `{"tls_binding":{"TLS_client_auth_san_dns":"a.example"}}`, 400, `(field names are case-sensitive: "tls_client_auth_san_dns")`},
		{"field in an array's object in other case", "POST", "/v1/orgs/example.com/users", `{"users":[{"Email":"ann@example.com"}]}`, 400, `(field names are case-sensitive: "email")`},
		{"field twice", "POST", "/v1/service-accounts", `{"name":"job","project":"shop","scopes":[],"scopes":["keyward.admin"]}`, 400, `The request body has the field "scopes" more than once in one object; give it once.`},
		{"field twice case aside", "PATCH", "/v1/apis/keyward", `{"description":"a","DESCRIPTION":"b"}`, 400, `case-sensitive: "description"`},
		{"nested field twice", "POST", "/v1/orgs/example.com/users", `{"users":[{"email":"ann@example.com","email":"bob@example.com"}]}`, 400, `the field "email" more than once`},
		{"body over 1 MiB", "POST", "/v1/service-accounts", sa("description", strings.Repeat("a", 1<<20)), 413, "larger than 1048576 bytes"},
		{"account page token", "GET", "/v1/service-accounts?page_token=zz", "", 400, "page_token"},
		{"user page token", "GET", "/v1/orgs/example.com/users?page_token=zz", "", 400, "page_token"},
		{"long display name", "POST", "/v1/service-accounts", sa("display_name", strings.Repeat("é", 101)), 400, "display name is 101 characters"},
		{"long description", "POST", "/v1/service-accounts", sa("description", strings.Repeat("a", 1001)), 400, "description is 1001 characters"},
		{"C0 in display name", "POST", "/v1/service-accounts", sa("display_name", `a\u001b[31mb`), 400, "control character U+001B"},
		{"C1 in description", "POST", "/v1/service-accounts", sa("description", `a\u009bb`), 400, "control character U+009B"},
		{"newline in description", "POST", "/v1/service-accounts", sa("description", `a\nb`), 400, "control character U+000A"},
		{"right-to-left override in display name", "POST", "/v1/service-accounts", sa("display_name", `a\u202eb`), 400, "invisible format character U+202E at byte 1"},
		{"left-to-right mark in display name", "POST", "/v1/service-accounts", sa("display_name", `a\u200eb`), 400, "invisible format character U+200E at byte 1"},
		{"soft hyphen in API description", "POST", "/v1/apis", `{"name":"orders","identifier":"https://o","scopes":["o.read"],"description":"ad\u00admin"}`, 400, "invisible format character U+00AD at byte 2"},
		{"line separator in update", "PATCH", "/v1/service-accounts/" + f.admin.Email, `{"description":"a\u2028b"}`, 400, "line or paragraph separator U+2028 at byte 1"},
		{"zero-width space in API update", "PATCH", "/v1/apis/keyward", `{"description":"adm\u200bin"}`, 400, "invisible format character U+200B"},
		{"zero-width space in API identifier", "POST", "/v1/apis", `{"name":"orders","identifier":"https://ord\u200bers","scopes":["o.read"]}`, 400, "invisible format character U+200B"},
		{"no-break space in API identifier", "POST", "/v1/apis", `{"name":"orders","identifier":"https://orders.internal/a\u00a0b","scopes":["o.read"]}`, 400, "space character U+00A0"},
		{"zero-width space in user email", "POST", "/v1/orgs/example.com/users", `{"users":[{"email":"adm\u200bin@example.com"}]}`, 400, `user 1: "adm\u200bin@example.com" is not an email address: it contains the invisible format character U+200B`},
		{"no-break space in user email", "POST", "/v1/orgs/example.com/users", `{"users":[{"email":"ad\u00a0min@example.com"}]}`, 400, `user 1: "ad\u00a0min@example.com" is not an email address: it contains the space character U+00A0`},
		{"ideographic space in user email", "POST", "/v1/orgs/example.com/users", `{"users":[{"email":"ad\u3000min@example.com"}]}`, 400, "space character U+3000"},
		{"control in update", "PATCH", "/v1/service-accounts/" + f.admin.Email, `{"display_name":"a\tb"}`, 400, "control character"},
		{"long API description", "POST", "/v1/apis", `{"name":"orders","identifier":"https://o","scopes":["o.read"],"description":"` + strings.Repeat("a", 1001) + `"}`, 400, "at most 1000"},
		{"control in API update", "PATCH", "/v1/apis/keyward", `{"description":"\u0007"}`, 400, "control character"},
		{"public key to key creation", "POST", "/v1/service-accounts/" + f.admin.Email + "/keys", `{"public_key_pem":"-----BEGIN PUBLIC KEY-----"}`, 400, "keys/upload"},
		{"public key to secret creation", "POST", "/v1/service-accounts/" + f.admin.Email + "/secrets", `{"public_key_pem":"-----BEGIN PUBLIC KEY-----"}`, 400, "keys/upload"},
		{"no token ID", "POST", "/v1/tokens/revoke", `{"jti":""}`, 400, "token ID (jti) is required"},
		{"long token ID", "POST", "/v1/tokens/revoke", `{"jti":"` + strings.Repeat("a", 129) + `"}`, 400, "129 bytes long; at most 128"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := f.call(t, tt.method, tt.path, auth, tt.body)
			desc, _ := out["error_description"].(string)
			if code != tt.wantStatus || out["error"] != "invalid_request" || !strings.Contains(desc, tt.wantDesc) {
				t.Fatalf("%d %v, want %d invalid_request containing %q", code, out, tt.wantStatus, tt.wantDesc)
			}
		})
	}
	// What is fine stays fine: limits exactly, trailing white space, a real
	// page token.
	ok := `{"name":"job","project":"shop","display_name":"` + strings.Repeat("é", 100) +
		`","description":"` + strings.Repeat("a", 1000) + `"}` + "\n\t "
	if code, out, _ := f.call(t, "POST", "/v1/service-accounts", auth, ok); code != 201 {
		t.Fatalf("account at the limits: %d %v", code, out)
	}
	if code, out, _ := f.call(t, "GET", "/v1/service-accounts?limit=1", auth, nil); code != 200 || out["next_page_token"] == nil {
		t.Fatalf("first page: %d %v", code, out)
	} else if code, out, _ := f.call(t, "GET", "/v1/service-accounts?limit=1&page_token="+out["next_page_token"].(string), auth, nil); code != 200 {
		t.Fatalf("second page: %d %v", code, out)
	}
	if code, out, _ := f.call(t, "GET", "/v1/orgs/example.com/users?page_token=ann@example.com", auth, nil); code != 200 {
		t.Fatalf("users page: %d %v", code, out)
	}
	// An email stored before it would be refused (an invisible or
	// control character) still continues the list from where it ended.
	for _, stored := range []string{"adm%E2%80%8Bin@example.com", "a%C2%9Bb@example.com"} {
		if code, out, _ := f.call(t, "GET", "/v1/orgs/example.com/users?page_token="+stored, auth, nil); code != 200 {
			t.Fatalf("users page after %s: %d %v", stored, code, out)
		}
	}
}

// An endpoint whose body may be left out takes an empty one however it
// comes: white space alone, or chunked with no length given, as well as
// Content-Length: 0.
func TestOptionalBody(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	if code, out, _ := f.call(t, "POST", "/v1/orgs", auth, `{"domain":"example.com"}`); code != 201 {
		t.Fatalf("create org: %d %v", code, out)
	}
	if code, out, _ := f.call(t, "POST", "/v1/service-accounts", auth, `{"name":"job","project":"shop"}`); code != 201 {
		t.Fatalf("create account: %d %v", code, out)
	}
	sa := "/v1/service-accounts/job@shop.iam.test"
	tests := []struct {
		name, method, path, body string
		chunked                  bool
		want                     int
	}{
		{"key, white space", "POST", sa + "/keys", " \n", false, 201},
		{"key, chunked", "POST", sa + "/keys", "", true, 201},
		{"secret, white space", "POST", sa + "/secrets", "\t", false, 201},
		{"secret, chunked", "POST", sa + "/secrets", "", true, 201},
		{"project, white space", "PUT", "/v1/orgs/example.com/projects/shop", " ", false, 200},
		{"project, chunked", "PUT", "/v1/orgs/example.com/projects/shop", "", true, 200},
		// Only JSON's white space: a form feed or a no-break space is
		// neither JSON nor a body left out.
		{"key, form feed", "POST", sa + "/keys", "\f", false, 400},
		{"secret, no-break space", "POST", sa + "/secrets", "\u00a0", false, 400},
		{"project, no-break space chunked", "PUT", "/v1/orgs/example.com/projects/shop", " \u00a0 ", true, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.chunked {
				req.ContentLength = -1
				req.TransferEncoding = []string{"chunked"}
			}
			req.Header.Set("Authorization", auth)
			w := httptest.NewRecorder()
			f.srv.ServeHTTP(w, req)
			if w.Code != tt.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.want)
			}
		})
	}
}

// A body's bad value is described, not echoed back whole: a field name
// or a number of more than 64 bytes is cut to its first 48, with its
// length; one of 64 is quoted in full.
func TestBodyProblemQuotesLittle(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	tests := []struct {
		name, body, want, notWant string
	}{
		{"long unknown field", `{"name":"job","project":"shop","` + long("k", 1<<19) + `":1}`,
			`does not take: "` + long("k", 48) + `"… (524288 bytes).`, long("k", 49)},
		{"unknown field of 64 bytes", `{"name":"job","project":"shop","` + long("k", 64) + `":1}`,
			`does not take: "` + long("k", 64) + `".`, "…"},
		{"long number", `{"name":"job","project":"shop","token_lifetime_seconds":` + long("9", 1<<19) + `}`,
			`must be a whole number from -9223372036854775808 to 9223372036854775807, not ` + long("9", 48) + `… (524288 bytes).`, long("9", 49)},
		{"long fraction", `{"name":"job","project":"shop","token_lifetime_seconds":1.` + long("5", 100) + `}`,
			`must be a whole number, in digits without a point or an exponent, not 1.` + long("5", 46) + `… (102 bytes).`, long("5", 47)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := f.call(t, "POST", "/v1/service-accounts", auth, tt.body)
			desc, _ := out["error_description"].(string)
			if code != 400 || !strings.Contains(desc, tt.want) || strings.Contains(desc, tt.notWant) {
				t.Fatalf("%d, %d bytes of description %.200q…; want 400 containing %q, not %.60q", code, len(desc), desc, tt.want, tt.notWant)
			}
		})
	}
}
