package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestAccountEmailAnyCase: the CLI names an account by its email in any
// case (the admin API looks it up so), while the token endpoint matches a
// client_id exactly: NIGHTLY-REPORT@… with the account's secret is no
// client there.
func TestAccountEmailAnyCase(t *testing.T) {
	m := startServer(t)
	clientID, email := setupAccount(t, m, "nightly-report")
	admin := []string{"--credentials", m.AdminKeyFile}
	upper := strings.ToUpper(email)
	for _, args := range [][]string{
		{"sa", "get", upper, "-o", "json"},
		{"sa", "get", "Nightly-Report@" + strings.SplitN(email, "@", 2)[1], "-o", "json"},
		{"sa", "update", upper, "--display-name", "Nightly report", "-o", "json"},
	} {
		var acct struct {
			ClientID string `json:"client_id"`
			Email    string `json:"email"`
		}
		if err := json.Unmarshal([]byte(runCLI(t, append(args, admin...)...)), &acct); err != nil {
			t.Fatal(err)
		}
		if acct.ClientID != clientID || acct.Email != email {
			t.Fatalf("%q: account %+v, want %s (%s)", args, acct, email, clientID)
		}
	}
	if err := runCLIErr(t, append([]string{"sa", "get", "DAILY@" + strings.SplitN(email, "@", 2)[1]}, admin...)...); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("an unknown account: %v, want it does not exist", err)
	}

	var sec struct {
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, append([]string{"secrets", "create", upper, "-o", "json"}, admin...)...)), &sec); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		id   string
		want string // error code; "" is a token
	}{
		{email, ""},
		{upper, "invalid_client"},
	} {
		cc := clientcredentials.Config{ClientID: tt.id, ClientSecret: sec.Secret, TokenURL: m.Issuer + "/token", Scopes: []string{"orders.read"}}
		_, err := cc.Token(context.Background())
		code := ""
		if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
			code = re.ErrorCode
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.want {
			t.Errorf("client_id %s at the token endpoint: %v, want %q", tt.id, err, tt.want)
		}
	}
}
