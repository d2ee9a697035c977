package clientauth

import (
	"context"
	"strings"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// AccountCache is what a Directory that keeps accounts in memory may also
// offer (the storage cache does): the account a name (an email, else a
// numeric ID) names, if memory holds it, without loading it.
type AccountCache interface {
	CachedAccount(name string) (storage.Account, bool)
}

// Accounts finds accounts by numeric ID or by email.
type Accounts interface {
	GetAccount(ctx context.Context, id string) (storage.Account, error)
	GetAccountByEmail(ctx context.Context, email string) (storage.Account, error)
}

// LookupAccount finds the account a name names: its email if it has an
// @, else its numeric ID. Errors are d's, storage.ErrNotFound among them.
func LookupAccount(ctx context.Context, d Accounts, name string) (storage.Account, error) {
	if strings.Contains(name, "@") {
		return d.GetAccountByEmail(ctx, name)
	}
	return d.GetAccount(ctx, name)
}

// Principal is the account a request names, by its email or its numeric
// ID (a client_id, or an assertion's iss), as far as it is known yet.
//
// Client authentication and the JWT-bearer grant throttle failures under
// its Key: the account's ID when they know the account, else the name as
// sent, and the ID again once a lookup finds it, so a guesser gains
// nothing by switching between email and ID. The ID comes from memory
// when it is there (Recall, the cached path of the lookup, which it then
// replaces); otherwise the name as sent is checked first, and the ID once
// Resolve finds it.
type Principal struct {
	Name    string          // as sent
	Account storage.Account // when Known
	Known   bool
}

// Recall returns the principal name names, its account known if mem holds
// it, without loading it. mem may be nil.
func Recall(mem AccountCache, name string) Principal {
	p := Principal{Name: name}
	if mem != nil && name != "" {
		p.Account, p.Known = mem.CachedAccount(name)
	}
	return p
}

// Key is the per-client throttle key: the account's ID once the account is
// known, else the name as sent.
func (p *Principal) Key() string {
	if p.Known {
		return p.Account.ID
	}
	return p.Name
}

// Resolve makes p's account known, finding it with lookup unless memory
// gave it, and checks throttled under the account's ID when that is not
// the name already checked (an email, or a name missed in memory). It
// returns lookup's error as it is, or throttled's answer.
func (p *Principal) Resolve(ctx context.Context, source string,
	lookup func(ctx context.Context, name string) (storage.Account, error),
	throttled func(source, client string) *oauth2.Error) error {
	if p.Known {
		return nil
	}
	acct, err := lookup(ctx, p.Name)
	if err != nil {
		return err
	}
	p.Account, p.Known = acct, true
	if acct.ID != p.Name {
		if terr := throttled(source, acct.ID); terr != nil {
			return terr
		}
	}
	return nil
}
