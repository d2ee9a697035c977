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
		"DPoP-bound":          {Active: true, TokenType: "DPoP", Cnf: &oauth2.Confirmation{JKT: "jkt"}},
		"several audiences":   {Active: true, Audience: oauth2.Audience{"a", "b"}},
		"empty audience":      {Active: true, Audience: oauth2.Audience{}},
		"escapes":             {Active: true, Scope: "<&>", Subject: "\"\\\x00\u2029", ClientEmail: "\xff"},
		"negative times":      {Active: true, Expiry: -5, IssuedAt: -1},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			// The reference has plain types only: Audience's MarshalJSON
			// writes with jsonappend too.
			var aud any
			switch len(r.Audience) {
			case 0:
			case 1:
				aud = r.Audience[0]
			default:
				aud = []string(r.Audience)
			}
			want, err := json.Marshal(struct {
				Active      bool                 `json:"active"`
				Scope       string               `json:"scope,omitempty"`
				ClientID    string               `json:"client_id,omitempty"`
				Subject     string               `json:"sub,omitempty"`
				Audience    any                  `json:"aud,omitempty"`
				Issuer      string               `json:"iss,omitempty"`
				Expiry      int64                `json:"exp,omitempty"`
				IssuedAt    int64                `json:"iat,omitempty"`
				NotBefore   int64                `json:"nbf,omitempty"`
				TokenType   string               `json:"token_type,omitempty"`
				ID          string               `json:"jti,omitempty"`
				ClientEmail string               `json:"client_email,omitempty"`
				Actor       *oauth2.Actor        `json:"act,omitempty"`
				Cnf         *oauth2.Confirmation `json:"cnf,omitempty"`
			}{r.Active, r.Scope, r.ClientID, r.Subject, aud, r.Issuer, r.Expiry, r.IssuedAt, r.NotBefore, r.TokenType, r.ID, r.ClientEmail, r.Actor, r.Cnf})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.AppendJSON(nil); string(got) != string(want) {
				t.Errorf("AppendJSON = %s\njson.Marshal = %s", got, want)
			}
		})
	}
}
