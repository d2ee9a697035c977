package admin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/validate"
)

// TestErrorsShowStoredNames: the 412s, 409s and 404s that name a stored
// email, organization domain, client ID, key ID or secret ID show it as
// it is when it is printable and 64 bytes or fewer, and otherwise quoted
// and clipped (validate.QuoteClip), as the refusals of an import's users
// do; an API's name, always quoted, is clipped too. An import stores any
// name the store can hold: a C1 control (U+009B, a terminal's CSI) was
// sent raw to whatever printed the description.
func TestErrorsShowStoredNames(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	svc, st := f.srv.Admin, f.srv.Cache
	op := admin.Actor{ID: "op"} // not an account
	now := time.Now()
	ev := func(action string) storage.AuditEvent {
		return storage.AuditEvent{Time: now, Action: action, Outcome: storage.OutcomeSuccess, Actor: "test"}
	}
	// Names an import brought, each with U+009B.
	const (
		email      = "j\u009bob@shop.iam.test"
		clientID   = "legacy-\u009bjob"
		keyID      = "k\u009b1"
		secretID   = "s\u009b1"
		disabledID = "s\u009b3"             // a disabled secret's
		adminEmail = "w\u009b@ops.iam.test" // an administrator's
		adminKeyID = "wk\u009b1"
		fullEmail  = "f\u009bull@shop.iam.test" // of an account with the most keys and secrets
		domain     = "ex\u009bample.com"
		apiName    = "ord\u009bers"
	)
	// long is printable but over 64 bytes: quoted and clipped too.
	long := strings.Repeat("a", 60) + "@shop.iam.test"
	longAPI := strings.Repeat("b", 70)
	q := strconv.Quote
	publicPEM := func(t *testing.T) (der []byte, pemText string) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, _ = x509.MarshalPKIXPublicKey(&k.PublicKey)
		return der, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	der, pemText := publicPEM(t)
	_, otherPEM := publicPEM(t)

	mustOK := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustOK(st.CreateAPI(ctx, storage.API{Name: apiName, Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"},
		TokenFormat: storage.TokenJWT, Introspectors: []string{}, CreatedAt: now}, ev("api.create")))
	mustOK(st.CreateAPI(ctx, storage.API{Name: longAPI, Identifier: "https://long.internal", Scopes: []string{"long.read"},
		TokenFormat: storage.TokenJWT, Introspectors: []string{}, CreatedAt: now}, ev("api.create")))
	account := func(id, email string, scopes ...string) {
		t.Helper()
		mustOK(st.CreateAccount(ctx, storage.Account{ID: id, Email: email, Name: "job", Project: "shop", Scopes: scopes,
			TokenLifetime: time.Hour, AuthMethods: storage.DefaultAuthMethods, CreatedAt: now, UpdatedAt: now}, ev("account.create")))
	}
	key := func(id, accountID string, der []byte) {
		t.Helper()
		mustOK(st.CreateKey(ctx, storage.Key{ID: id, AccountID: accountID, Algorithm: "ES256", PublicKey: der,
			Origin: storage.KeyOriginUploaded, CreatedAt: now}, nil, ev("key.create")))
	}
	secret := func(id, accountID string, disabled bool) {
		t.Helper()
		mustOK(st.CreateSecret(ctx, storage.Secret{ID: id, AccountID: accountID, Hash: []byte(id), Hint: "abcd", Disabled: disabled,
			CreatedAt: now}, nil, ev("secret.create")))
	}
	account(clientID, email, "orders.read")
	key(keyID, clientID, der)
	secret(secretID, clientID, false)
	secret("s2", clientID, false)
	secret(disabledID, clientID, true)
	account("legacy-full", fullEmail)
	for i := range admin.MaxKeys {
		key(fmt.Sprintf("full-k%d", i), "legacy-full", []byte(fmt.Sprint(i)))
	}
	for i := range admin.MaxSecrets {
		secret(fmt.Sprintf("full-s%d", i), "legacy-full", true)
	}
	account("legacy-long", long)
	mustOK(st.CreateOrg(ctx, storage.Org{Domain: domain, BlockedScopes: []string{}, CreatedAt: now}, ev("org.create")))
	_, err := st.PutGrant(ctx, storage.Grant{Org: domain, ClientID: clientID, Scopes: []string{"orders.write"}, CreatedAt: now}, ev("delegation.grant"))
	mustOK(err)
	// The administrator adminEmail holds the only way in: the bootstrap
	// administrator, which keeps the scope, loses its key.
	account("legacy-w", adminEmail, admin.AdminScope)
	key(adminKeyID, "legacy-w", []byte("w"))
	keys, err := st.ListKeys(ctx, f.admin.ID)
	mustOK(err)
	for _, k := range keys {
		mustOK(st.DeleteKey(ctx, k.ID, nil, ev("key.delete")))
	}
	// A printable name of 64 bytes or fewer is shown as it is.
	plain, err := svc.CreateAccount(ctx, op, admin.AccountInput{Name: "plain", Project: "shop"})
	mustOK(err)

	stale := admin.Match{Tags: []string{`"stale"`}}
	desc, noScopes := "d", []string{}
	changed := " has changed since you read it"
	tests := []struct {
		name string
		// before, if set, changes the store first (rows run in order).
		before func(t *testing.T)
		do     func() error
		status int
		want   []string // each in the description
	}{
		{name: "account PATCH 412", do: func() error {
			_, err := svc.UpdateAccountIf(ctx, op, clientID, admin.AccountUpdate{Description: &desc}, stale)
			return err
		}, status: 412, want: []string{"The service account " + q(email) + changed}},
		{name: "account disable 412", do: func() error {
			_, err := svc.SetAccountDisabledIf(ctx, op, clientID, true, stale)
			return err
		}, status: 412, want: []string{"The service account " + q(email) + changed}},
		{name: "account DELETE 412", do: func() error {
			return svc.DeleteAccountIf(ctx, op, clientID, stale)
		}, status: 412, want: []string{"The service account " + q(email) + changed}},
		{name: "printable account 412", do: func() error {
			return svc.DeleteAccountIf(ctx, op, plain.ID, stale)
		}, status: 412, want: []string{"The service account plain@shop.iam.test" + changed}},
		{name: "long account 412", do: func() error {
			return svc.DeleteAccountIf(ctx, op, "legacy-long", stale)
		}, status: 412, want: []string{"The service account " + validate.QuoteClip(long) + changed}},
		{name: "secret disable 412", do: func() error {
			_, err := svc.SetSecretDisabledIf(ctx, op, clientID, secretID, true, stale)
			return err
		}, status: 412, want: []string{"The secret " + q(secretID) + " of " + q(email) + changed}},
		{name: "secret DELETE 412", do: func() error {
			return svc.DeleteSecretIf(ctx, op, clientID, secretID, stale)
		}, status: 412, want: []string{"The secret " + q(secretID) + " of " + q(email) + changed}},
		{name: "key disable 412", do: func() error {
			_, err := svc.SetKeyDisabledIf(ctx, op, clientID, keyID, true, stale)
			return err
		}, status: 412, want: []string{"The key " + q(keyID) + " of " + q(email) + changed}},
		{name: "key DELETE 412", do: func() error {
			return svc.DeleteKeyIf(ctx, op, clientID, keyID, stale)
		}, status: 412, want: []string{"The key " + q(keyID) + " of " + q(email) + changed}},
		{name: "API PATCH 412", do: func() error {
			_, err := svc.UpdateAPIIf(ctx, op, apiName, admin.APIUpdate{Description: &desc}, stale)
			return err
		}, status: 412, want: []string{"The API " + q(apiName) + changed}},
		{name: "long API PATCH 412", do: func() error {
			_, err := svc.UpdateAPIIf(ctx, op, longAPI, admin.APIUpdate{Description: &desc}, stale)
			return err
		}, status: 412, want: []string{"The API " + validate.QuoteClip(longAPI) + changed}},
		{name: "long API DELETE 412", do: func() error {
			return svc.DeleteAPIIf(ctx, op, longAPI, stale)
		}, status: 412, want: []string{"The API " + validate.QuoteClip(longAPI) + changed}},
		{name: "organization PATCH 412", do: func() error {
			_, _, err := svc.SetBlockedScopesIf(ctx, op, domain, noScopes, stale)
			return err
		}, status: 412, want: []string{"The organization " + q(domain) + changed}},
		{name: "project placement 412", do: func() error {
			_, err := svc.PlaceProjectIf(ctx, op, domain, "shop", false, stale)
			return err
		}, status: 412, want: []string{"The organization " + q(domain) + changed}},
		{name: "secret not found", do: func() error {
			_, err := svc.GetSecret(ctx, clientID, "nosuch")
			return err
		}, status: 404, want: []string{`The secret "nosuch" of ` + q(email) + " does not exist."}},
		{name: "secret ID that is a secret", do: func() error {
			_, err := svc.GetSecret(ctx, clientID, admin.NewSecret())
			return err
		}, status: 404, want: []string{"keyward secrets list " + q(email) + " "}},
		{name: "key not found", do: func() error {
			_, err := svc.GetKey(ctx, clientID, "nosuch")
			return err
		}, status: 404, want: []string{`The key "nosuch" of ` + q(email) + " does not exist."}},
		{name: "third active secret", do: func() error {
			_, err := svc.CreateSecret(ctx, op, clientID, 0)
			return err
		}, status: 409, want: []string{q(email) + " already has 2 active"}},
		{name: "third active secret enabled", do: func() error {
			_, err := svc.SetSecretDisabled(ctx, op, clientID, disabledID, false)
			return err
		}, status: 409, want: []string{q(email) + " already has 2 active", "enable the secret " + q(disabledID) + " again"}},
		{name: "key uploaded again", do: func() error {
			_, err := svc.UploadKey(ctx, op, clientID, []byte(pemText), 0)
			return err
		}, status: 409, want: []string{"already the key " + q(keyID) + " of " + q(email) + ";"}},
		{name: "most keys", do: func() error {
			_, err := svc.UploadKey(ctx, op, "legacy-full", []byte(otherPEM), 0)
			return err
		}, status: 409, want: []string{q(fullEmail) + " already has 10 keys", "keyward keys delete " + q(fullEmail) + " KEY_ID"}},
		{name: "most secrets", do: func() error {
			_, err := svc.CreateSecret(ctx, op, "legacy-full", 0)
			return err
		}, status: 409, want: []string{q(fullEmail) + " already has 10 secrets", "keyward secrets delete " + q(fullEmail) + " SECRET_ID"}},
		{name: "API scopes held", do: func() error {
			return svc.DeleteAPI(ctx, op, apiName)
		}, status: 409, want: []string{"account " + q(email) + " (orders.read)", "delegation of client " + q(clientID) + " in " + q(domain) + " (orders.write)"}},
		{name: "long API identifier differs in case 409", do: func() error {
			_, err := svc.CreateAPI(ctx, op, admin.APIInput{Name: "long2", Identifier: "https://LONG.internal", Scopes: []string{"long2.read"}})
			return err
		}, status: 409, want: []string{"differs from the API " + validate.QuoteClip(longAPI) + "'s, "}},
		{name: "long API identifier taken 409", do: func() error {
			_, err := svc.CreateAPI(ctx, op, admin.APIInput{Name: "long2", Identifier: "https://long.internal", Scopes: []string{"long2.read"}})
			return err
		}, status: 409, want: []string{"is the API " + validate.QuoteClip(longAPI) + "'s already"}},
		{name: "long API scope taken on create 409", do: func() error {
			_, err := svc.CreateAPI(ctx, op, admin.APIInput{Name: "long2", Identifier: "https://long2.internal", Scopes: []string{"long.read"}})
			return err
		}, status: 409, want: []string{"belongs to the API " + validate.QuoteClip(longAPI) + ":"}},
		{name: "long API scope taken on update 409", do: func() error {
			scopes := []string{"orders.read", "orders.write", "long.read"}
			_, err := svc.UpdateAPI(ctx, op, apiName, admin.APIUpdate{Scopes: &scopes})
			return err
		}, status: 409, want: []string{"belongs to the API " + validate.QuoteClip(longAPI) + ":"}},
		{name: "long API delete scopes held 409", before: func(t *testing.T) {
			_, err := st.UpdateAccount(ctx, "legacy-long", func(a storage.Account) (storage.Account, error) {
				a.Scopes = []string{"long.read"}
				return a, nil
			}, ev("account.update"))
			if err != nil {
				t.Fatal(err)
			}
		}, do: func() error {
			return svc.DeleteAPI(ctx, op, longAPI)
		}, status: 409, want: []string{"The API " + validate.QuoteClip(longAPI) + " cannot be deleted while"}},
		{name: "long API update scopes held 409", do: func() error {
			scopes := []string{"long.write"}
			_, err := svc.UpdateAPI(ctx, op, longAPI, admin.APIUpdate{Scopes: &scopes})
			return err
		}, status: 409, want: []string{"cannot be removed from the API " + validate.QuoteClip(longAPI) + " while"}},
		{name: "last way in: scope removed", do: func() error {
			_, err := svc.UpdateAccount(ctx, op, "legacy-w", admin.AccountUpdate{Scopes: &noScopes})
			return err
		}, status: 409, want: []string{q(adminEmail) + " is the last enabled administrator that can get tokens"}},
		{name: "last way in: key disabled", do: func() error {
			_, err := svc.SetKeyDisabled(ctx, op, "legacy-w", adminKeyID, true)
			return err
		}, status: 409, want: []string{"The key " + q(adminKeyID) + " of " + q(adminEmail) + " is the last credential"}},
		{name: "last way in: key deleted", do: func() error {
			return svc.DeleteKey(ctx, op, "legacy-w", adminKeyID)
		}, status: 409, want: []string{"The key " + q(adminKeyID) + " of " + q(adminEmail) + " is the last credential"}},
		{name: "last holder: disabled", before: func(t *testing.T) {
			_, err := st.UpdateAccount(ctx, f.admin.ID, func(a storage.Account) (storage.Account, error) {
				a.Scopes = []string{}
				return a, nil
			}, ev("account.update"))
			if err != nil {
				t.Fatal(err)
			}
		}, do: func() error {
			_, err := svc.SetAccountDisabled(ctx, op, "legacy-w", true)
			return err
		}, status: 409, want: []string{q(adminEmail) + " is the last enabled account with the " + admin.AdminScope + " scope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before(t)
			}
			err := tt.do()
			var oe *oauth2.Error
			if !errors.As(err, &oe) || oe.Status != tt.status {
				t.Fatalf("err = %v, want a %d", err, tt.status)
			}
			for _, want := range tt.want {
				if !strings.Contains(oe.Description, want) {
					t.Errorf("description %q\nwant it to hold %q", oe.Description, want)
				}
			}
			if strings.ContainsAny(oe.Description, "\u009b\x1b") {
				t.Errorf("description %q holds a control character raw", oe.Description)
			}
		})
	}
}
