package admin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// secretCapFixture is an account with no secrets, and the admin API's
// calls on them.
type secretCapFixture struct {
	*fixture
	email, base, auth string
}

func newSecretCapFixture(t *testing.T) secretCapFixture {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	if status, out, _ := f.call(t, "POST", "/v1/service-accounts", auth, admin.AccountInput{Name: "job", Project: "shop"}); status != 201 {
		t.Fatalf("creating the account: %d %v", status, out)
	}
	const email = "job@shop.iam.test"
	return secretCapFixture{f, email, "/v1/service-accounts/" + email + "/secrets", auth}
}

// create creates a secret and returns its ID.
func (f secretCapFixture) create(t *testing.T) string {
	t.Helper()
	status, out, _ := f.call(t, "POST", f.base, f.auth, nil)
	if status != 201 {
		t.Fatalf("creating a secret: %d %v", status, out)
	}
	return out["secret_id"].(string)
}

// set disables or enables the secret id and returns the status and body.
func (f secretCapFixture) set(t *testing.T, id string, disabled bool) (int, map[string]any) {
	t.Helper()
	action := "enable"
	if disabled {
		action = "disable"
	}
	status, out, _ := f.call(t, "POST", f.base+"/"+id+"/"+action, f.auth, nil)
	return status, out
}

// refused fails unless status and out are a 409 conflict whose
// description says each of wants.
func refused(t *testing.T, what string, status int, out map[string]any, wants ...string) {
	t.Helper()
	desc, _ := out["error_description"].(string)
	for _, want := range wants {
		if status != 409 || out["error"] != admin.ErrConflict || !strings.Contains(desc, want) {
			t.Fatalf("%s: %d %v, want 409 conflict saying %q", what, status, out, want)
		}
	}
}

// states lists the account's secrets as ID=on or ID=off.
func (f secretCapFixture) states(t *testing.T) []string {
	t.Helper()
	secs, err := f.store.ListSecrets(context.Background(), mustAccount(t, f.fixture, f.email).ID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sec := range secs {
		state := "on"
		if sec.Disabled {
			state = "off"
		}
		out = append(out, sec.ID+"="+state)
	}
	return out
}

// An account has at most admin.MaxActiveSecrets active secrets: creating
// one more is 409, and so is enabling a disabled one, which once made a
// third (disable one of two, create another, enable the first). Enabling
// an enabled secret, or an expired one, adds no active secret and is
// allowed; an account over the cap from before keeps its secrets.
func TestActiveSecretsCap(t *testing.T) {
	f := newSecretCapFixture(t)
	ctx := context.Background()
	capWords := []string{f.email, fmt.Sprintf("already has %d active", admin.MaxActiveSecrets), fmt.Sprintf("at most %d at once", admin.MaxActiveSecrets)}
	first, second := f.create(t), f.create(t)
	status, out, _ := f.call(t, "POST", f.base, f.auth, nil)
	refused(t, "creating a third active secret", status, out, append(capWords, "try again")...)

	if status, out := f.set(t, first, true); status != 200 {
		t.Fatalf("disabling %s: %d %v", first, status, out)
	}
	third := f.create(t)
	status, out = f.set(t, first, false)
	refused(t, "enabling a third active secret", status, out, append(capWords, "enable the secret "+first+" again")...)
	if got, want := strings.Join(f.states(t), " "), first+"=off "+second+"=on "+third+"=on"; got != want {
		t.Fatalf("after the refused enabling: %s, want %s", got, want)
	}

	// Enabling an enabled secret changes nothing and is not refused.
	if status, out := f.set(t, second, false); status != 200 {
		t.Fatalf("enabling the enabled %s at the cap: %d %v, want 200", second, status, out)
	}
	// A disabled secret that has expired stays inactive when enabled.
	a := mustAccount(t, f.fixture, f.email)
	ev := storage.AuditEvent{Time: f.now, Action: "secret.create", Outcome: storage.OutcomeSuccess}
	expired := storage.Secret{ID: "0000000000expired", AccountID: a.ID, Hash: []byte("h"), Hint: "kw_…x", Disabled: true,
		ExpiresAt: time.Now().Add(-time.Hour), CreatedAt: f.now.Add(time.Second)}
	if err := f.store.CreateSecret(ctx, expired, nil, ev); err != nil {
		t.Fatal(err)
	}
	if status, out := f.set(t, expired.ID, false); status != 200 {
		t.Fatalf("enabling an expired secret at the cap: %d %v, want 200", status, out)
	}

	// Disabling one makes room for another.
	if status, out := f.set(t, third, true); status != 200 {
		t.Fatalf("disabling %s: %d %v", third, status, out)
	}
	if status, out := f.set(t, first, false); status != 200 {
		t.Fatalf("enabling %s with room for it: %d %v, want 200", first, status, out)
	}

	// Over the cap from before it: the secrets stay enabled; enabling or
	// creating one more is refused, with the count as it is.
	over := storage.Secret{ID: "0000000000000over", AccountID: a.ID, Hash: []byte("o"), Hint: "kw_…o", CreatedAt: f.now.Add(2 * time.Second)}
	if err := f.store.CreateSecret(ctx, over, nil, ev); err != nil {
		t.Fatal(err)
	}
	status, out = f.set(t, third, false)
	refused(t, "enabling a fourth active secret", status, out, fmt.Sprintf("already has %d active", admin.MaxActiveSecrets+1))
	status, out, _ = f.call(t, "POST", f.base, f.auth, nil)
	refused(t, "creating a fourth active secret", status, out, fmt.Sprintf("already has %d active", admin.MaxActiveSecrets+1))
	if status, out := f.set(t, over.ID, false); status != 200 {
		t.Fatalf("enabling the enabled %s over the cap: %d %v, want 200", over.ID, status, out)
	}
}

// An account has at most admin.MaxSecrets secrets, disabled and expired
// ones included: each is compared at authentication and cached with the
// account. Creating one more is 409, naming the cap and how to make room;
// disabling does not make room, deleting does. An account that has more
// (from before the cap) keeps them, and is refused until it is under it.
func TestSecretsCap(t *testing.T) {
	f := newSecretCapFixture(t)
	ctx := context.Background()
	var ids []string
	for range admin.MaxSecrets {
		id := f.create(t)
		if status, out := f.set(t, id, true); status != 200 {
			t.Fatalf("disabling %s: %d %v", id, status, out)
		}
		ids = append(ids, id)
	}
	full := func(t *testing.T, have int) {
		t.Helper()
		status, out, _ := f.call(t, "POST", f.base, f.auth, nil)
		refused(t, fmt.Sprintf("creating a secret at %d", have), status, out, f.email, fmt.Sprintf("already has %d secrets", have),
			fmt.Sprintf("at most %d", admin.MaxSecrets), "keyward secrets delete "+f.email)
		if n := len(f.states(t)); n != have {
			t.Fatalf("after the refusal: %d secrets, want %d", n, have)
		}
	}
	full(t, admin.MaxSecrets) // none active

	if status, out, _ := f.call(t, "DELETE", f.base+"/"+ids[0], f.auth, nil); status != 204 {
		t.Fatalf("deleting a secret: %d %v", status, out)
	}
	f.create(t)

	// Over the cap from before it.
	a := mustAccount(t, f.fixture, f.email)
	for _, id := range []string{"00000000000over1", "00000000000over2"} {
		sec := storage.Secret{ID: id, AccountID: a.ID, Hash: []byte(id), Hint: "kw_…x", Disabled: true, CreatedAt: f.now}
		if err := f.store.CreateSecret(ctx, sec, nil, storage.AuditEvent{Time: f.now, Action: "secret.create", Outcome: storage.OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	if status, out, _ := f.call(t, "GET", f.base, f.auth, nil); status != 200 || len(out["secrets"].([]any)) != admin.MaxSecrets+2 {
		t.Fatalf("listing %d secrets: %d %v", admin.MaxSecrets+2, status, out)
	}
	full(t, admin.MaxSecrets+2)
	if status, out, _ := f.call(t, "DELETE", f.base+"/00000000000over1", f.auth, nil); status != 204 {
		t.Fatalf("deleting a secret: %d %v", status, out)
	}
	full(t, admin.MaxSecrets+1)
	// Enabling adds no secret: the total cap does not refuse it.
	if status, out := f.set(t, "00000000000over2", false); status != 200 {
		t.Fatalf("enabling a secret over the total cap: %d %v, want 200", status, out)
	}
}
