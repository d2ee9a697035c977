// Package transfer exports a store's configuration as JSON and imports it
// into another store: how an installation moves between SQLite and
// PostgreSQL. It carries APIs, accounts, the public halves of their keys,
// the keyed hashes of their secrets, the sealed signing keys, and the
// organizations with their users, policies and delegations; it does
// not carry the audit log (a chain belongs to its store), used assertion
// IDs, revocations or opaque tokens.
package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// Format identifies the dump format.
const Format = "keyward-export/1"

// Dump is an exported store. Its fields follow the storage types.
type Dump struct {
	Format      string               `json:"format"`
	ExportedAt  time.Time            `json:"exported_at"`
	APIs        []storage.API        `json:"apis"`
	Accounts    []storage.Account    `json:"accounts"`
	Keys        []storage.Key        `json:"keys"`
	Secrets     []storage.Secret     `json:"secrets"`
	SigningKeys []storage.SigningKey `json:"signing_keys"`
	// SealedValues hold the client-secret pepper, sealed under the master
	// key like the signing keys. Dumps from before master-key rotation have
	// none; the importing server then derives the pepper as they did.
	SealedValues []storage.SealedValue `json:"sealed_values,omitempty"`
	// Delegation: organizations with their policy, users, project
	// placements and grants.
	Orgs     []storage.Org        `json:"orgs"`
	Users    []storage.User       `json:"users"`
	Projects []storage.ProjectOrg `json:"projects"`
	Grants   []storage.Grant      `json:"grants"`
}

// Export reads everything a dump holds.
func Export(ctx context.Context, s storage.Storage, now time.Time) (Dump, error) {
	d := Dump{Format: Format, ExportedAt: now.UTC()}
	var err error
	if d.APIs, err = s.ListAPIs(ctx); err != nil {
		return d, err
	}
	after := ""
	for {
		page, err := s.ListAccounts(ctx, storage.ListOptions{After: after, Limit: 1000})
		if err != nil {
			return d, err
		}
		for _, a := range page {
			keys, err := s.ListKeys(ctx, a.ID)
			if err != nil {
				return d, err
			}
			secrets, err := s.ListSecrets(ctx, a.ID)
			if err != nil {
				return d, err
			}
			d.Keys = append(d.Keys, keys...)
			d.Secrets = append(d.Secrets, secrets...)
		}
		d.Accounts = append(d.Accounts, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	if d.SigningKeys, err = s.ListSigningKeys(ctx); err != nil {
		return d, err
	}
	if d.SealedValues, err = s.ListSealedValues(ctx); err != nil {
		return d, err
	}
	if d.Orgs, err = s.ListOrgs(ctx); err != nil {
		return d, err
	}
	for _, o := range d.Orgs {
		for after := ""; ; {
			page, err := s.ListUsers(ctx, o.Domain, storage.ListOptions{After: after, Limit: 1000})
			if err != nil {
				return d, err
			}
			d.Users = append(d.Users, page...)
			if len(page) < 1000 {
				break
			}
			after = page[len(page)-1].Email
		}
		projects, err := s.ListProjectOrgs(ctx, o.Domain)
		if err != nil {
			return d, err
		}
		grants, err := s.ListGrants(ctx, o.Domain)
		if err != nil {
			return d, err
		}
		d.Projects, d.Grants = append(d.Projects, projects...), append(d.Grants, grants...)
	}
	return d, nil
}

// ErrNotEmpty means the target store already has accounts.
var ErrNotEmpty = errors.New("the target store is not empty: import only into a new store (run the import before the first 'keyward serve')")

// Import writes a dump into an empty store. Every item is audited as
// written by "import". A dump the admin API could not have made (a
// delegation of Keyward's own scopes, or one to a client ID that names
// no service account) is refused before anything is written: the writes
// below are separate transactions, so a refusal halfway would leave a
// partial store that the next import refuses as not empty.
func Import(ctx context.Context, s storage.Storage, d Dump, now time.Time) error {
	if d.Format != Format {
		return fmt.Errorf("unknown dump format %q, want %q", d.Format, Format)
	}
	if err := checkGrants(d.Grants, d.Accounts); err != nil {
		return err
	}
	if n, err := s.CountAccounts(ctx); err != nil {
		return err
	} else if n > 0 {
		return ErrNotEmpty
	}
	ev := func(action, account string) storage.AuditEvent {
		return storage.AuditEvent{Time: now, Action: action, Outcome: storage.OutcomeSuccess, AccountID: account, Actor: "import",
			Data: map[string]string{"exported_at": d.ExportedAt.Format(time.RFC3339)}}
	}
	for _, a := range d.APIs {
		if err := s.CreateAPI(ctx, a, ev("api.import", "")); err != nil {
			existing, gerr := s.GetAPI(ctx, a.Name)
			if !errors.Is(err, storage.ErrAlreadyExists) || gerr != nil || existing.Identifier != a.Identifier {
				return fmt.Errorf("API %s: %w", a.Name, err)
			}
		}
	}
	for _, a := range d.Accounts {
		if err := s.CreateAccount(ctx, a, ev("account.import", a.ID)); err != nil {
			return fmt.Errorf("account %s: %w", a.Email, err)
		}
	}
	for _, k := range d.Keys {
		if err := s.CreateKey(ctx, k, ev("key.import", k.AccountID)); err != nil {
			return fmt.Errorf("key %s: %w", k.ID, err)
		}
	}
	for _, sec := range d.Secrets {
		if err := s.CreateSecret(ctx, sec, ev("secret.import", sec.AccountID)); err != nil {
			return fmt.Errorf("secret %s: %w", sec.ID, err)
		}
	}
	for _, o := range d.Orgs {
		if err := s.CreateOrg(ctx, o, ev("org.import", "")); err != nil {
			return fmt.Errorf("organization %s: %w", o.Domain, err)
		}
	}
	if len(d.Users) > 0 {
		e := ev("user.import", "")
		e.Data["count"] = strconv.Itoa(len(d.Users))
		if err := s.PutUsers(ctx, d.Users, e); err != nil {
			return fmt.Errorf("users: %w", err)
		}
	}
	for _, p := range d.Projects {
		if err := s.PutProjectOrg(ctx, p, ev("org.project_import", "")); err != nil {
			return fmt.Errorf("project %s: %w", p.Project, err)
		}
	}
	for _, g := range d.Grants {
		if _, err := s.PutGrant(ctx, g, ev("delegation.import", g.ClientID)); err != nil {
			return fmt.Errorf("delegation of %s in %s: %w", g.ClientID, g.Org, err)
		}
	}
	for _, v := range d.SealedValues {
		err := s.CreateSealedValue(ctx, v, ev("sealed_value.import", ""))
		if errors.Is(err, storage.ErrAlreadyExists) {
			if have, gerr := s.GetSealedValue(ctx, v.Name); gerr == nil && bytes.Equal(have.Sealed, v.Sealed) {
				continue
			}
			return fmt.Errorf("sealed value %s: the target store already has a different one", v.Name)
		} else if err != nil {
			return fmt.Errorf("sealed value %s: %w", v.Name, err)
		}
	}
	if len(d.SigningKeys) > 0 {
		e := ev("signing_key.import", "")
		e.Data["count"] = strconv.Itoa(len(d.SigningKeys))
		if _, err := s.UpdateSigningKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, error) { return d.SigningKeys, nil }, e); err != nil {
			return fmt.Errorf("signing keys: %w", err)
		}
	}
	return nil
}

// checkGrants refuses delegation grants the admin API would not make,
// naming each, so an export made before a rule, or an edited file, cannot
// bring one in: one that carries a scope the admin API does not delegate
// (oauth2.Delegable), and one whose client ID is not the ID of a service
// account in the dump. The target store has no accounts (Import checks),
// so the dump's are the only ones a grant can name; such a grant would
// authorize nothing, yet be listed and count as a holder of its scopes.
func checkGrants(grants []storage.Grant, accounts []storage.Account) error {
	ids := make(map[string]bool, len(accounts))
	for _, a := range accounts {
		ids[a.ID] = true
	}
	var scoped, orphans []string
	for _, g := range grants {
		if !ids[g.ClientID] {
			orphans = append(orphans, fmt.Sprintf("the delegation of %s in %s names no service account in the file", g.ClientID, g.Org))
		}
		for _, sc := range g.Scopes {
			if !oauth2.Delegable(sc) {
				scoped = append(scoped, fmt.Sprintf("the delegation of %s in %s carries %s", g.ClientID, g.Org, sc))
			}
		}
	}
	var parts []string
	if len(orphans) > 0 {
		parts = append(parts, fmt.Sprintf("%s; a grant is made to the numeric client ID of an existing service account: remove these grants from the file, or add their accounts, and import again",
			limit(orphans)))
	}
	if len(scoped) > 0 {
		parts = append(parts, fmt.Sprintf("%s; Keyward's own scopes (%s, %s) cannot be delegated and the admin API refuses such a grant: remove them from the grants in the file (a grant left with no scope, the whole grant) and import again",
			limit(scoped), oauth2.AdminScope, oauth2.IntrospectScope))
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("nothing was imported: %s", strings.Join(parts, "; and "))
}

// limit joins problems, the first 20 of them and a count of the rest.
func limit(problems []string) string {
	if len(problems) > 20 {
		problems = append(problems[:20:20], fmt.Sprintf("and %d more", len(problems)-20))
	}
	return strings.Join(problems, "; ")
}
