package admin

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// Optimistic concurrency for the admin API: GET of an account, an API, an
// organization, a key or a secret, the POST that creates one, the PATCH
// that changes an account, an API or an organization, and the disable and
// enable of an account, a key or a secret, carry an ETag naming the state
// shown (RFC 9110 §8.8.3); the list of an account's keys or secrets gives
// each its ETag in the JSON ("etag"). A PATCH, a DELETE of an account, an
// API, an organization, a key or a secret, a disable or enable, or the
// PUT or DELETE that places, moves or removes a project, with If-Match
// (§13.1.1) is made only if the stored state still has one of the tags it
// lists: for an organization, with its projects; for a project, the
// state of the organization the path names, whose projects change (for a
// move, the one it is moved to). The store checks that in the change's own
// transaction, which no other change of the row (for an organization or a
// project, of the organization's row, which the store locks, with, for a
// move, the row of the organization the project leaves) can interleave
// with, so two administrators editing one account (both sending its whole
// scope list, say) cannot silently undo each other's changes, nor one
// delete what the other just changed: the later one gets 412 and nothing
// is saved or deleted. Without If-Match, or with If-Match: *, a request
// is made as it always was.

// ErrPreconditionFailed is the admin error code of a 412: the resource is
// no longer in the state If-Match names.
const ErrPreconditionFailed = "precondition_failed"

// Match is a request's If-Match condition. The zero Match, a request
// without If-Match or with If-Match: *, holds for any state.
type Match struct {
	// Tags are the entity tags listed, as sent: one must be the stored
	// state's. A weak tag (W/"…") never is: If-Match compares strongly.
	Tags []string
}

// check returns nil if the state whose entity tag is tag meets m, and
// otherwise the 412 of a change that says so; what names the resource
// ("The service account x@y").
func (m Match) check(tag, what string) error {
	return m.precondition(tag, what, "nothing was saved", "Read it again, make your change to what it is now, and send that with the new ETag.")
}

// checkDelete is check for a deletion.
func (m Match) checkDelete(tag, what string) error {
	return m.precondition(tag, what, "it was not deleted", "Read it again and, if you still mean to delete it, send the DELETE with the new ETag.")
}

// precondition is check, saying what was not done and, for a stale tag,
// what to do instead.
func (m Match) precondition(tag, what, notDone, retry string) error {
	if m.Tags == nil || slices.Contains(m.Tags, tag) {
		return nil
	}
	desc := fmt.Sprintf("%s has changed since you read it (If-Match names an older version): someone else changed it meanwhile, so %s. %s", what, notDone, retry)
	if slices.Contains(m.Tags, "W/"+tag) {
		desc = fmt.Sprintf("%s is unchanged, but If-Match names its ETag as a weak tag (W/\"…\"), which never matches: If-Match compares entity tags strongly (RFC 9110 §13.1.1). So %s; send the ETag without W/ (a proxy that compresses responses may have weakened it).", what, notDone)
	}
	return &oauth2.Error{Code: ErrPreconditionFailed, Status: http.StatusPreconditionFailed, Description: desc}
}

// ifMatch reads the request's If-Match header field: "*" or a list of
// entity tags (RFC 9110 §13.1.1). One that is empty or malformed is a
// bad request, never ignored: the client asked for a condition.
func ifMatch(r *http.Request) (Match, error) {
	vs := r.Header.Values("If-Match")
	if len(vs) == 0 {
		return Match{}, nil
	}
	v := strings.Join(vs, ",")
	if strings.Trim(v, " \t") == "*" {
		return Match{}, nil
	}
	bad := invalid("The If-Match header must be * or entity tags in double quotes, such as the ETag header of a GET, quotes included.")
	var tags []string
	for rest := v; ; {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			break
		}
		tag, after, ok := cutEntityTag(rest)
		if !ok {
			return Match{}, bad
		}
		tags = append(tags, tag)
		if rest = strings.TrimLeft(after, " \t"); rest != "" && rest[0] != ',' {
			return Match{}, bad
		}
	}
	if tags == nil {
		return Match{}, invalid("The If-Match header is empty: send the ETag a GET returned, or no If-Match at all.")
	}
	return Match{Tags: tags}, nil
}

// cutEntityTag cuts the entity tag s starts with (RFC 9110 §8.8.3:
// an optional W/, then characters 0x21, 0x23-0x7E or 0x80-0xFF in
// double quotes).
func cutEntityTag(s string) (tag, rest string, ok bool) {
	start := 0
	if strings.HasPrefix(s, "W/") {
		start = 2
	}
	if len(s) <= start || s[start] != '"' {
		return "", "", false
	}
	n := strings.IndexByte(s[start+1:], '"')
	if n < 0 {
		return "", "", false
	}
	end := start + 1 + n + 1
	for _, c := range []byte(s[start+1 : end-1]) {
		if c < 0x21 || c == 0x7f {
			return "", "", false
		}
	}
	return s[:end], s[end:], true
}

// The entity tags below hash what an administrator's change alters (an
// account's updated_at moves with every one, its revocation times too),
// never what the server stamps as a resource is used (a secret's
// last_used_at): TestETagFields holds every stored field to that rule.

// tagged is a response body sent with the ETag of the state it shows.
// The tag is used only to check If-Match, which compares states an
// administrator changes. It is not a validator of the body's bytes: a
// secret's body shows last_used_at, which secretETag leaves out, so the
// same strong tag goes with bodies that differ (RFC 9110 §8.8.1 wants a
// strong tag to change with the representation). That is harmless while
// the admin API answers no If-None-Match or Range; answering 304 to
// If-None-Match with this tag would serve a stale last_used_at, and must
// first make the tag weak or hash last_used_at into a tag of its own.
type tagged struct {
	etag string
	body any
}

// accountETag is the strong entity tag of an account's state: a hash of
// every stored field, updated_at among them, so any change makes a new
// tag.
func accountETag(a storage.Account) string {
	a.CreatedAt, a.UpdatedAt, a.TokensRevokedBefore = storedTime(a.CreatedAt), storedTime(a.UpdatedAt), storedTime(a.TokensRevokedBefore)
	a.CertTokensRevokedBefore = storedTime(a.CertTokensRevokedBefore)
	a.Scopes, a.AuthMethods = orEmpty(a.Scopes), orEmpty(a.AuthMethods)
	return entityTag(a)
}

// apiETag is the strong entity tag of an API's state: a hash of every
// stored field (an API has no updated_at, and needs none: the fields an
// update may change are all in the hash).
func apiETag(a storage.API) string {
	a.CreatedAt = storedTime(a.CreatedAt)
	a.Scopes, a.Introspectors = orEmpty(a.Scopes), orEmpty(a.Introspectors)
	return entityTag(a)
}

// keyETag is the strong entity tag of a key's state: a hash of every
// stored field (a key has no updated_at, and needs none: the fields a
// change may touch are all in the hash).
func keyETag(k storage.Key) string {
	k.CreatedAt, k.ExpiresAt = storedTime(k.CreatedAt), storedTime(k.ExpiresAt)
	if len(k.Certificate) == 0 {
		k.Certificate = nil // the stores read back none as nil
	}
	return entityTag(k)
}

// secretETag is the strong entity tag of a secret's state: a hash of
// every stored field but its last use, which the server stamps as the
// secret is used, not an administrator: an administrator's If-Match must
// not fail because a workload authenticated with the secret after the GET.
func secretETag(s storage.Secret) string {
	s.CreatedAt, s.ExpiresAt, s.LastUsedAt = storedTime(s.CreatedAt), storedTime(s.ExpiresAt), time.Time{}
	return entityTag(s)
}

// orgETag is the strong entity tag of an organization's state as GET
// shows it: a hash of every stored field and of the projects placed in it,
// which are stored apart (placing, moving or removing one changes the tag).
func orgETag(o storage.Org, projects []storage.ProjectOrg) string {
	o.CreatedAt = storedTime(o.CreatedAt)
	o.BlockedScopes = orEmpty(o.BlockedScopes)
	if projects == nil {
		projects = []storage.ProjectOrg{}
	}
	return entityTag(struct {
		Org      storage.Org
		Projects []storage.ProjectOrg
	}{o, projects})
}

// entityTag hashes v's JSON into a quoted entity tag.
func entityTag(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("admin: entity tag of %T: %v", v, err)) // storage types always encode
	}
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// storedTime is t as the stores keep it: UTC, to the microsecond. An
// update returns the state it wrote with updated_at to the nanosecond; it
// must have the tag of the same state read back.
func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// orEmpty makes a nil list empty, as the stores read back an empty one.
func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
