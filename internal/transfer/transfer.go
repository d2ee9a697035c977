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
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/keyfile"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/validate"
)

// Format identifies the dump format that Export and MarshalJSON write:
// snake_case field names throughout, as the admin API's.
const Format = "keyward-export/2"

// FormatV1 is the format of earlier releases, whose items had the Go
// names of the storage types' fields (BlockedScopes, AccountID). Dumps in
// it are still read and imported; none is written.
const FormatV1 = "keyward-export/1"

// Dump is an exported store. Its fields follow the storage types; its JSON
// (MarshalJSON, UnmarshalJSON) gives their fields snake_case names.
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

// snapshotter is a store whose reads can all see one snapshot of it
// (sqlstore.Store): Snapshot runs fn with a context whose reads do.
type snapshotter interface {
	Snapshot(ctx context.Context, fn func(context.Context) error) error
}

// Export reads everything a dump holds. From a store that can, it reads
// them all from one snapshot, so that an export taken while the server
// writes is the store at one moment: never a grant, a key or an
// introspector naming an account the file does not hold, which import
// would refuse.
func Export(ctx context.Context, s storage.Storage, now time.Time) (Dump, error) {
	sn, ok := s.(snapshotter)
	if !ok {
		return export(ctx, s, now)
	}
	var d Dump
	err := sn.Snapshot(ctx, func(ctx context.Context) error {
		var err error
		d, err = export(ctx, s, now)
		return err
	})
	return d, err
}

func export(ctx context.Context, s storage.Storage, now time.Time) (Dump, error) {
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
	// The recorded issuer is the deployment's, not the store's: the
	// store an import makes records the issuer it is started with.
	d.SealedValues = slices.DeleteFunc(d.SealedValues, func(v storage.SealedValue) bool { return v.Name == signer.IssuerName })
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

// ErrNotEmpty means the target store already holds service accounts,
// organizations or APIs (other than the built-in API a first start left).
var ErrNotEmpty = errors.New("the target store is not empty: import only into a new store (run the import before the first 'keyward serve')")

// Import writes a dump into an empty store, all or nothing: one
// transaction (storage.Storage.Load) writes every item with its audit
// event, so a refused item, a failed write or a crash part way leaves the
// store as it was, and the import can be run again. Every item is audited
// as written by "import". A dump the admin API could not have made (an
// item naming an account or an organization the file does not hold, a
// delegation of Keyward's own scopes, a required value missing or a
// unique one given twice) is refused before the transaction, naming each
// such item. Values the admin API's rules refuse now but the store holds
// are imported as they are: Warnings names them. An API the store has already with the file's
// name and identifier (the built-in one, left by an interrupted first
// start) becomes the file's version, in the same transaction, and so do
// the client-secret pepper and signing keys such a start left (any other
// sealed value the store has differently refuses the import, and so
// does a file with a pepper but no signing keys: see checkOneMasterKey).
// Under a file with signing keys but no pepper, of a release that
// exported none, such a start's pepper is removed instead, so that the
// server derives the file's from its master key, audited even when the
// start sealed it while the import ran (the import then looks again).
// Under such a file without signing keys, the pepper stays, and
// ImportWarnings says that the file's secrets may not work.
func Import(ctx context.Context, s storage.Storage, d Dump, now time.Time) error {
	_, err := ImportWarnings(ctx, s, d, now)
	return err
}

// ImportWarnings is Import, and says what about the store it imported
// into may not work as the file did (the items of the file itself that
// may not are Warnings'): an empty list when nothing.
func ImportWarnings(ctx context.Context, s storage.Storage, d Dump, now time.Time) ([]string, error) {
	var keptPepper bool
	err := importOnce(ctx, s, d, now, &keptPepper)
	if errors.Is(err, errPepperSealedMeanwhile) {
		// Looked at again, the store has the pepper, whose removal is
		// then audited.
		err = importOnce(ctx, s, d, now, &keptPepper)
	}
	if err != nil || !keptPepper {
		return nil, err
	}
	return []string{pepperKept}, nil
}

// errPepperSealedMeanwhile is Load's failure, through b.Check, when the
// pepper importOnce would remove (b.DropSealedValues) was sealed by a
// first start after importOnce looked, and so has no audit event.
var errPepperSealedMeanwhile = errors.New("nothing was imported: the target store changed while the import ran: the sealed value \"" + signer.PepperName + "\", which it did not have, was created since the import looked (a server starting on the store meanwhile, and stopped before it made its administrator, makes it): run the import again, which sees the store as it is now")

// importOnce is ImportWarnings, with one look at the store.
// It sets *keptPepper when the import keeps a first start's pepper that
// may not be the one the file's secrets were hashed with (pepperKept).
func importOnce(ctx context.Context, s storage.Storage, d Dump, now time.Time, keptPepper *bool) error {
	if d.Format != Format && d.Format != FormatV1 {
		return fmt.Errorf("unknown dump format %q, want %q", d.Format, Format)
	}
	if err := check(d, now); err != nil {
		return err
	}
	if n, err := s.CountAccounts(ctx); err != nil {
		return err
	} else if n == 1 {
		// As Load's refusal (storage.NotEmptyError) says it.
		return fmt.Errorf("%w; it holds 1 service account", ErrNotEmpty)
	} else if n > 0 {
		return fmt.Errorf("%w; it holds %d service accounts", ErrNotEmpty, n)
	}
	// Every event that says no more than the file's time shares one
	// Data, which stores only read: a map of its own for each item was
	// most of what its event held until commit. evData gives an event
	// that says more a copy.
	data := map[string]string{"exported_at": d.ExportedAt.Format(time.RFC3339)}
	ev := func(action, account string) storage.AuditEvent {
		return storage.AuditEvent{Time: now, Action: action, Outcome: storage.OutcomeSuccess, AccountID: account, Actor: "import", Data: data}
	}
	evData := func(action string, more ...string) storage.AuditEvent {
		e := ev(action, "")
		e.Data = maps.Clone(data)
		for i := 0; i+1 < len(more); i += 2 {
			e.Data[more[i]] = more[i+1]
		}
		return e
	}
	b := storage.Bulk{Accounts: d.Accounts, Keys: d.Keys, Secrets: d.Secrets, Orgs: d.Orgs, Users: d.Users,
		Projects: d.Projects, Grants: d.Grants, SigningKeys: d.SigningKeys}
	// At most one event an item, and one for the users, one for the
	// signing keys and one for a pepper removed.
	evs := make([]storage.AuditEvent, 0, len(d.APIs)+len(d.Accounts)+len(d.Keys)+len(d.Secrets)+len(d.Orgs)+len(d.Projects)+
		len(d.Grants)+len(d.SealedValues)+3)
	// A first 'keyward serve' interrupted before it made the
	// administrator leaves the built-in API as it creates it, bare, and
	// the pepper and signing keys, sealed under its master key, which the
	// file's replace. The same API stays as it is, without an event;
	// one that differs from the file's (the exported store's built-in API
	// has its introspectors, maybe another description or token format)
	// becomes the file's, audited with what it was: a store without
	// accounts has nothing that relies on what the first start made.
	for _, a := range d.APIs {
		existing, err := s.GetAPI(ctx, a.Name)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			b.APIs = append(b.APIs, a)
			evs = append(evs, ev("api.import", ""))
		case err != nil:
			return fmt.Errorf("API %s: %w", a.Name, err)
		case existing.Identifier != a.Identifier:
			return fmt.Errorf("nothing was imported: API %s: the target store already has one with identifier %s, not %s", a.Name, existing.Identifier, a.Identifier)
		default:
			// Named to Load even when it stays as it is: Load refuses
			// a store with any other API.
			b.ReplaceAPIs = append(b.ReplaceAPIs, a)
			if diff := apiDiff(existing, a); len(diff) > 0 {
				evs = append(evs, evData("api.import", "api", a.Name, "replaced", strings.Join(diff, "; ")))
			}
		}
	}
	for _, a := range d.Accounts {
		evs = append(evs, ev("account.import", a.ID))
	}
	for _, k := range d.Keys {
		evs = append(evs, ev("key.import", k.AccountID))
	}
	for _, sec := range d.Secrets {
		evs = append(evs, ev("secret.import", sec.AccountID))
	}
	for range d.Orgs {
		evs = append(evs, ev("org.import", ""))
	}
	if len(d.Users) > 0 {
		evs = append(evs, evData("user.import", "count", strconv.Itoa(len(d.Users))))
	}
	for range d.Projects {
		evs = append(evs, ev("org.project_import", ""))
	}
	for _, g := range d.Grants {
		evs = append(evs, ev("delegation.import", g.ClientID))
	}
	for _, v := range d.SealedValues {
		have, err := s.GetSealedValue(ctx, v.Name)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			b.SealedValues = append(b.SealedValues, v)
			evs = append(evs, ev("sealed_value.import", ""))
		case err != nil:
			return fmt.Errorf("sealed value %s: %w", v.Name, err)
		case !bytes.Equal(have.Sealed, v.Sealed) && v.Name != signer.PepperName:
			// Only the pepper is known to be a first start's: another
			// sealed value, added by a later release, may be what
			// the store must keep.
			return fmt.Errorf("nothing was imported: sealed value %s: the target store already has a different one", v.Name)
		case !bytes.Equal(have.Sealed, v.Sealed):
			// The pepper an interrupted first start sealed under its
			// master key: the store has no account, so no secret hashed
			// with it, and the file's signing keys replace the first
			// start's too, all to be opened with the file's master key.
			b.ReplaceSealedValues = append(b.ReplaceSealedValues, v)
			evs = append(evs, evData("sealed_value.import", "name", v.Name, "replaced", "one created at "+have.CreatedAt.Format(time.RFC3339)))
		}
	}
	sawPepper := false
	if len(d.SigningKeys) > 0 && !slices.ContainsFunc(d.SealedValues, isPepper) {
		// A file from a release that exported no pepper, whose server
		// derived it from the master key: the pepper a first start
		// sealed under its own master key goes, in Load's transaction
		// (so one sealed meanwhile goes too), and the server started
		// with the file's master key derives the file's as that release
		// did. The store has no account, so no secret hashed with it.
		b.DropSealedValues = []string{signer.PepperName}
		if have, err := s.GetSealedValue(ctx, signer.PepperName); err == nil {
			sawPepper = true
			evs = append(evs, evData("sealed_value.import", "name", signer.PepperName,
				"removed", "one created at "+have.CreatedAt.Format(time.RFC3339)+"; the file, of an earlier release, has none"))
		} else if !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("sealed value %s: %w", signer.PepperName, err)
		}
	}
	b.Check = func(keys []storage.SigningKey, values []storage.SealedValue) error {
		if len(b.DropSealedValues) > 0 && !sawPepper && slices.ContainsFunc(values, isPepper) {
			// Its removal would go unaudited: Import looks again.
			return errPepperSealedMeanwhile
		}
		*keptPepper = len(d.Secrets) > 0 && len(d.SigningKeys) == 0 && !slices.ContainsFunc(d.SealedValues, isPepper) && slices.ContainsFunc(values, isPepper)
		return checkOneMasterKey(d, b, keys)
	}
	if len(d.SigningKeys) > 0 {
		evs = append(evs, evData("signing_key.import", "count", strconv.Itoa(len(d.SigningKeys))))
	}
	err := s.Load(ctx, b, evs)
	if errors.Is(err, errPepperSealedMeanwhile) {
		return errPepperSealedMeanwhile
	} else if ne, ok := errors.AsType[*storage.NotEmptyError](err); ok {
		return fmt.Errorf("%w; it holds %s", ErrNotEmpty, ne.Holds)
	} else if le, ok := errors.AsType[*storage.LoadError](err); ok {
		if what := changed(b, le); what != "" {
			return fmt.Errorf("nothing was imported: the target store changed while the import ran: %s since the import looked (a server starting on the store meanwhile, and stopped before it made its administrator, makes them): run the import again, which sees the store as it is now: %w", what, err)
		}
		return &WriteError{Kind: le.Kind, ID: le.ID, Err: err}
	} else if ctxErr := ctx.Err(); err != nil && (ctxErr != nil && errors.Is(err, ctxErr) || errors.Is(err, storage.ErrCommitUnknown)) {
		// Ended maybe as the store committed (a cancel, or a COMMIT
		// whose answer was lost): the store, read again, tells. A lost
		// COMMIT may yet be carried out after a read that finds it not.
		switch l := loaded(s, b, evs); {
		case l == loadedYes:
			return nil
		case l == loadedUnknown || len(evs) > 0 && errors.Is(err, storage.ErrCommitUnknown):
			return fmt.Errorf("%w (%w)", ErrOutcomeUnknown, err)
		}
		return fmt.Errorf("nothing was imported: %w", err)
	} else if err != nil {
		return fmt.Errorf("nothing was imported: %w", err)
	}
	return nil
}

// ErrOutcomeUnknown is Import's error when its context ended while the
// store wrote the file (a cancel that may have landed during the commit)
// and the store could not be read again to tell whether it committed; or
// when the store's commit failed as storage.ErrCommitUnknown and the
// store, read again, did not show the file imported.
var ErrOutcomeUnknown = errors.New("whether the file was imported is not known")

// What the store holds after Load ended with its context: loaded.
const (
	loadedUnknown = iota
	loadedNo
	loadedYes
)

// loaded tells whether Load committed b and evs, which it writes in one
// transaction, from one item of b that was not in the store before (an
// account, an organization, a signing key or an added API) read again on
// a context of its own: Import's may be cancelled. Without evs, b changes
// nothing (an empty file, or one with only the API the store has): then
// loadedNo is true either way. loadedUnknown when the store cannot be
// read, or b has only items the store may have had before (a replaced
// API, a sealed value).
func loaded(s storage.Storage, b storage.Bulk, evs []storage.AuditEvent) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	found := func(err error) int {
		switch {
		case err == nil:
			return loadedYes
		case errors.Is(err, storage.ErrNotFound):
			return loadedNo
		}
		return loadedUnknown
	}
	switch {
	case len(b.Accounts) > 0:
		_, err := s.GetAccount(ctx, b.Accounts[0].ID)
		return found(err)
	case len(b.Orgs) > 0:
		_, err := s.GetOrg(ctx, b.Orgs[0].Domain)
		return found(err)
	case len(b.SigningKeys) > 0:
		// They replace the store's, which have other IDs.
		keys, err := s.ListSigningKeys(ctx)
		if err != nil {
			return loadedUnknown
		}
		if slices.ContainsFunc(keys, func(k storage.SigningKey) bool { return k.ID == b.SigningKeys[0].ID }) {
			return loadedYes
		}
		return loadedNo
	case len(b.APIs) > 0:
		// Last: a first start on the store meanwhile creates the
		// built-in API too.
		_, err := s.GetAPI(ctx, b.APIs[0].Name)
		return found(err)
	case len(evs) == 0:
		return loadedNo
	}
	return loadedUnknown
}

// changed says what le, Load's failure to write an item of b, shows to
// have changed in the store since Import looked at it and chose to add or
// replace the item (outside Load's transaction): an API or a sealed value
// it added was created meanwhile, or one it replaced was removed or
// changed. It is empty for any other failure.
func changed(b storage.Bulk, le *storage.LoadError) string {
	api := func(as []storage.API) bool {
		return slices.ContainsFunc(as, func(a storage.API) bool { return a.Name == le.ID })
	}
	value := func(vs []storage.SealedValue) bool {
		return slices.ContainsFunc(vs, func(v storage.SealedValue) bool { return v.Name == le.ID })
	}
	exists, gone := errors.Is(le.Err, storage.ErrAlreadyExists), errors.Is(le.Err, storage.ErrNotFound)
	q := validate.QuoteClip
	switch {
	case le.Kind == "API" && exists && api(b.APIs):
		return fmt.Sprintf("the API %s, which it did not have, was created", q(le.ID))
	case le.Kind == "API" && gone && api(b.ReplaceAPIs):
		return fmt.Sprintf("the API %s, which it had, was removed or given another identifier", q(le.ID))
	case le.Kind == "sealed value" && exists && value(b.SealedValues):
		return fmt.Sprintf("the sealed value %s, which it did not have, was created", q(le.ID))
	case le.Kind == "sealed value" && gone && value(b.ReplaceSealedValues):
		return fmt.Sprintf("the sealed value %s, which it had, was removed", q(le.ID))
	}
	return ""
}

// checkOneMasterKey refuses an import that would leave the store with
// values sealed under two master keys, which no one key opens: the file's
// pepper beside the signing keys a first start sealed, for a file without
// signing keys. (The pepper such a start sealed, under a file with
// signing keys but no pepper, from a release that exported none, is
// dropped: b.DropSealedValues.) b is what Import loads; Load calls it (as b.Check) with the
// store's signing keys and sealed values read in its transaction, so
// that a first start sealing them while the import runs is seen.
func checkOneMasterKey(d Dump, b storage.Bulk, keys []storage.SigningKey) error {
	const why = "sealed under its master key, and no one master key would open the store: import into a store no server has started on"
	if len(d.SigningKeys) == 0 && len(b.SealedValues)+len(b.ReplaceSealedValues) > 0 && len(keys) > 0 {
		return fmt.Errorf("the file has a client-secret pepper but no signing keys, and the target store has the signing keys a server started on it %s", why)
	}
	return nil
}

// pepperKept is ImportWarnings' warning for a file of a release that
// exported no pepper, with client secrets but no signing keys, imported
// over a first start that sealed a pepper, which stays: derived from
// that start's master key, it is the one the file's secrets were hashed
// with only if that key was the exported store's.
const pepperKept = "the file, of a release that exported no client-secret pepper, has client secrets but no signing keys, and the target store keeps the pepper a server started on it sealed, derived from that server's master key: the imported secrets work only if that key is the exported store's; if it is not, import the file into a new store (a new data directory or database) instead, and start it with the exported store's master key"

// isPepper tells whether v is the client-secret pepper.
func isPepper(v storage.SealedValue) bool { return v.Name == signer.PepperName }

// WriteError is Import's error when the store failed to write an item of
// a file check passed. Its message names the item and says what is known
// of why in the store's terms (its identifier taken, what it names
// missing), never the database's own text (a constraint, SQLSTATE or
// driver message), which stays in Err, the cause, for errors.Is and
// errors.As and for whoever logs the chain.
type WriteError struct {
	Kind string // the kind of item: "key", "service account", …
	ID   string // the item, or empty for the users, written together
	Err  error
}

func (e *WriteError) Error() string {
	item := e.Kind
	if e.ID != "" {
		item += " " + validate.QuoteClip(e.ID)
	}
	var why string
	switch {
	case errors.Is(e.Err, storage.ErrAlreadyExists):
		why = "its identifier, or another value that must be unique, is taken"
	case errors.Is(e.Err, storage.ErrNotFound):
		why = "something it names is not in the store"
	case errors.Is(e.Err, storage.ErrScopesHeld), errors.Is(e.Err, storage.ErrUnknownScope):
		why = "the scopes it names are not as the file's APIs define them"
	default:
		why = "the store refused it, though the file passed import's checks: run the import again, and if it fails the same way, report it with the file's item"
	}
	return fmt.Sprintf("nothing was imported: the import failed writing %s: %s", item, why)
}

// Unwrap returns the store's error.
func (e *WriteError) Unwrap() error { return e.Err }

// apiDiff describes how the API had differs from want, field by field;
// nothing when they are the same.
func apiDiff(had, want storage.API) []string {
	var out []string
	if had.Description != want.Description {
		out = append(out, fmt.Sprintf("description %q, not %q", had.Description, want.Description))
	}
	if had.TokenFormat != want.TokenFormat {
		out = append(out, fmt.Sprintf("token format %q, not %q", had.TokenFormat, want.TokenFormat))
	}
	if !slices.Equal(had.Scopes, want.Scopes) {
		out = append(out, fmt.Sprintf("scopes %q, not %q", had.Scopes, want.Scopes))
	}
	if !slices.Equal(had.Introspectors, want.Introspectors) {
		out = append(out, fmt.Sprintf("introspectors %q, not %q", had.Introspectors, want.Introspectors))
	}
	if !had.CreatedAt.Equal(want.CreatedAt) {
		out = append(out, fmt.Sprintf("created at %s, not %s", had.CreatedAt.Format(time.RFC3339), want.CreatedAt.Format(time.RFC3339)))
	}
	return out
}

// check refuses a dump the store could not hold or Keyward could not use,
// naming each item at fault, so an edited file cannot bring one in; an
// export of a store, even one made before the admin API's rules of today,
// passes. The target store has no accounts (Import checks),
// nor, then, anything that names one, so the dump's accounts and
// organizations are the only ones its items can name:
//   - a key or a secret of an account not in the file, a user or a project
//     placement in an organization not in the file, an API whose
//     introspector is not an account in the file, or a delegation grant in
//     an organization not in the file: the store would refuse the first
//     ones halfway, and the last two would name nothing;
//   - a delegation grant whose client ID is not the ID of an account in
//     the file: it would authorize nothing, yet be listed and count as a
//     holder of its scopes;
//   - a delegation grant carrying a scope the admin API does not delegate
//     (oauth2.Delegable);
//   - an item invalid names as bad: a required value missing, a unique
//     one given twice (what the admin API's rules refuse on create, but
//     the store holds and the server uses, are Warnings, not refusals);
//   - an account without its client ID or email, a key or a secret without
//     its ID, an organization without its domain, a user without its
//     email: the store would hold it, yet list (and export) no account
//     with an empty ID, nor user with an empty email, and the admin API
//     could name none of them;
//   - a service-account key that is an RSA key of more than
//     keyfile.MaxRSABits bits, which UploadKey refuses: verifying a
//     signature with it would take time that grows with the square of its
//     size, for anyone who sends an assertion naming its account.
func check(d Dump, now time.Time) error {
	ids := make(map[string]bool, len(d.Accounts))
	for _, a := range d.Accounts {
		ids[a.ID] = true
	}
	orgs := make(map[string]bool, len(d.Orgs))
	for _, o := range d.Orgs {
		orgs[o.Domain] = true
	}
	var dangling, scoped, orphans, unnamed, oversized []string
	q := validate.QuoteClip // a value from the file, quoted and clipped
	for _, a := range d.Accounts {
		switch {
		case a.ID == "":
			unnamed = append(unnamed, fmt.Sprintf("the service account %s has no client_id", q(a.Email)))
		case a.Email == "":
			unnamed = append(unnamed, fmt.Sprintf("the service account %s has no email", q(a.ID)))
		}
	}
	for _, k := range d.Keys {
		if k.ID == "" {
			unnamed = append(unnamed, fmt.Sprintf("a key of %s has no key_id", q(k.AccountID)))
		}
		if pub, err := x509.ParsePKIXPublicKey(k.PublicKey); err == nil {
			if err := keyfile.CheckRSASize(pub); err != nil {
				oversized = append(oversized, fmt.Sprintf("the key %s of %s: %s", q(k.ID), q(k.AccountID), err))
			}
		}
	}
	for _, sec := range d.Secrets {
		if sec.ID == "" {
			unnamed = append(unnamed, fmt.Sprintf("a secret of %s has no secret_id", q(sec.AccountID)))
		}
	}
	for _, o := range d.Orgs {
		if o.Domain == "" {
			unnamed = append(unnamed, "an organization has no domain")
		}
	}
	for _, u := range d.Users {
		if u.Email == "" {
			unnamed = append(unnamed, fmt.Sprintf("a user of %s has no email", q(u.Org)))
		}
	}
	bad, _ := invalid(d, "", now)
	for _, a := range d.APIs {
		for _, id := range a.Introspectors {
			if !ids[id] {
				dangling = append(dangling, fmt.Sprintf("the introspector %s of API %s is no service account in the file", q(id), q(a.Name)))
			}
		}
	}
	for _, k := range d.Keys {
		if !ids[k.AccountID] {
			dangling = append(dangling, fmt.Sprintf("the key %s is of %s, no service account in the file", q(k.ID), q(k.AccountID)))
		}
	}
	for _, sec := range d.Secrets {
		if !ids[sec.AccountID] {
			dangling = append(dangling, fmt.Sprintf("the secret %s is of %s, no service account in the file", q(sec.ID), q(sec.AccountID)))
		}
	}
	for _, u := range d.Users {
		if !orgs[u.Org] {
			dangling = append(dangling, fmt.Sprintf("the user %s is in %s, no organization in the file", q(u.Email), q(u.Org)))
		}
	}
	for _, p := range d.Projects {
		if !orgs[p.Org] {
			dangling = append(dangling, fmt.Sprintf("the project %s is placed in %s, no organization in the file", q(p.Project), q(p.Org)))
		}
	}
	for _, g := range d.Grants {
		if !orgs[g.Org] {
			dangling = append(dangling, fmt.Sprintf("the delegation of %s in %s is in no organization in the file", q(g.ClientID), q(g.Org)))
		}
		if !ids[g.ClientID] {
			orphans = append(orphans, fmt.Sprintf("the delegation of %s in %s names no service account in the file", q(g.ClientID), q(g.Org)))
		}
		for _, sc := range g.Scopes {
			if !oauth2.Delegable(sc) {
				scoped = append(scoped, fmt.Sprintf("the delegation of %s in %s carries %s", q(g.ClientID), q(g.Org), sc))
			}
		}
	}
	var parts []string
	if len(unnamed) > 0 {
		parts = append(parts, fmt.Sprintf("%s; the admin API makes no item without its identifier, and the store could not list nor export one: give each its identifier, or remove the item, and import again",
			limit(unnamed)))
	}
	if len(bad) > 0 {
		parts = append(parts, fmt.Sprintf("%s; the store could not hold it, or Keyward could not use it: correct each, or remove the item, and import again",
			limit(bad)))
	}
	if len(dangling) > 0 {
		parts = append(parts, fmt.Sprintf("%s; the target store has no accounts or organizations yet, so what an item names must be in the file: add the accounts and organizations named, or remove the items, and import again",
			limit(dangling)))
	}
	if len(orphans) > 0 {
		parts = append(parts, fmt.Sprintf("%s; a grant is made to the numeric client ID of an existing service account: remove these grants from the file, or add their accounts, and import again",
			limit(orphans)))
	}
	if len(scoped) > 0 {
		parts = append(parts, fmt.Sprintf("%s; Keyward's own scopes (%s, %s) cannot be delegated and the admin API refuses such a grant: remove them from the grants in the file (a grant left with no scope, the whole grant) and import again",
			limit(scoped), oauth2.AdminScope, oauth2.IntrospectScope))
	}
	if len(oversized) > 0 {
		parts = append(parts, fmt.Sprintf("%s; the admin API refuses such a key, since verifying a signature with it takes too long: remove these keys from the file (their holders can upload keys of %d to %d bits, or EC P-256) and import again",
			limit(oversized), keyfile.MinRSABits, keyfile.MaxRSABits))
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("nothing was imported: %s", strings.Join(parts, "; and "))
}

// Warnings names the items of d that Import brings in although the admin
// API would refuse them on create now (an email, a domain, a label or a
// scope of a form its rules refuse, a scope no API in the file defines, …),
// each with why, ending "it is imported as it is": a store made before a
// rule, or with a setting the rules do not allow, holds such items, and its
// export must import. accountDomain is the --account-domain of the
// server that will use the store: an organization under it is named. now
// is the time of the import: a key whose certificate is not valid yet then
// is named. Nothing when there are none, and nothing for a file with an
// item Import refuses as bad (invalid), which imports nothing: a value
// refused was also named as imported as it is (a name with a NUL is one
// the admin API's rules refuse too).
func Warnings(d Dump, accountDomain string, now time.Time) []string {
	bad, warnings := invalid(d, accountDomain, now)
	if len(bad) > 0 {
		return nil
	}
	return warnings
}

// limit joins problems, the first 20 of them and a count of the rest.
func limit(problems []string) string {
	if len(problems) > 20 {
		problems = append(problems[:20:20], fmt.Sprintf("and %d more", len(problems)-20))
	}
	return strings.Join(problems, "; ")
}
