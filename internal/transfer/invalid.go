package transfer

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/validate"
)

// Algorithms of the items that name one.
var (
	keyAlgorithms     = []string{"RS256", "ES256"}
	signingAlgorithms = []string{"ES256", "RS256", "EdDSA"}
)

// invalid names each item of d whose values the admin API would refuse
// on create, by the rules it applies (package validate), or which the
// store could not hold: a required value missing (a NOT NULL column, so
// that no database's constraint text reaches the user), one given twice
// that must be unique (an API's name, identifier or scope; an account's
// client ID or email; a key's, secret's, signing key's or sealed value's
// ID; an organization; a user's email in any case, as the admin API's
// user import compares them; a project; a delegation), a user whose email
// is not of its organization's domain, or a scope of an account or a
// grant that no API in the file defines. Rules whose values an export of
// an earlier release may lack are not applied: an account's name and
// project, and a key's public key, are checked to be there, not for their
// form. Items without their identifier are check's, not repeated here.
func invalid(d Dump) []string {
	var bad []string
	add := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	// rule adds the refusal of a validate rule, lower-cased and without
	// its full stop, to what names the item.
	rule := func(what string, err error) {
		if err != nil {
			msg := strings.TrimSuffix(err.Error(), ".")
			add("%s: %s", what, strings.ToLower(msg[:1])+msg[1:])
		}
	}
	twice := func(seen map[string]bool, key, what string) {
		if seen[key] {
			add("%s is in the file twice", what)
		}
		seen[key] = true
	}
	q := validate.QuoteClip

	scopes := map[string]bool{}
	names, identifiers := map[string]bool{}, map[string]bool{}
	for _, a := range d.APIs {
		what := "the API " + q(a.Name)
		rule(what, validate.APIName(a.Name))
		rule(what, validate.APIIdentifier(a.Identifier))
		rule(what, validate.APIScopes(a.Scopes))
		rule(what, validate.Label("description", a.Description, validate.MaxDescriptionLength))
		rule(what, validate.TokenFormat(a.TokenFormat, true))
		twice(names, a.Name, what)
		twice(identifiers, a.Identifier, "the API identifier "+q(a.Identifier))
		for _, sc := range a.Scopes {
			if scopes[sc] {
				add("%s: the scope %s is another API's too (each scope belongs to one API)", what, q(sc))
			}
			scopes[sc] = true
		}
	}
	defined := func(what string, list []string) {
		for _, sc := range list {
			if !scopes[sc] {
				add("%s: the scope %s is defined by no API in the file", what, q(sc))
			}
		}
	}

	ids, emails := map[string]bool{}, map[string]bool{}
	for _, a := range d.Accounts {
		if a.ID == "" || a.Email == "" {
			continue // check names it
		}
		what := "the service account " + q(a.ID)
		if _, err := validate.Email(a.Email); err != nil || strings.TrimSpace(a.Email) != a.Email {
			add("%s: its email %s is not an email address", what, q(a.Email))
		}
		if a.Name == "" || a.Project == "" {
			add("%s has no name or no project", what)
		}
		rule(what, validate.Label("name", a.Name, validate.MaxDisplayNameLength))
		rule(what, validate.Label("project", a.Project, validate.MaxDisplayNameLength))
		rule(what, validate.Label("display name", a.DisplayName, validate.MaxDisplayNameLength))
		rule(what, validate.Label("description", a.Description, validate.MaxDescriptionLength))
		rule(what, validate.AuthMethods(a.AuthMethods))
		rule(what, validate.TokenFormat(a.TokenFormat, true))
		if a.TokenLifetime < time.Minute {
			add("%s: its token lifetime %s is under the admin API's least, 60 seconds", what, a.TokenLifetime)
		}
		defined(what, a.Scopes)
		twice(ids, a.ID, what)
		twice(emails, strings.ToLower(a.Email), "the service account email "+q(a.Email))
	}

	seen := map[string]bool{}
	for _, k := range d.Keys {
		if k.ID == "" {
			continue
		}
		what := "the key " + q(k.ID)
		if !slices.Contains(keyAlgorithms, k.Algorithm) {
			add("%s: its algorithm %s is none of %s", what, q(k.Algorithm), strings.Join(keyAlgorithms, ", "))
		}
		if len(k.PublicKey) == 0 {
			add("%s has no public_key", what)
		}
		if k.Origin != storage.KeyOriginGenerated && k.Origin != storage.KeyOriginUploaded {
			add("%s: its origin %s is neither %s nor %s", what, q(k.Origin), storage.KeyOriginGenerated, storage.KeyOriginUploaded)
		}
		twice(seen, k.ID, what)
	}
	seen = map[string]bool{}
	for _, sec := range d.Secrets {
		if sec.ID == "" {
			continue
		}
		what := "the secret " + q(sec.ID)
		if len(sec.Hash) == 0 {
			add("%s has no hash", what)
		}
		twice(seen, sec.ID, what)
	}
	seen = map[string]bool{}
	for _, k := range d.SigningKeys {
		what := "the signing key " + q(k.ID)
		if k.ID == "" {
			what = "a signing key"
			add("%s has no id", what)
		}
		if !slices.Contains(signingAlgorithms, k.Algorithm) {
			add("%s: its algorithm %s is none of %s", what, q(k.Algorithm), strings.Join(signingAlgorithms, ", "))
		}
		if len(k.Sealed) == 0 {
			add("%s has nothing sealed", what)
		}
		if k.ID != "" {
			twice(seen, k.ID, what)
		}
	}
	seen = map[string]bool{}
	for _, v := range d.SealedValues {
		what := "the sealed value " + q(v.Name)
		if v.Name == "" {
			add("a sealed value has no name")
		}
		if len(v.Sealed) == 0 {
			add("%s has nothing sealed", what)
		}
		twice(seen, v.Name, what)
	}

	seen = map[string]bool{}
	for _, o := range d.Orgs {
		if o.Domain == "" {
			continue
		}
		what := "the organization " + q(o.Domain)
		rule(what, validate.Domain(o.Domain))
		rule(what, validate.BlockedScopes(o.BlockedScopes))
		twice(seen, o.Domain, what)
	}
	seen = map[string]bool{}
	for _, u := range d.Users {
		if u.Email == "" {
			continue
		}
		what := "the user " + q(u.Email)
		email, err := validate.Email(u.Email)
		switch {
		case err != nil || strings.TrimSpace(u.Email) != u.Email:
			add("%s: it is not an email address", what)
			continue
		case validate.EmailDomain(email) != u.Org:
			add("%s is in %s: a user belongs to the organization of its email's domain", what, q(u.Org))
		}
		// The admin API's user import refuses an email given twice in
		// any case (it lower-cases them): a@x and A@x are one user.
		twice(seen, email, what)
	}
	seen = map[string]bool{}
	for _, p := range d.Projects {
		what := "the project " + q(p.Project)
		if p.Project == "" {
			add("a project placement in %s has no project", q(p.Org))
			continue
		}
		rule(what, validate.Label("project", p.Project, validate.MaxDisplayNameLength))
		twice(seen, p.Project, what)
	}
	seen = map[string]bool{}
	for _, g := range d.Grants {
		what := fmt.Sprintf("the delegation of %s in %s", q(g.ClientID), q(g.Org))
		if len(g.Scopes) == 0 {
			add("%s has no scope", what)
		}
		var own []string
		for _, sc := range g.Scopes {
			if oauth2.Delegable(sc) {
				own = append(own, sc)
			}
		}
		defined(what, own) // Keyward's own scopes: check names them
		twice(seen, g.Org+" "+g.ClientID, what)
	}
	return bad
}
