package introspect_test

import (
	"encoding/json"
	"testing"

	"github.com/keyward/keyward/internal/introspect"
	"github.com/keyward/keyward/internal/oauth2"
)

func TestResponseAppendJSON(t *testing.T) {
	tests := map[string]introspect.Response{
		"inactive": {},
		"active, every member": {
			Active: true, Scope: "orders.read", ClientID: "1", Subject: "2", Audience: oauth2.Audience{"https://orders.internal"},
			Issuer: "https://keyward.example", Expiry: 3, IssuedAt: 1, NotBefore: 1, TokenType: "Bearer", ID: "jti",
			ClientEmail: "job@shop.iam.example", Actor: &oauth2.Actor{Subject: "3", ClientEmail: "a@b"},
			Cnf: &oauth2.Confirmation{X5TS256: "thumb"},
		},
		"active, few members": {Active: true, Subject: "2", Expiry: 3},
		"several audiences":   {Active: true, Audience: oauth2.Audience{"a", "b"}},
		"empty audience":      {Active: true, Audience: oauth2.Audience{}},
		"escapes":             {Active: true, Scope: "<&>", Subject: "\"\\\x00\u2029", ClientEmail: "\xff"},
		"negative times":      {Active: true, Expiry: -5, IssuedAt: -1},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.AppendJSON(nil); string(got) != string(want) {
				t.Errorf("AppendJSON = %s\njson.Marshal = %s", got, want)
			}
		})
	}
}
