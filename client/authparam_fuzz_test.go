package client

import (
	"strings"
	"testing"
)

// FuzzHasAuthParam: for every WWW-Authenticate value that RFC 9110 §11.2's
// grammar reads, hasAuthParam finds error=use_dpop_nonce exactly where a
// parser of that grammar (refAuthParam) does; in particular never in a
// quoted string's content, whatever that holds, and wherever the
// challenge that holds it stands in the list.
func FuzzHasAuthParam(f *testing.F) {
	for _, seed := range []struct{ challenges, inner string }{
		{`DPoP error="use_dpop_nonce"`, `error=use_dpop_nonce`},
		{`DPoP error=use_dpop_nonce, error_description="nonce"`, `a "quoted" error="use_dpop_nonce" \`},
		{`DPoP Error = "use_dpop_nonce"`, `, error=use_dpop_nonce`},
		{`Bearer realm="api", DPoP error="use_dpop_nonce"`, `\", error=use_dpop_nonce, x=\"`},
		{`DPoP error_description="error=use_dpop_nonce"`, `error="use_dpop_nonce"`},
		{`DPoP realm="a\", error=use_dpop_nonce, b=\""`, `"`},
		{`DPoP realm="a\\", error=use_dpop_nonce`, `\\`},
		{`Basic dXNlcjpwYXNz==, DPoP algs="ES256"`, ``},
		{`Basic error==`, `error`},
		{`DPoP error=invalid_token, use_dpop_nonce=error`, `use_dpop_nonce`},
		{`DPoP error="use_dpop_nonce`, `"`},
		{`DPoP error="use_dpop\_nonce"`, `\u`},
		{``, `error=use_dpop_nonce`},
		{`, ,DPoP`, "\t\x00\xff"},
	} {
		f.Add(seed.challenges, seed.inner)
	}
	const name, value = "error", "use_dpop_nonce"
	f.Fuzz(func(t *testing.T, challenges, inner string) {
		got := hasAuthParam(challenges, name, value)
		want, ok := refAuthParam(challenges, name, value)
		if !ok {
			return // not what the grammar reads: only no panic
		}
		if got != want {
			t.Fatalf("hasAuthParam(%q) = %v, the grammar says %v", challenges, got, want)
		}
		q := quote(inner)
		for _, c := range []struct {
			challenges string
			want       bool
		}{
			{`DPoP realm=` + q, false},
			{`DPoP realm=` + q + `, error_description=` + q, false},
			{`Bearer realm=` + q + `, ` + challenges, want},
			{challenges + `, Bearer realm=` + q, want},
			{challenges + `, x = ` + q, want},
			{`Newauth title=` + q + `, ` + challenges + `, DPoP algs=` + q, want},
			{challenges + `, DPoP realm=` + q + `, error=` + value, true},
		} {
			if got := hasAuthParam(c.challenges, name, value); got != c.want {
				t.Fatalf("hasAuthParam(%q) = %v, want %v", c.challenges, got, c.want)
			}
		}
	})
}

// quote writes s as an RFC 9110 quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// refAuthParam parses challenges by RFC 9110 §11.2's grammar:
//
//	#challenge; challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//	auth-param = token BWS "=" BWS ( token / quoted-string )
//
// and reports whether an auth-param name=value (name in any case, value
// a token or a quoted string) is in it; ok is false if the grammar does
// not read it.
func refAuthParam(challenges, name, value string) (found, ok bool) {
	s := challenges
	i := 0
	ows := func(j int) int {
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		return j
	}
	token := func(j int) int {
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", s[j]) >= 0) {
			j++
		}
		return j
	}
	// elementEnd reports whether j, past OWS, is the end of a list element.
	elementEnd := func(j int) bool {
		j = ows(j)
		return j == len(s) || s[j] == ','
	}
	// param parses an auth-param at j: its end, and whether it is one.
	param := func(j int) (int, bool) {
		n := token(j)
		if n == j {
			return j, false
		}
		k := ows(n)
		if k == len(s) || s[k] != '=' {
			return j, false
		}
		k = ows(k + 1)
		var v string
		switch {
		case k < len(s) && s[k] == '"':
			var b strings.Builder
			e := k + 1
			for ; e < len(s) && s[e] != '"'; e++ {
				if s[e] == '\\' {
					if e++; e == len(s) {
						return j, false
					}
				}
				b.WriteByte(s[e])
			}
			if e == len(s) {
				return j, false
			}
			v, k = b.String(), e+1
		default:
			e := token(k)
			if e == k {
				return j, false
			}
			v, k = s[k:e], e
		}
		if elementEnd(k) && strings.EqualFold(s[j:n], name) && v == value {
			found = true
		}
		return k, true
	}
	// token68 parses a token68 at j: its end, and whether it is one.
	token68 := func(j int) (int, bool) {
		e := j
		for e < len(s) && (s[e] >= 'a' && s[e] <= 'z' || s[e] >= 'A' && s[e] <= 'Z' || s[e] >= '0' && s[e] <= '9' || strings.IndexByte("-._~+/", s[e]) >= 0) {
			e++
		}
		if e == j {
			return j, false
		}
		for e < len(s) && s[e] == '=' {
			e++
		}
		return e, true
	}
	for {
		for i = ows(i); i < len(s) && s[i] == ','; i = ows(i + 1) {
		}
		if i == len(s) {
			return found, true
		}
		if e, isParam := param(i); isParam {
			if !elementEnd(e) {
				return false, false
			}
			i = e
			continue
		}
		e := token(i) // an auth-scheme
		if e == i {
			return false, false
		}
		if elementEnd(e) {
			i = e
			continue
		}
		if s[e] != ' ' {
			return false, false
		}
		e = ows(e)
		if p, isParam := param(e); isParam && elementEnd(p) {
			i = p
			continue
		}
		if t, is68 := token68(e); is68 && elementEnd(t) {
			i = t
			continue
		}
		return false, false
	}
}
