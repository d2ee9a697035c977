package admin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// A put of users replaces each one's suspended flag, so its audit event
// names the users whose flag it changed: re-importing an old export
// unsuspends users as visibly as an explicit unsuspend does. The emails
// are listed up to admin.MaxAuditFlips, and counted.
func TestPutUsersAuditsFlips(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	if status, out, _ := f.call(t, "POST", "/v1/orgs", auth, map[string]string{"domain": "example.com"}); status != 201 {
		t.Fatalf("creating the organization: %d %v", status, out)
	}
	email := func(i int) string { return fmt.Sprintf("u%02d@example.com", i) }
	// 30 users, all active: the directory's export.
	export := admin.UsersRequest{}
	for i := range 30 {
		export.Users = append(export.Users, admin.UserInput{Email: email(i)})
	}
	suspended := func(n int) admin.UsersRequest { // the export with the first n suspended
		in := admin.UsersRequest{Users: append([]admin.UserInput(nil), export.Users...)}
		for i := range n {
			in.Users[i].Suspended = true
		}
		return in
	}
	emails := func(from, to int) string {
		var e []string
		for i := from; i < to; i++ {
			e = append(e, email(i))
		}
		return strings.Join(e, " ")
	}
	tests := []struct {
		name, path string
		body       any
		want       map[string]string // "" must be absent
	}{
		{"new users", "/v1/users", export, map[string]string{"count": "30", "unsuspended": "", "newly_suspended": ""}},
		{"suspending 2", "/v1/orgs/example.com/users", suspended(2),
			map[string]string{"count": "30", "newly_suspended": "2", "newly_suspended_emails": emails(0, 2), "unsuspended": ""}},
		{"the same again", "/v1/users", suspended(2), map[string]string{"count": "30", "unsuspended": "", "newly_suspended": ""}},
		{"re-importing the export", "/v1/users", export,
			map[string]string{"count": "30", "unsuspended": "2", "unsuspended_emails": emails(0, 2), "newly_suspended": ""}},
		{"suspending 25", "/v1/users", suspended(25),
			map[string]string{"newly_suspended": "25", "newly_suspended_emails": emails(0, admin.MaxAuditFlips)}},
		{"one user unsuspended by a put", "/v1/users", usersBody(email(3)),
			map[string]string{"count": "1", "email": email(3), "suspended": "false", "unsuspended": "1", "unsuspended_emails": email(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, out, _ := f.call(t, "POST", tt.path, auth, tt.body); status != 200 {
				t.Fatalf("POST %s: %d %v", tt.path, status, out)
			}
			evs, err := f.store.ListAuditEvents(ctx, storage.AuditFilter{Newest: true, Limit: 1})
			if err != nil || len(evs) != 1 || !strings.HasPrefix(evs[0].Action, "user.") {
				t.Fatalf("the last event: %+v, %v; want the put's", evs, err)
			}
			for k, v := range tt.want {
				if got, ok := evs[0].Data[k]; got != v || (v == "") == ok {
					t.Errorf("data[%s] = %q (present %v), want %q", k, got, ok, v)
				}
			}
		})
	}
}
