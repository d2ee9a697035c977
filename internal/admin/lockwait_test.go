package admin_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// An admin change that waits on a lock another session holds (a psql
// session with an account's row locked, say) is given up and answered
// 503, instead of waiting as long as the lock is held: no client deadline
// reaches the server, and the server's write timeout does not end the
// request, only its answer.
func TestChangeLockWaitIsBounded(t *testing.T) {
	admin.SetRequestTimeout(t, 200*time.Millisecond)
	dsn := pgtest.SchemaDSN(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixtureOn(t, st)
	job, err := f.srv.Admin.CreateAccount(ctx, admin.Actor{ID: "t"}, admin.AccountInput{Name: "job", Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", job.ID); err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	type answer struct {
		code int
		out  map[string]any
	}
	done := make(chan answer, 1)
	go func() {
		code, out, _ := f.call(t, "POST", "/v1/service-accounts/"+job.Email+"/disable", auth, nil)
		done <- answer{code, out}
	}()
	var a answer
	select {
	case a = <-done:
	case <-time.After(time.Minute):
		tx.Rollback()
		t.Fatal("the disable still waits for the row lock after a minute")
	}
	if a.code != 503 || a.out["error"] != "temporarily_unavailable" {
		t.Errorf("disable of a locked account = %d %v, want 503 temporarily_unavailable", a.code, a.out)
	}
	// The change was not made, and is made once the lock is gone.
	tx.Rollback()
	got, err := st.GetAccount(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Disabled {
		t.Error("the account was disabled by a request answered 503")
	}
	if code, out, _ := f.call(t, "POST", "/v1/service-accounts/"+job.Email+"/disable", auth, nil); code != 200 {
		t.Errorf("disable once the lock is gone = %d %v", code, out)
	}
}
