package admin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// DELETE of an account, an API, an organization, a key or a secret, and
// disabling or enabling an account, a key or a secret, honour If-Match as
// PATCH does: with the current ETag (alone or in a
// list), *, or no If-Match, they act as before; with an ETag of an older
// state, or the current one weak, they answer 412 and change nothing, and
// write no audit event. Disabling and enabling answer with the new
// state's ETag, GET's. On SQLite and, when KEYWARD_TEST_POSTGRES_DSN is set, on
// PostgreSQL.
func TestIfMatchDeleteAndDisable(t *testing.T) {
	onBackends(t, testIfMatchDeleteAndDisable)
}

func testIfMatchDeleteAndDisable(t *testing.T, f *fixture) {
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	n := 0
	// newAccount and newAPI create a resource and return its path.
	newAccount := func(t *testing.T, disabled bool) string {
		n++
		a, err := f.srv.Admin.CreateAccount(ctx, op, admin.AccountInput{Name: fmt.Sprintf("job%d", n), Project: "shop"})
		if err == nil && disabled {
			_, err = f.srv.Admin.SetAccountDisabled(ctx, op, a.ID, true)
		}
		if err != nil {
			t.Fatal(err)
		}
		return "/v1/service-accounts/" + a.Email
	}
	newAPI := func(t *testing.T, _ bool) string {
		n++
		name := fmt.Sprintf("api%d", n)
		if _, err := f.srv.Admin.CreateAPI(ctx, op, admin.APIInput{Name: name, Identifier: "https://" + name, Scopes: []string{name + ".read"}}); err != nil {
			t.Fatal(err)
		}
		return "/v1/apis/" + name
	}
	newOrg := func(t *testing.T, _ bool) string {
		n++
		domain := fmt.Sprintf("org%d.example", n)
		if _, err := f.srv.Admin.CreateOrg(ctx, op, domain, "mail.send"); err != nil {
			t.Fatal(err)
		}
		return "/v1/orgs/" + domain
	}
	// newKey and newSecret create a key or a secret of a new account.
	newKey := func(t *testing.T, disabled bool) string {
		path := newAccount(t, false)
		kf, err := f.srv.Admin.CreateKey(ctx, op, path[len("/v1/service-accounts/"):], 0)
		if err == nil && disabled {
			_, err = f.srv.Admin.SetKeyDisabled(ctx, op, kf.ClientEmail, kf.PrivateKeyID, true)
		}
		if err != nil {
			t.Fatal(err)
		}
		return path + "/keys/" + kf.PrivateKeyID
	}
	newSecret := func(t *testing.T, disabled bool) string {
		path := newAccount(t, false)
		email := path[len("/v1/service-accounts/"):]
		cs, err := f.srv.Admin.CreateSecret(ctx, op, email, 0)
		if err == nil && disabled {
			_, err = f.srv.Admin.SetSecretDisabled(ctx, op, email, cs.ID, true)
		}
		if err != nil {
			t.Fatal(err)
		}
		return path + "/secrets/" + cs.ID
	}
	// Another administrator's change of the resource at path: a PATCH of
	// an account or an API; a key or a secret given an expiry.
	patch := func(t *testing.T, path string) {
		if code, out, _ := f.call(t, "PATCH", path, auth, map[string]any{"description": "theirs"}); code != 200 {
			t.Fatalf("PATCH %s: %d %v", path, code, out)
		}
	}
	// Another administrator's change of an organization: its blocked
	// scopes, or a project placed in it (stored apart, in its ETag).
	block := func(t *testing.T, path string) {
		if code, out, _ := f.call(t, "PATCH", path, auth, map[string]any{"blocked_scopes": []string{"theirs.read"}}); code != 200 {
			t.Fatalf("PATCH %s: %d %v", path, code, out)
		}
	}
	place := func(t *testing.T, path string) {
		if code, out, _ := f.call(t, "PUT", path+"/projects/shop", auth, nil); code != 200 {
			t.Fatalf("PUT %s/projects/shop: %d %v", path, code, out)
		}
	}
	expire := func(t *testing.T, path string) {
		if _, err := f.store.UpdateKey(ctx, path[strings.LastIndexByte(path, '/')+1:], func(k storage.Key) (storage.Key, error) {
			k.ExpiresAt = time.Now().Add(time.Hour)
			return k, nil
		}, storage.AuditEvent{Time: time.Now(), Action: "key.update", Outcome: storage.OutcomeSuccess, Actor: "other"}); err != nil {
			t.Fatal(err)
		}
	}
	expireSecret := func(t *testing.T, path string) {
		if _, err := f.srv.Cache.UpdateSecret(ctx, path[strings.LastIndexByte(path, '/')+1:], func(s storage.Secret) (storage.Secret, error) {
			s.ExpiresAt = time.Now().Add(time.Hour)
			return s, nil
		}, nil, storage.AuditEvent{Time: time.Now(), Action: "secret.update", Outcome: storage.OutcomeSuccess, Actor: "other"}); err != nil {
			t.Fatal(err)
		}
	}
	deleted := func(code int, _ map[string]any) error { return wantStatus(code, 404) }
	isDisabled := func(_ int, out map[string]any) error { return wantField(out, "disabled", true) }
	isEnabled := func(_ int, out map[string]any) error { return wantField(out, "disabled", false) }
	routes := []struct {
		name     string
		create   func(t *testing.T, disabled bool) string
		disabled bool // the state created
		// change is another administrator's change of it.
		change func(t *testing.T, path string)
		method string // of the request
		suffix string // of the request's path, after the resource's
		want   int    // its status when made
		action string // of its audit event
		// made returns an error unless the request was made: GET's
		// answer is what it made.
		made    func(code int, out map[string]any) error
		notDone string // the 412 says so
	}{
		{"DELETE account", newAccount, false, patch, "DELETE", "", 204, "account.delete", deleted, "it was not deleted"},
		{"DELETE API", newAPI, false, patch, "DELETE", "", 204, "api.delete", deleted, "it was not deleted"},
		{"DELETE organization", newOrg, false, block, "DELETE", "", 204, "org.delete", deleted, "it was not deleted"},
		{"DELETE organization with a project placed", newOrg, false, place, "DELETE", "", 204, "org.delete", deleted, "it was not deleted"},
		{"disable account", newAccount, false, patch, "POST", "/disable", 200, "account.disable", isDisabled, "nothing was saved"},
		{"enable account", newAccount, true, patch, "POST", "/enable", 200, "account.enable", isEnabled, "nothing was saved"},
		{"DELETE key", newKey, false, expire, "DELETE", "", 204, "key.delete", deleted, "it was not deleted"},
		{"disable key", newKey, false, expire, "POST", "/disable", 200, "key.disable", isDisabled, "nothing was saved"},
		{"enable key", newKey, true, expire, "POST", "/enable", 200, "key.enable", isEnabled, "nothing was saved"},
		{"DELETE secret", newSecret, false, expireSecret, "DELETE", "", 204, "secret.delete", deleted, "it was not deleted"},
		{"disable secret", newSecret, false, expireSecret, "POST", "/disable", 200, "secret.disable", isDisabled, "nothing was saved"},
		{"enable secret", newSecret, true, expireSecret, "POST", "/enable", 200, "secret.enable", isEnabled, "nothing was saved"},
	}
	// ifMatches are the If-Match values sent: of the ETag before a change
	// (old) and the one after it (cur).
	ifMatches := []struct {
		name    string
		header  func(old, cur string) string
		refused bool
	}{
		{"the current ETag", func(_, cur string) string { return cur }, false},
		{"a list with the current ETag", func(old, cur string) string { return old + `, ` + cur }, false},
		{"*", func(_, _ string) string { return "*" }, false},
		{"none", func(_, _ string) string { return "" }, false},
		{"an older ETag", func(old, _ string) string { return old }, true},
		{"the current ETag weak", func(_, cur string) string { return "W/" + cur }, true},
	}
	for _, rt := range routes {
		for _, im := range ifMatches {
			t.Run(rt.name+" with "+im.name, func(t *testing.T) {
				path := rt.create(t, rt.disabled)
				old, _ := f.etagOf(t, path, auth)
				// Another administrator's change makes old stale.
				rt.change(t, path)
				cur, was := f.etagOf(t, path, auth)
				if cur == old {
					t.Fatalf("%s: ETag %s unchanged by another's change", path, cur)
				}
				events := f.countEvents(t, rt.action)
				code, out, hdr := f.callIf(t, rt.method, path+rt.suffix, auth, im.header(old, cur), nil)
				after, is, afterHdr := f.call(t, "GET", path, auth, nil)
				if im.refused {
					if code != 412 || out["error"] != admin.ErrPreconditionFailed || !strings.Contains(out["error_description"].(string), rt.notDone) {
						t.Fatalf("%s %s%s: %d %v, want 412 precondition_failed saying %s", rt.method, path, rt.suffix, code, out, rt.notDone)
					}
					if after != 200 || afterHdr.Get("ETag") != cur || mustJSON(t, is) != mustJSON(t, was) || hdr.Get("ETag") != "" {
						t.Fatalf("a refused %s changed %s: %d, ETag %s → %s, %v → %v", rt.method, path, after, cur, afterHdr.Get("ETag"), was, is)
					}
					if got := f.countEvents(t, rt.action); got != events {
						t.Fatalf("%s events: %d before the 412, %d after", rt.action, events, got)
					}
					return
				}
				if code != rt.want {
					t.Fatalf("%s %s%s: %d %v, want %d", rt.method, path, rt.suffix, code, out, rt.want)
				}
				if err := rt.made(after, is); err != nil {
					t.Fatalf("%s %s%s was not made: GET says %v", rt.method, path, rt.suffix, err)
				}
				if rt.want == 200 && (hdr.Get("ETag") != afterHdr.Get("ETag") || hdr.Get("ETag") == cur) {
					t.Fatalf("%s %s%s: ETag %s before, %s in the answer, %s in the next GET: want a new one, the same in both", rt.method, path, rt.suffix, cur, hdr.Get("ETag"), afterHdr.Get("ETag"))
				}
				if got := f.countEvents(t, rt.action); got != events+1 {
					t.Fatalf("%s events: %d before, %d after", rt.action, events, got)
				}
			})
		}
	}
}

// A secret's use, recorded between an administrator's GET (or list) and
// change, leaves its ETag as it was: the change with that ETag in
// If-Match is made, not refused with 412, though last_used_at moved. On
// SQLite and, when KEYWARD_TEST_POSTGRES_DSN is set, on PostgreSQL.
func TestSecretUseKeepsETag(t *testing.T) {
	onBackends(t, testSecretUseKeepsETag)
}

func testSecretUseKeepsETag(t *testing.T, f *fixture) {
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	for i, tt := range []struct {
		name     string
		disabled bool // the state created
		method   string
		suffix   string
		want     int
	}{
		{"DELETE", false, "DELETE", "", 204},
		{"disable", false, "POST", "/disable", 200},
		{"enable", true, "POST", "/enable", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := f.srv.Admin.CreateAccount(ctx, op, admin.AccountInput{Name: fmt.Sprintf("used%d", i), Project: "shop"})
			if err != nil {
				t.Fatal(err)
			}
			cs, err := f.srv.Admin.CreateSecret(ctx, op, a.Email, 0)
			if err == nil && tt.disabled {
				_, err = f.srv.Admin.SetSecretDisabled(ctx, op, a.Email, cs.ID, true)
			}
			if err != nil {
				t.Fatal(err)
			}
			path := "/v1/service-accounts/" + a.Email + "/secrets/" + cs.ID
			tag, before := f.etagOf(t, path, auth)
			_, list, _ := f.call(t, "GET", "/v1/service-accounts/"+a.Email+"/secrets", auth, nil)
			if got := list["secrets"].([]any)[0].(map[string]any)["etag"]; got != tag {
				t.Fatalf("the list's etag %v, GET's %s", got, tag)
			}
			// Its use recorded, as the server records it: through the cache.
			if err := f.srv.Cache.TouchSecrets(ctx, map[string]time.Time{cs.ID: time.Now()}); err != nil {
				t.Fatal(err)
			}
			now, after := f.etagOf(t, path, auth)
			if after["last_used_at"] == nil || after["last_used_at"] == before["last_used_at"] {
				t.Fatalf("last_used_at %v before the use, %v after: want it recorded", before["last_used_at"], after["last_used_at"])
			}
			if now != tag {
				t.Fatalf("the secret's use changed its ETag: %s → %s", tag, now)
			}
			if code, out, _ := f.callIf(t, tt.method, path+tt.suffix, auth, tag, nil); code != tt.want {
				t.Fatalf("%s %s%s with the ETag from before the use: %d %v, want %d", tt.method, path, tt.suffix, code, out, tt.want)
			}
		})
	}
}

// countEvents returns how many audit events of action the store holds.
func (f *fixture) countEvents(t *testing.T, action string) int {
	t.Helper()
	evs, err := f.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: action, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

func wantStatus(got, want int) error {
	if got != want {
		return fmt.Errorf("status %d, want %d", got, want)
	}
	return nil
}

func wantField(out map[string]any, field string, want any) error {
	if out[field] != want {
		return fmt.Errorf("%s is %v, want %v", field, out[field], want)
	}
	return nil
}

// The If-Match of a DELETE, or of disabling an account, is checked in the
// store's transaction: a change that commits between the service's own
// read and that transaction makes it 412, and is not deleted or
// overwritten.
func TestIfMatchDeleteAtomic(t *testing.T) {
	f, is, auth := interleavedFixture(t)
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	theirs := storage.AuditEvent{Time: time.Now(), Action: "account.update", Outcome: storage.OutcomeSuccess, Actor: "other"}
	// Their change sets the description to "theirs".
	account := func(ctx context.Context, id string) {
		is.account = nil
		if _, err := is.Storage.UpdateAccount(ctx, id, func(a storage.Account) (storage.Account, error) {
			a.Description, a.UpdatedAt = "theirs", time.Now()
			return a, nil
		}, theirs); err != nil {
			t.Error(err)
		}
	}
	api := func(ctx context.Context, name string) {
		is.api = nil
		if _, err := is.Storage.UpdateAPI(ctx, name, func(a storage.API) (storage.API, error) {
			a.Description = "theirs"
			return a, nil
		}, theirs); err != nil {
			t.Error(err)
		}
	}
	for i, tt := range []struct {
		name, method, suffix string
		api                  bool
	}{
		{"DELETE account", "DELETE", "", false},
		{"disable account", "POST", "/disable", false},
		{"DELETE API", "DELETE", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("job%d", i)
			path := "/v1/apis/" + name
			var err error
			if tt.api {
				_, err = f.srv.Admin.CreateAPI(ctx, op, admin.APIInput{Name: name, Identifier: "https://" + name, Scopes: []string{name + ".read"}})
				is.api = api
			} else {
				var a storage.Account
				a, err = f.srv.Admin.CreateAccount(ctx, op, admin.AccountInput{Name: name, Project: "shop"})
				path = "/v1/service-accounts/" + a.Email
				is.account = account
			}
			if err != nil {
				t.Fatal(err)
			}
			tag, _ := f.etagOf(t, path, auth)
			if code, out, _ := f.callIf(t, tt.method, path+tt.suffix, auth, tag, nil); code != 412 || out["error"] != admin.ErrPreconditionFailed {
				t.Errorf("%s %s as another change commits: %d %v, want 412", tt.method, path+tt.suffix, code, out)
			}
			if is.account != nil || is.api != nil {
				t.Fatal("the other change was not made")
			}
			if code, out, _ := f.call(t, "GET", path, auth, nil); code != 200 || out["description"] != "theirs" || out["disabled"] == true {
				t.Errorf("after the 412: GET %s: %d %v, want the other change, nothing else", path, code, out)
			}
		})
	}
}

// An organization's GET, POST and PATCH carry an ETag that covers what
// GET shows, its projects included, which are stored apart: placing a
// project, changing or moving or removing it, makes a new one, and a
// PATCH with If-Match of an older one is 412 and changes nothing. On
// SQLite and, when KEYWARD_TEST_POSTGRES_DSN is set, on PostgreSQL.
func TestIfMatchOrg(t *testing.T) {
	onBackends(t, testIfMatchOrg)
}

func testIfMatchOrg(t *testing.T, f *fixture) {
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	const path = "/v1/orgs/example.com"
	var created string // the ETag of the POST that created example.com
	for _, domain := range []string{"other.org", "example.com"} {
		code, out, hdr := f.call(t, "POST", "/v1/orgs", auth, map[string]any{"domain": domain, "blocked_scopes": []string{"mail.send"}})
		if code != 201 {
			t.Fatalf("POST /v1/orgs %s: %d %v", domain, code, out)
		}
		created = hdr.Get("ETag")
	}
	tag, _ := f.etagOf(t, path, auth)
	if tag != created {
		t.Errorf("the POST that created it gave ETag %s, GET gives %s", created, tag)
	}
	if again, _ := f.etagOf(t, path, auth); again != tag {
		t.Fatalf("two GETs of one state: ETags %s and %s", tag, again)
	}
	i := 0
	// patch sends a new blocked scope list with If-Match ifMatch; want is
	// 200 or 412. It returns the ETag after.
	patch := func(t *testing.T, ifMatch string, want int) string {
		t.Helper()
		i++
		before, was := f.etagOf(t, path, auth)
		scopes := []string{fmt.Sprintf("scope.%d", i)}
		code, out, hdr := f.callIf(t, "PATCH", path, auth, ifMatch, map[string]any{"blocked_scopes": scopes})
		if code != want {
			t.Fatalf("PATCH with If-Match %q: %d %v, want %d", ifMatch, code, out, want)
		}
		now, is := f.etagOf(t, path, auth)
		if want == 200 {
			if hdr.Get("ETag") != now || now == before || mustJSON(t, is["blocked_scopes"]) != mustJSON(t, scopes) || mustJSON(t, out) != mustJSON(t, is) {
				t.Fatalf("PATCH with If-Match %q: %v, ETag %s before, %s in the answer; GET: %v, ETag %s: want the change, a new ETag, the same in both", ifMatch, out, before, hdr.Get("ETag"), is, now)
			}
			return now
		}
		if out["error"] != admin.ErrPreconditionFailed || !strings.Contains(out["error_description"].(string), "The organization example.com") {
			t.Errorf("the 412's body: %v", out)
		}
		if hdr.Get("ETag") != "" || now != before || mustJSON(t, is) != mustJSON(t, was) {
			t.Fatalf("a refused PATCH changed the organization: ETag %s → %s, %v → %v", before, now, was, is)
		}
		return now
	}
	tag1 := patch(t, tag, 200)
	patch(t, tag, 412)
	tag2 := patch(t, "", 200)
	tag3 := patch(t, "*", 200)
	tag4 := patch(t, `"elsewhere", `+tag3, 200)
	patch(t, tag2, 412)
	patch(t, "W/"+tag4, 412)
	if tag1 == tag || tag2 == tag1 || tag3 == tag2 || tag4 == tag3 {
		t.Errorf("ETags %s, %s, %s, %s, %s: want a new one after each change", tag, tag1, tag2, tag3, tag4)
	}
	// Each change of its projects makes a new ETag, and a PATCH with the
	// one before 412.
	for _, tt := range []struct {
		name, method, path string
		body               any
	}{
		{"placing a project", "PUT", path + "/projects/shop", nil},
		{"making it internal", "PUT", path + "/projects/shop", map[string]any{"internal": true}},
		{"placing another", "PUT", path + "/projects/ads", nil},
		{"moving one to another organization", "PUT", "/v1/orgs/other.org/projects/shop", nil},
		{"removing one", "DELETE", path + "/projects/ads", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := f.etagOf(t, path, auth)
			if code, out, _ := f.call(t, tt.method, tt.path, auth, tt.body); code/100 != 2 {
				t.Fatalf("%s %s: %d %v", tt.method, tt.path, code, out)
			}
			if now, _ := f.etagOf(t, path, auth); now == before {
				t.Fatalf("ETag %s unchanged", now)
			}
			patch(t, before, 412)
			patch(t, f.mustETag(t, path, auth), 200)
		})
	}
	// With a project: the PATCH's answer and ETag are GET's.
	if code, out, _ := f.call(t, "PUT", path+"/projects/mail", auth, nil); code != 200 {
		t.Fatalf("PUT project: %d %v", code, out)
	}
	patch(t, f.mustETag(t, path, auth), 200)
	if code, out, _ := f.callIf(t, "PATCH", "/v1/orgs/ghost.example", auth, `"x"`, map[string]any{"blocked_scopes": []string{}}); code != 404 {
		t.Errorf("PATCH of a missing organization with If-Match: %d %v, want 404", code, out)
	}
}

// The If-Match of a DELETE of an organization is checked in the delete's
// transaction, against its projects too: a project placed as the delete
// begins makes it 412, and the organization stays, with that project.
func TestIfMatchOrgDeleteAtomic(t *testing.T) {
	f, is, auth := interleavedFixture(t)
	if _, err := f.srv.Admin.CreateOrg(context.Background(), admin.Actor{ID: "op"}, "example.com", "mail.send"); err != nil {
		t.Fatal(err)
	}
	is.org = func(ctx context.Context, domain string) {
		is.org = nil
		theirs := storage.AuditEvent{Time: time.Now(), Action: "org.project", Outcome: storage.OutcomeSuccess, Actor: "other"}
		if err := is.Storage.PutProjectOrg(ctx, storage.ProjectOrg{Project: "shop", Org: domain}, nil, theirs); err != nil {
			t.Error(err)
		}
	}
	const path = "/v1/orgs/example.com"
	tag, _ := f.etagOf(t, path, auth)
	code, out, _ := f.callIf(t, "DELETE", path, auth, tag, nil)
	if desc, _ := out["error_description"].(string); code != 412 || out["error"] != admin.ErrPreconditionFailed || !strings.HasPrefix(desc, "The organization example.com has changed since you read it") || !strings.Contains(desc, "it was not deleted") {
		t.Errorf("DELETE as a project is placed: %d %v, want 412 saying the organization example.com changed and was not deleted", code, out)
	}
	if is.org != nil {
		t.Fatal("the project was not placed")
	}
	if code, out, _ := f.call(t, "GET", path, auth, nil); code != 200 || mustJSON(t, out["blocked_scopes"]) != `["mail.send"]` || mustJSON(t, out["projects"]) != `[{"internal":false,"project":"shop"}]` {
		t.Errorf("after the 412: %d %v, want the organization there, the project placed", code, out)
	}
	if code, out, _ := f.callIf(t, "DELETE", path, auth, f.mustETag(t, path, auth), nil); code != 204 {
		t.Errorf("DELETE with the ETag as it is now: %d %v, want 204", code, out)
	}
	if code, out, _ := f.callIf(t, "DELETE", path, auth, `"stale"`, nil); code != 404 {
		t.Errorf("DELETE of a deleted organization with If-Match: %d %v, want 404", code, out)
	}
}

// mustETag returns the ETag GET gives for path.
func (f *fixture) mustETag(t *testing.T, path, auth string) string {
	t.Helper()
	tag, _ := f.etagOf(t, path, auth)
	return tag
}

// The If-Match of a PATCH of an organization is checked in the update's
// transaction, against the projects too: a project placed as the update
// begins makes it 412.
func TestIfMatchOrgAtomic(t *testing.T) {
	f, is, auth := interleavedFixture(t)
	if _, err := f.srv.Admin.CreateOrg(context.Background(), admin.Actor{ID: "op"}, "example.com", "mail.send"); err != nil {
		t.Fatal(err)
	}
	is.org = func(ctx context.Context, domain string) {
		is.org = nil
		theirs := storage.AuditEvent{Time: time.Now(), Action: "org.project", Outcome: storage.OutcomeSuccess, Actor: "other"}
		if err := is.Storage.PutProjectOrg(ctx, storage.ProjectOrg{Project: "shop", Org: domain}, nil, theirs); err != nil {
			t.Error(err)
		}
	}
	const path = "/v1/orgs/example.com"
	tag, _ := f.etagOf(t, path, auth)
	if code, out, _ := f.callIf(t, "PATCH", path, auth, tag, map[string]any{"blocked_scopes": []string{}}); code != 412 || out["error"] != admin.ErrPreconditionFailed {
		t.Errorf("PATCH as a project is placed: %d %v, want 412", code, out)
	}
	if is.org != nil {
		t.Fatal("the project was not placed")
	}
	if code, out, _ := f.call(t, "GET", path, auth, nil); code != 200 || mustJSON(t, out["blocked_scopes"]) != `["mail.send"]` || mustJSON(t, out["projects"]) != `[{"internal":false,"project":"shop"}]` {
		t.Errorf("after the 412: %d %v, want the project placed and the blocked scopes as they were", code, out)
	}
}

// Suspending and reinstating a user change it in one transaction: the
// answer is the user as changed, a missing user is 404, and a user
// deleted as the change begins (after the request is checked, before the
// store writes) stays deleted and is 404, not created again as it was
// when the service read the user and then wrote it back.
func TestSetUserSuspended(t *testing.T) {
	f, is, auth := interleavedFixture(t)
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	if _, err := f.srv.Admin.CreateOrg(ctx, op, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Admin.PutUsers(ctx, op, "example.com", []admin.UserInput{{Email: "ann@example.com"}, {Email: "bob@example.com"}}); err != nil {
		t.Fatal(err)
	}
	deleted := func(ctx context.Context, email string) {
		is.user = nil
		theirs := storage.AuditEvent{Time: time.Now(), Action: "user.delete", Outcome: storage.OutcomeSuccess, Actor: "other"}
		if err := is.Storage.DeleteUser(ctx, email, theirs); err != nil {
			t.Error(err)
		}
	}
	for _, tt := range []struct {
		name, path string
		// meanwhile, if set, runs as the change begins.
		meanwhile func(ctx context.Context, email string)
		want      int
		suspended bool // when want is 200
	}{
		{"suspend", "/v1/users/ann@example.com/suspend", nil, 200, true},
		{"suspend again", "/v1/users/ANN@example.com/suspend", nil, 200, true},
		{"unsuspend", "/v1/users/ann@example.com/unsuspend", nil, 200, false},
		{"a missing user", "/v1/users/nobody@example.com/suspend", nil, 404, false},
		{"a user deleted meanwhile", "/v1/users/bob@example.com/suspend", deleted, 404, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is.user = tt.meanwhile
			code, out, _ := f.call(t, "POST", tt.path, auth, nil)
			if code != tt.want || (code == 200 && (out["suspended"] != tt.suspended || out["org"] != "example.com" || out["email"] != "ann@example.com")) {
				t.Fatalf("POST %s: %d %v, want %d (suspended %v)", tt.path, code, out, tt.want, tt.suspended)
			}
			email := strings.ToLower(strings.Split(tt.path, "/")[3])
			u, err := is.Storage.GetUser(ctx, email)
			switch {
			case tt.want == 200 && (err != nil || u.Suspended != tt.suspended):
				t.Fatalf("stored: %+v, %v; want suspended %v", u, err, tt.suspended)
			case tt.want == 404 && !errors.Is(err, storage.ErrNotFound):
				t.Fatalf("stored: %+v, %v; want no such user", u, err)
			}
			if is.user != nil {
				t.Fatal("the other change was not made")
			}
		})
	}
}

// Placing, moving and removing a project honour If-Match of the
// organization the path names, the one whose projects change (for a move,
// the one the project is moved to): with its current ETag (alone or in a
// list), *, or no If-Match, they act as before; with an ETag of an older
// state, the current one weak, or another organization's, they answer 412,
// change nothing and write no audit event. On SQLite and, when
// KEYWARD_TEST_POSTGRES_DSN is set, on PostgreSQL.
func TestIfMatchProjects(t *testing.T) {
	onBackends(t, testIfMatchProjects)
}

func testIfMatchProjects(t *testing.T, f *fixture) {
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	n := 0
	// newOrg creates an organization with the project p in it.
	newOrg := func(t *testing.T, p string) string {
		n++
		domain := fmt.Sprintf("o%d.example", n)
		_, err := f.srv.Admin.CreateOrg(ctx, op, domain)
		if err == nil {
			_, err = f.srv.Admin.PlaceProject(ctx, op, domain, p, false)
		}
		if err != nil {
			t.Fatal(err)
		}
		return domain
	}
	// projectsOf returns the projects GET shows of domain.
	projectsOf := func(t *testing.T, domain string) string {
		_, out := f.etagOf(t, "/v1/orgs/"+domain, auth)
		return mustJSON(t, out["projects"])
	}
	routes := []struct {
		name    string
		method  string
		project string // of the path; "shop" is in another organization
		want    int
		action  string
		// placed is the projects of the organization after the request
		// is made.
		placed  string
		notDone string
	}{
		{"place", "PUT", "mail", 200, "org.project", `[{"internal":false,"project":"ads"},{"internal":false,"project":"mail"}]`, "the project was not placed or moved"},
		{"move", "PUT", "shop", 200, "org.project", `[{"internal":false,"project":"ads"},{"internal":false,"project":"shop"}]`, "the project was not placed or moved"},
		{"remove", "DELETE", "ads", 204, "org.project_remove", `null`, "the project was not removed"},
	}
	ifMatches := []struct {
		name string
		// header gets the ETags of the organization before another's
		// change (old) and after (cur), and the current one of the
		// organization the project "shop" is in (other).
		header  func(old, cur, other string) string
		refused bool
	}{
		{"the current ETag", func(_, cur, _ string) string { return cur }, false},
		{"a list with the current ETag", func(old, cur, _ string) string { return old + ", " + cur }, false},
		{"*", func(_, _, _ string) string { return "*" }, false},
		{"none", func(_, _, _ string) string { return "" }, false},
		{"an older ETag", func(old, _, _ string) string { return old }, true},
		{"the current ETag weak", func(_, cur, _ string) string { return "W/" + cur }, true},
		{"the other organization's ETag", func(_, _, other string) string { return other }, true},
	}
	for _, rt := range routes {
		for _, im := range ifMatches {
			t.Run(rt.name+" with "+im.name, func(t *testing.T) {
				domain, other := newOrg(t, "ads"), newOrg(t, "shop")
				path := "/v1/orgs/" + domain
				old, _ := f.etagOf(t, path, auth)
				// Another administrator's change makes old stale.
				if code, out, _ := f.call(t, "PATCH", path, auth, map[string]any{"blocked_scopes": []string{"mail.send"}}); code != 200 {
					t.Fatalf("PATCH %s: %d %v", path, code, out)
				}
				cur, was := f.etagOf(t, path, auth)
				otherTag, otherWas := f.etagOf(t, "/v1/orgs/"+other, auth)
				events := f.countEvents(t, rt.action)
				code, out, _ := f.callIf(t, rt.method, path+"/projects/"+rt.project, auth, im.header(old, cur, otherTag), nil)
				now, is := f.etagOf(t, path, auth)
				otherNow, otherIs := f.etagOf(t, "/v1/orgs/"+other, auth)
				if im.refused {
					if code != 412 || out["error"] != admin.ErrPreconditionFailed || !strings.Contains(out["error_description"].(string), "The organization "+domain) || !strings.Contains(out["error_description"].(string), rt.notDone) {
						t.Fatalf("%s %s: %d %v, want 412 precondition_failed saying %s", rt.method, rt.project, code, out, rt.notDone)
					}
					if now != cur || mustJSON(t, is) != mustJSON(t, was) || otherNow != otherTag || mustJSON(t, otherIs) != mustJSON(t, otherWas) {
						t.Fatalf("a refused %s changed the organizations: %v → %v, %v → %v", rt.method, was, is, otherWas, otherIs)
					}
					if got := f.countEvents(t, rt.action); got != events {
						t.Fatalf("%s events: %d before the 412, %d after", rt.action, events, got)
					}
					return
				}
				if code != rt.want {
					t.Fatalf("%s %s: %d %v, want %d", rt.method, rt.project, code, out, rt.want)
				}
				if got := mustJSON(t, is["projects"]); got != rt.placed || now == cur {
					t.Fatalf("after %s %s: projects %s, ETag %s → %s; want %s, a new ETag", rt.method, rt.project, got, cur, now, rt.placed)
				}
				if got := f.countEvents(t, rt.action); got != events+1 {
					t.Fatalf("%s events: %d before, %d after", rt.action, events, got)
				}
			})
		}
	}
	// A project not in the organization is 404, whatever If-Match says.
	domain, other := newOrg(t, "ads"), newOrg(t, "shop")
	for _, p := range []string{"nowhere", "shop"} {
		if code, out, _ := f.callIf(t, "DELETE", "/v1/orgs/"+domain+"/projects/"+p, auth, `"stale"`, nil); code != 404 {
			t.Errorf("DELETE of %s, not in %s, with a stale If-Match: %d %v, want 404", p, domain, code, out)
		}
	}
	if got := projectsOf(t, other); got != `[{"internal":false,"project":"shop"}]` {
		t.Errorf("%s's projects: %s, want shop still there", other, got)
	}
}

// The If-Match of a key's or a secret's DELETE, disable or enable, and of
// placing, moving or removing a project, is checked in the store's
// transaction: a change that commits between the service's own read and
// that transaction makes it 412, and is not deleted or overwritten.
func TestIfMatchCredentialsAndProjectsAtomic(t *testing.T) {
	f, is, auth := interleavedFixture(t)
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	theirs := func(action string) storage.AuditEvent {
		return storage.AuditEvent{Time: time.Now(), Action: action, Outcome: storage.OutcomeSuccess, Actor: "other"}
	}
	expires := time.Now().Add(time.Hour).Truncate(time.Second)
	// Their changes: a key or a secret given an expiry; a policy of the
	// organization.
	key := func(ctx context.Context, id string) {
		is.key = nil
		if _, err := is.Storage.UpdateKey(ctx, id, func(k storage.Key) (storage.Key, error) {
			k.ExpiresAt = expires
			return k, nil
		}, theirs("key.update")); err != nil {
			t.Error(err)
		}
	}
	secret := func(ctx context.Context, id string) {
		is.secret = nil
		if _, err := is.Storage.UpdateSecret(ctx, id, func(s storage.Secret) (storage.Secret, error) {
			s.ExpiresAt = expires
			return s, nil
		}, nil, theirs("secret.update")); err != nil {
			t.Error(err)
		}
	}
	project := func(ctx context.Context, domain string) {
		is.project = nil
		if _, _, err := is.Storage.UpdateOrg(ctx, domain, func(o storage.Org, _ []storage.ProjectOrg) (storage.Org, error) {
			o.BlockedScopes = []string{"theirs"}
			return o, nil
		}, theirs("org.policy")); err != nil {
			t.Error(err)
		}
	}
	a, err := f.srv.Admin.CreateAccount(ctx, op, admin.AccountInput{Name: "job", Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	for _, domain := range []string{"example.com", "other.org"} {
		if _, err := f.srv.Admin.CreateOrg(ctx, op, domain); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []struct{ org, project string }{{"example.com", "ads"}, {"other.org", "shop"}} {
		if _, err := f.srv.Admin.PlaceProject(ctx, op, p.org, p.project, false); err != nil {
			t.Fatal(err)
		}
	}
	account := "/v1/service-accounts/" + a.Email
	for _, tt := range []struct {
		// path is "/keys/" or "/secrets/" for a new key or secret of
		// the account, whose ETag If-Match names, with suffix after it;
		// otherwise it follows the organization example.com, whose ETag
		// If-Match names.
		name, method, path, suffix string
		hook                       *func(ctx context.Context, id string)
		fn                         func(ctx context.Context, id string)
		// after checks the state after the 412: their change, nothing
		// else.
		after func(t *testing.T, out map[string]any)
	}{
		{"DELETE key", "DELETE", "/keys/", "", &is.key, key, expired(expires)},
		{"disable key", "POST", "/keys/", "/disable", &is.key, key, expired(expires)},
		{"DELETE secret", "DELETE", "/secrets/", "", &is.secret, secret, expired(expires)},
		{"disable secret", "POST", "/secrets/", "/disable", &is.secret, secret, expired(expires)},
		{"place project", "PUT", "/projects/mail", "", &is.project, project, blocked(`[{"internal":false,"project":"ads"}]`)},
		{"move project", "PUT", "/projects/shop", "", &is.project, project, blocked(`[{"internal":false,"project":"ads"}]`)},
		{"remove project", "DELETE", "/projects/ads", "", &is.project, project, blocked(`[{"internal":false,"project":"ads"}]`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var resource, target string // GET's path, and the request's
			switch tt.path {
			case "/keys/":
				kf, err := f.srv.Admin.CreateKey(ctx, op, a.ID, 0)
				if err != nil {
					t.Fatal(err)
				}
				resource = account + "/keys/" + kf.PrivateKeyID
				target = resource + tt.suffix
			case "/secrets/":
				cs, err := f.srv.Admin.CreateSecret(ctx, op, a.ID, 0)
				if err != nil {
					t.Fatal(err)
				}
				resource = account + "/secrets/" + cs.ID
				target = resource + tt.suffix
			default:
				resource = "/v1/orgs/example.com"
				target = resource + tt.path
				if _, err := f.srv.Admin.SetBlockedScopes(ctx, op, "example.com", nil); err != nil {
					t.Fatal(err)
				}
			}
			tag, _ := f.etagOf(t, resource, auth)
			*tt.hook = tt.fn
			if code, out, _ := f.callIf(t, tt.method, target, auth, tag, nil); code != 412 || out["error"] != admin.ErrPreconditionFailed {
				t.Errorf("%s %s as another change commits: %d %v, want 412", tt.method, target, code, out)
			}
			if *tt.hook != nil {
				*tt.hook = nil
				t.Fatal("the other change was not made")
			}
			_, out := f.etagOf(t, resource, auth)
			tt.after(t, out)
			if _, other := f.etagOf(t, "/v1/orgs/other.org", auth); mustJSON(t, other["projects"]) != `[{"internal":false,"project":"shop"}]` {
				t.Errorf("after the 412: other.org's projects %v, want shop still there", other["projects"])
			}
		})
	}
}

// expired checks that a key or a secret has their change (its expiry) and
// is still enabled.
func expired(at time.Time) func(t *testing.T, out map[string]any) {
	return func(t *testing.T, out map[string]any) {
		t.Helper()
		if out["expires_at"] != at.UTC().Format(time.RFC3339) || out["disabled"] != false {
			t.Errorf("after the 412: %v, want their expiry %s, enabled", out, at.UTC().Format(time.RFC3339))
		}
	}
}

// blocked checks that an organization has their change (its policy) and
// the projects it had.
func blocked(projects string) func(t *testing.T, out map[string]any) {
	return func(t *testing.T, out map[string]any) {
		t.Helper()
		if mustJSON(t, out["blocked_scopes"]) != `["theirs"]` || mustJSON(t, out["projects"]) != projects {
			t.Errorf("after the 412: %v, want their policy and the projects %s", out, projects)
		}
	}
}

// The POST that creates a key (generated or uploaded) or a secret answers
// with the new one's ETag, GET's; the list of an account's keys or
// secrets gives each its ETag as "etag", GET's too, which a disable sent
// with it as If-Match makes, and which is refused (412) once the key or
// secret changed. On SQLite and, when KEYWARD_TEST_POSTGRES_DSN is set,
// on PostgreSQL.
func TestCreatedAndListedETags(t *testing.T) {
	onBackends(t, testCreatedAndListedETags)
}

func testCreatedAndListedETags(t *testing.T, f *fixture) {
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&p256.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, suffix string // suffix: of the account's path, for the POST
		body         any
		list         string // the list's path, after the account's, and its member
		// id returns the new item's ID from the POST's answer.
		id func(out map[string]any) any
	}{
		{"create key", "/keys", nil, "keys", func(out map[string]any) any { return out["private_key_id"] }},
		{"upload key", "/keys/upload", admin.KeyRequest{PublicKeyPEM: pemOf("PUBLIC KEY", spki)}, "keys", func(out map[string]any) any { return out["key_id"] }},
		{"create secret", "/secrets", nil, "secrets", func(out map[string]any) any { return out["secret_id"] }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := f.srv.Admin.CreateAccount(ctx, op, admin.AccountInput{Name: fmt.Sprintf("created%d", i), Project: "shop"})
			if err != nil {
				t.Fatal(err)
			}
			path := "/v1/service-accounts/" + a.Email
			code, out, hdr := f.call(t, "POST", path+tt.suffix, auth, tt.body)
			id, _ := tt.id(out).(string)
			if code != 201 || id == "" {
				t.Fatalf("POST %s%s: %d %v", path, tt.suffix, code, out)
			}
			item := path + "/" + tt.list + "/" + id
			tag, _ := f.etagOf(t, item, auth)
			if got := hdr.Get("ETag"); got != tag {
				t.Fatalf("POST %s%s: ETag %q, want GET's %s", path, tt.suffix, got, tag)
			}
			// listed returns the list's etag of the new item.
			listed := func() string {
				t.Helper()
				code, out, _ := f.call(t, "GET", path+"/"+tt.list, auth, nil)
				items, _ := out[tt.list].([]any)
				if code != 200 || len(items) != 1 {
					t.Fatalf("GET %s/%s: %d %v, want the one created", path, tt.list, code, out)
				}
				etag, _ := items[0].(map[string]any)["etag"].(string)
				return etag
			}
			if got := listed(); got != tag {
				t.Fatalf("the list gives %s the etag %q, want GET's %s", id, got, tag)
			}
			if code, out, hdr := f.callIf(t, "POST", item+"/disable", auth, tag, nil); code != 200 || hdr.Get("ETag") == tag {
				t.Fatalf("disable with the listed etag: %d %v, ETag %s; want made, with a new ETag", code, out, hdr.Get("ETag"))
			}
			if now := listed(); now == tag {
				t.Fatalf("the list's etag %s unchanged by a disable", now)
			}
			if code, out, _ := f.callIf(t, "POST", item+"/enable", auth, tag, nil); code != 412 || out["error"] != admin.ErrPreconditionFailed {
				t.Fatalf("enable with the etag listed before the disable: %d %v, want 412", code, out)
			}
		})
	}
}
