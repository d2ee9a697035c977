package transfer

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/ascii"
	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/keyfile"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/validate"
)

// Algorithms of the items that name one.
var (
	keyAlgorithms     = []string{"RS256", "ES256"}
	signingAlgorithms = []string{"ES256", "RS256", "EdDSA"}
)

// invalid names each item of d that the store could not hold, or
// Keyward could not use, as bad: a required value missing (a NOT NULL
// column, so that no database's constraint text reaches the user; a key's
// public key, algorithm and origin, which verifying with it reads), a
// value given twice that the store keeps unique (an API's name, identifier
// or scope; an account's client ID or email; a key's, secret's, signing
// key's or sealed value's ID; an organization; a user's email; a project;
// a delegation), a time the store would give back as none (the first
// microsecond of 1970), a token lifetime not of whole seconds (the store
// keeps seconds), text with a NUL character or bytes that are not UTF-8
// in any of an item's fields (unheld: PostgreSQL's text holds neither,
// and SQLite's lookups of an email's domain, by migration 00011's index,
// stop at a NUL; refused on either backend, so that a file imports into
// both or neither). It names as warnings the items whose values the
// admin API would refuse on create now, by the rules it applies (package
// validate), but which the store holds and the server uses as they are: a
// store made before a rule, or with a setting the rules do not allow (an
// administrator's email under --account-domain "iam.example.com."), holds
// such items, and its export must import. These are an email, a domain,
// a name or label, a scope's form, a token lifetime or format, an auth
// method (the server uses the methods it knows), an account's or a
// grant's scope no API in the file defines (an API deleted before the
// store tracked holders), a grant without scopes, an account or a user
// email given twice in different cases, a user not of its organization's
// domain, a TLS binding the admin API would refuse (more than one field,
// which the server matches by the first only; a subject DN, URI or IP
// that does not parse), a key the rules of an upload refuse at now (keyProblem), a secret's
// hash not of the keyed SHA-256's size, an account email not of its name
// and project, an organization under
// accountDomain (if not empty) as the admin API refuses one. Items without
// their identifier are check's, not repeated here.
func invalid(d Dump, accountDomain string, now time.Time) (bad, warnings []string) {
	add := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	warn := func(format string, args ...any) {
		warnings = append(warnings, fmt.Sprintf(format, args...)+"; it is imported as it is")
	}
	// rule warns of the refusal of a validate rule, lower-cased and
	// without its full stop, naming the item.
	rule := func(what string, err error) {
		if err != nil {
			msg := strings.TrimSuffix(err.Error(), ".")
			warn("%s: %s, by the admin API's rules now", what, strings.ToLower(msg[:1])+msg[1:])
		}
	}
	twice := func(seen map[string]bool, key, what string) {
		if seen[key] {
			add("%s is in the file twice", what)
		}
		seen[key] = true
	}
	// twiceFolded is twice for an email, and warns of one given again in
	// another case: the admin API compares them case-blind (a@x and A@x
	// are one user), the store exactly.
	twiceFolded := func(exact, folded map[string]bool, email, what string) {
		lower := strings.ToLower(email)
		if folded[lower] && !exact[email] {
			warn("%s is in the file twice in different cases, which the admin API would refuse now", what)
		}
		folded[lower] = true
		twice(exact, email, what)
	}
	// held refuses a time the store would give back as none: it keeps a
	// time as microseconds since 1970, and none as 0, so the first
	// microsecond of 1970 would come back as no time at all (a key or a
	// secret expiring then would never expire; a signing key retired then
	// would not be).
	held := func(what, field string, t time.Time) {
		if !t.IsZero() && t.UnixMicro() == 0 {
			add("%s: its %s %s is the one time the store holds as none", what, field, t.UTC().Format(time.RFC3339Nano))
		}
	}
	q := validate.QuoteClip
	// text refuses each of values, field's, that the store could not
	// hold (unheld).
	text := func(what, field string, values ...string) {
		for _, v := range values {
			if p := unheld(v); p != "" {
				add("%s: its %s %s %s", what, field, q(v), p)
			}
		}
	}

	scopes := map[string]bool{}
	names, identifiers := map[string]bool{}, map[string]bool{}
	near := map[string]string{} // oauth2.APIKey → identifier
	for _, a := range d.APIs {
		what := "the API " + q(a.Name)
		held(what, "created_at", a.CreatedAt)
		text(what, "name", a.Name)
		text(what, "identifier", a.Identifier)
		text(what, "description", a.Description)
		text(what, "scope", a.Scopes...)
		text(what, "token_format", a.TokenFormat)
		text(what, "introspector", a.Introspectors...)
		rule(what, validate.APIName(a.Name))
		rule(what, validate.APIIdentifier(a.Identifier))
		rule(what, validate.APIScopes(a.Scopes))
		rule(what, validate.Label("description", a.Description, validate.MaxDescriptionLength))
		rule(what, validate.TokenFormat(a.TokenFormat, true))
		twice(names, a.Name, what)
		twice(identifiers, a.Identifier, "the API identifier "+q(a.Identifier))
		if other, ok := near[oauth2.APIKey(a.Identifier)]; ok && other != a.Identifier {
			// As admin.Service.CreateAPI refuses it.
			warn("%s: its identifier %s differs from the API identifier %s only in the case of its scheme or host or in a trailing slash: APIs that take service accounts' self-signed JWTs take those for either, and the admin API would refuse it now",
				what, q(a.Identifier), q(other))
		} else if !ok {
			near[oauth2.APIKey(a.Identifier)] = a.Identifier
		}
		own := map[string]bool{}
		for _, sc := range a.Scopes {
			switch {
			case own[sc]:
				add("%s: the scope %s is listed twice", what, q(sc))
			case scopes[sc]:
				add("%s: the scope %s is another API's too (each scope belongs to one API)", what, q(sc))
			}
			own[sc], scopes[sc] = true, true
		}
	}
	defined := func(what string, list []string) {
		for _, sc := range list {
			if !scopes[sc] {
				warn("%s: the scope %s is defined by no API in the file", what, q(sc))
			}
		}
	}

	ids, emails, folded := map[string]bool{}, map[string]bool{}, map[string]bool{}
	emailDomains := map[string]bool{} // lower case
	for _, a := range d.Accounts {
		if a.ID == "" || a.Email == "" {
			continue // check names it
		}
		what := "the service account " + q(a.ID)
		held(what, "tokens_revoked_before", a.TokensRevokedBefore)
		held(what, "cert_tokens_revoked_before", a.CertTokensRevokedBefore)
		held(what, "created_at", a.CreatedAt)
		held(what, "updated_at", a.UpdatedAt)
		text(what, "client_id", a.ID)
		text(what, "name", a.Name)
		text(what, "project", a.Project)
		text(what, "display_name", a.DisplayName)
		text(what, "description", a.Description)
		text(what, "scope", a.Scopes...)
		text(what, "auth method", a.AuthMethods...)
		text(what, "tls_client_auth_subject_dn", a.TLS.SubjectDN)
		text(what, "tls_client_auth_san_dns", a.TLS.SANDNS)
		text(what, "tls_client_auth_san_uri", a.TLS.SANURI)
		text(what, "tls_client_auth_san_ip", a.TLS.SANIP)
		text(what, "tls_client_auth_san_email", a.TLS.SANEmail)
		text(what, "token_format", a.TokenFormat)
		if unheld(a.Email) != "" {
			// PostgreSQL refuses it; SQLite holds it, but its domain
			// index takes the email's domain from a NUL on (length()
			// stops at it: "\x00@nul.example"), so that an organization
			// at its domain is not refused.
			text(what, "email", a.Email)
		} else if _, err := validate.Email(a.Email); err != nil || strings.TrimSpace(a.Email) != a.Email {
			warn("%s: its email %s is not one the admin API would accept now", what, q(a.Email))
		}
		if a.Name == "" || a.Project == "" {
			warn("%s has no name or no project", what)
		} else if local, domain, _ := strings.Cut(a.Email, "@"); local != a.Name || !strings.HasPrefix(domain, a.Project+".") {
			// The admin API makes it NAME@PROJECT.<account domain>, and
			// neither changes: the project's placement (internal to an
			// organization) applies by the project, while APIs see the
			// email, which would name another.
			warn("%s: its email %s is not of its name %s and project %s (NAME@PROJECT.<account domain>), as the admin API makes it; the project's placement applies by its project, not by its email's",
				what, q(a.Email), q(a.Name), q(a.Project))
		}
		// As admin.Service.CreateAccount refuses them (none is warned of
		// above).
		if a.Name != "" && !validate.Name(a.Name) {
			warn("%s: the account name %s must be %s, by the admin API's rules now", what, q(a.Name), validate.NameRule)
		}
		if a.Project != "" && !validate.Name(a.Project) {
			warn("%s: the project %s must be %s, by the admin API's rules now", what, q(a.Project), validate.NameRule)
		}
		rule(what, validate.Label("display name", a.DisplayName, validate.MaxDisplayNameLength))
		rule(what, validate.Label("description", a.Description, validate.MaxDescriptionLength))
		rule(what, validate.AuthMethods(a.AuthMethods))
		if _, err := clientauth.NormalizeBinding(a.TLS); err != nil {
			rule(what+": its tls_binding", err)
		}
		rule(what, validate.TokenFormat(a.TokenFormat, true))
		if a.TokenLifetime%time.Second != 0 {
			// A lifetime under a second would be held as none, which
			// gives the longest.
			add("%s: its token_lifetime_ns %d is not whole seconds, as the store keeps a token lifetime", what, int64(a.TokenLifetime))
		}
		if a.TokenLifetime < time.Minute {
			warn("%s: its token lifetime %s is under the admin API's least, 60 seconds", what, a.TokenLifetime)
		}
		defined(what, a.Scopes)
		twice(ids, a.ID, what)
		twiceFolded(emails, folded, a.Email, "the service account email "+q(a.Email))
		// Without a final dot: an account domain written with one names
		// the same domain. In ASCII lower case, as AccountEmailAt, by
		// which the admin API refuses such an organization, compares
		// (İ.example is not i.example).
		emailDomains[strings.TrimSuffix(ascii.Lower(validate.EmailDomain(a.Email)), ".")] = true
	}

	seen := map[string]bool{}
	for _, k := range d.Keys {
		if k.ID == "" {
			continue
		}
		what := "the key " + q(k.ID)
		text(what, "key_id", k.ID)
		text(what, "account_id", k.AccountID)
		text(what, "algorithm", k.Algorithm)
		text(what, "origin", k.Origin)
		held(what, "expires_at", k.ExpiresAt)
		held(what, "created_at", k.CreatedAt)
		// An algorithm or origin the store could not hold is said to be
		// so above, once: not also to be none of those Keyward knows.
		if !slices.Contains(keyAlgorithms, k.Algorithm) && unheld(k.Algorithm) == "" {
			add("%s: its algorithm %s is none of %s", what, q(k.Algorithm), strings.Join(keyAlgorithms, ", "))
		}
		if len(k.PublicKey) == 0 {
			add("%s has no public_key", what)
		} else if slices.Contains(keyAlgorithms, k.Algorithm) {
			if err := keyProblem(k, now); err != nil {
				warn("%s: %s", what, err)
			}
		}
		if k.Origin != storage.KeyOriginGenerated && k.Origin != storage.KeyOriginUploaded && unheld(k.Origin) == "" {
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
		text(what, "secret_id", sec.ID)
		text(what, "account_id", sec.AccountID)
		text(what, "hint", sec.Hint)
		held(what, "expires_at", sec.ExpiresAt)
		held(what, "created_at", sec.CreatedAt)
		held(what, "last_used_at", sec.LastUsedAt)
		if len(sec.Hash) == 0 {
			add("%s has no hash", what)
		} else if len(sec.Hash) != sha256.Size {
			warn("%s: its hash is %d bytes, not the %d of the keyed SHA-256 Keyward stores, so no secret matches it", what, len(sec.Hash), sha256.Size)
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
		text(what, "kid", k.ID)
		text(what, "algorithm", k.Algorithm)
		held(what, "created_at", k.CreatedAt)
		held(what, "activated_at", k.ActivatedAt)
		held(what, "retired_at", k.RetiredAt)
		if !slices.Contains(signingAlgorithms, k.Algorithm) && unheld(k.Algorithm) == "" { // as a key's
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
		text(what, "name", v.Name)
		held(what, "created_at", v.CreatedAt)
		if v.Name == "" {
			add("a sealed value has no name")
		}
		if len(v.Sealed) == 0 {
			add("%s has nothing sealed", what)
		}
		if v.Name != "" {
			twice(seen, v.Name, what)
		}
	}

	seen = map[string]bool{}
	for _, o := range d.Orgs {
		if o.Domain == "" {
			continue
		}
		what := "the organization " + q(o.Domain)
		text(what, "domain", o.Domain)
		text(what, "blocked scope", o.BlockedScopes...)
		held(what, "created_at", o.CreatedAt)
		rule(what, validate.Domain(o.Domain))
		// As admin.Service.CreateOrg refuses it (RFC 9700 §4.15).
		if validate.UnderAccountDomain(o.Domain, accountDomain) {
			warn("%s is under the account domain %s, whose addresses are service accounts' emails: its users could have the email of a service account, and the admin API would refuse it now",
				what, q(accountDomain))
		} else if emailDomains[strings.TrimSuffix(strings.ToLower(o.Domain), ".")] { // lowered as CreateOrg lowers it
			// Accounts made under an earlier account domain keep their
			// emails under it; CreateOrg refuses their domains too.
			warn("%s is the domain of service accounts' emails in the file: its users could have the email of a service account, and the admin API would refuse it now",
				what)
		}
		rule(what, validate.BlockedScopes(o.BlockedScopes))
		twice(seen, o.Domain, what)
	}
	seen, folded = map[string]bool{}, map[string]bool{}
	for _, u := range d.Users {
		if u.Email == "" {
			continue
		}
		what := "the user " + q(u.Email)
		held(what, "created_at", u.CreatedAt)
		text(what, "organization", u.Org)
		email, err := validate.Email(u.Email)
		switch {
		case unheld(u.Email) != "":
			add("%s: its email %s", what, unheld(u.Email)) // as an account's
		case err != nil || strings.TrimSpace(u.Email) != u.Email:
			warn("%s: it is not an email address the admin API would accept now", what)
		case validate.EmailDomain(email) != u.Org:
			warn("%s is in %s: the admin API puts a user in the organization of its email's domain", what, q(u.Org))
		}
		twiceFolded(seen, folded, u.Email, what)
	}
	seen = map[string]bool{}
	for _, p := range d.Projects {
		what := "the project " + q(p.Project)
		if p.Project == "" {
			add("a project placement in %s has no project", q(p.Org))
			continue
		}
		text(what, "name", p.Project)
		text(what, "organization", p.Org)
		if !validate.Name(p.Project) { // as admin.Service.PlaceProjectIf refuses it
			warn("%s must be %s, by the admin API's rules now", what, validate.NameRule)
		}
		twice(seen, p.Project, what)
	}
	seen = map[string]bool{}
	for _, g := range d.Grants {
		what := fmt.Sprintf("the delegation of %s in %s", q(g.ClientID), q(g.Org))
		text(what, "client_id", g.ClientID)
		text(what, "organization", g.Org)
		text(what, "scope", g.Scopes...)
		held(what, "created_at", g.CreatedAt)
		if len(g.Scopes) == 0 {
			warn("%s has no scope", what)
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
	return bad, warnings
}

// unheld says what of s a store could not hold as text, "holds a NUL
// character" or "is not UTF-8 text", or "" when it holds s: PostgreSQL's
// text holds neither, and refuses to write it. SQLite holds both, but
// import refuses them on either backend, before writing anything, so that
// a file imports into both or into neither.
func unheld(s string) string {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return "holds a NUL character"
	case !utf8.ValidString(s):
		return "is not UTF-8 text"
	}
	return ""
}

// keyProblem says why the admin API would not register k's public key
// now, by the rules of an upload (sakey.ParsePublic, keyfile.Algorithm:
// RSA of 2048 to 8192 bits with a usable exponent, or EC P-256), or why
// it verifies nothing (a public key of another algorithm than k's), or
// that its certificate, served at the account's x509 URL, is not of it,
// or that its certificate is not valid yet at now (validate.NotYetValid),
// while the key is usable at once; nil when none of these is so.
func keyProblem(k storage.Key, now time.Time) error {
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		return errors.New("its public_key is no DER SubjectPublicKeyInfo Keyward can read, so no assertion verifies with it")
	}
	alg, err := keyfile.Algorithm(pub)
	switch {
	case err != nil:
		return fmt.Errorf("the admin API would refuse it now: %s", strings.TrimSuffix(err.Error(), "."))
	case string(alg) != k.Algorithm:
		return fmt.Errorf("its public_key is a key for %s, not for its algorithm %s, so no assertion verifies with it", alg, k.Algorithm)
	}
	if k.Certificate == nil {
		return nil
	}
	cert, err := x509.ParseCertificate(k.Certificate)
	if err != nil {
		return errors.New("its certificate is no DER X.509 certificate Keyward can read")
	}
	if p, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !p.Equal(cert.PublicKey) {
		return errors.New("its certificate is of another key than its public_key")
	}
	if validate.NotYetValid(cert.NotBefore, now) {
		return fmt.Errorf("its certificate is not valid until %s, yet the key is usable at once (for assertions and self_signed_tls_client_auth); the admin API would refuse its upload now",
			cert.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}
