package postgres_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// pgxConn is what the pgx database/sql connection implements.
type pgxConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.QueryerContext
	driver.ExecerContext
	driver.NamedValueChecker
	driver.Pinger
	driver.SessionResetter
}

// recorder is a database/sql connector over pgx that records the queries
// run through it.
type recorder struct {
	dsn     string
	db      *sql.DB // over it
	mu      sync.Mutex
	queries []*query
}

// query is a query run, its arguments and the first column of each row
// it returned, in order.
type query struct {
	text  string
	args  []driver.NamedValue
	first []string
}

func (r *recorder) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := stdlib.GetDefaultDriver().Open(r.dsn)
	if err != nil {
		return nil, err
	}
	pc, ok := c.(pgxConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("a pgx connection %T lacks a method of pgxConn", c)
	}
	return recordingConn{pc, r}, nil
}

func (r *recorder) Driver() driver.Driver { return stdlib.GetDefaultDriver() }

// take returns the queries recorded since the last call.
func (r *recorder) take() []*query {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queries
	r.queries = nil
	return q
}

type recordingConn struct {
	pgxConn
	r *recorder
}

func (c recordingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	rec := &query{text: q, args: args}
	c.r.mu.Lock()
	c.r.queries = append(c.r.queries, rec)
	c.r.mu.Unlock()
	rows, err := c.pgxConn.QueryContext(ctx, q, args)
	if err != nil {
		return nil, err
	}
	return recordingRows{rows, c.r, rec}, nil
}

func (c recordingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.r.mu.Lock()
	c.r.queries = append(c.r.queries, &query{text: q, args: args})
	c.r.mu.Unlock()
	return c.pgxConn.ExecContext(ctx, q, args)
}

func (c recordingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	st, err := c.pgxConn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	ps, ok := st.(preparedStmt)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("a pgx statement %T lacks a method of preparedStmt", st)
	}
	return recordingStmt{ps, c.r, q}, nil
}

// preparedStmt is what a pgx database/sql prepared statement implements.
type preparedStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// recordingStmt records each run of a prepared statement as a query.
type recordingStmt struct {
	preparedStmt
	r    *recorder
	text string
}

func (st recordingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	st.r.mu.Lock()
	st.r.queries = append(st.r.queries, &query{text: st.text, args: args})
	st.r.mu.Unlock()
	return st.preparedStmt.ExecContext(ctx, args)
}

func (st recordingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	rec := &query{text: st.text, args: args}
	st.r.mu.Lock()
	st.r.queries = append(st.r.queries, rec)
	st.r.mu.Unlock()
	rows, err := st.preparedStmt.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	return recordingRows{rows, st.r, rec}, nil
}

// recordingRows notes the first column of each row read.
type recordingRows struct {
	driver.Rows
	r *recorder
	q *query
}

func (rs recordingRows) Next(dest []driver.Value) error {
	err := rs.Rows.Next(dest)
	if err == nil && len(dest) > 0 {
		rs.r.mu.Lock()
		rs.q.first = append(rs.q.first, fmt.Sprint(dest[0]))
		rs.r.mu.Unlock()
	}
	return err
}

// PutProjectOrg locks each organization it changes once, the one it
// places the project in as well as the one a move takes it out of: a
// second lock of a row the transaction holds is a wasted round trip.
func TestPutProjectOrgLocksEachOrgOnce(t *testing.T) {
	ctx := context.Background()
	rec, s := recordingStore(t)
	ev := storage.AuditEvent{Time: time.Now(), Action: "test", Outcome: storage.OutcomeSuccess}
	for _, d := range []string{"a.example", "b.example"} {
		if err := s.CreateOrg(ctx, storage.Org{Domain: d, CreatedAt: time.Now()}, ev); err != nil {
			t.Fatal(err)
		}
	}
	check := func(storage.Org, []storage.ProjectOrg) error { return nil }
	tests := []struct {
		name  string
		p     storage.ProjectOrg
		check func(storage.Org, []storage.ProjectOrg) error
		want  []string // the organizations locked, in order
	}{
		{"placed", storage.ProjectOrg{Project: "shop", Org: "b.example"}, check, []string{"b.example"}},
		{"placed again", storage.ProjectOrg{Project: "shop", Org: "b.example", Internal: true}, check, []string{"b.example"}},
		{"moved", storage.ProjectOrg{Project: "shop", Org: "a.example"}, check, []string{"a.example", "b.example"}},
		{"moved back, unchecked", storage.ProjectOrg{Project: "shop", Org: "b.example"}, nil, []string{"a.example", "b.example"}},
	}
	lockOrg := "FROM orgs WHERE domain = $1 FOR UPDATE"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.take()
			if err := s.PutProjectOrg(ctx, tt.p, tt.check, ev); err != nil {
				t.Fatal(err)
			}
			var locked []string
			for _, q := range rec.take() {
				if strings.HasSuffix(q.text, lockOrg) && len(q.args) == 1 {
					locked = append(locked, fmt.Sprint(q.args[0].Value))
				}
			}
			if !slices.Equal(locked, tt.want) {
				t.Errorf("locked %v (queries ending %q), want %v: each once, in the order of their domains", locked, lockOrg, tt.want)
			}
			if p, err := s.GetProjectOrg(ctx, "shop"); err != nil || p != tt.p {
				t.Errorf("shop is %+v (%v), want %+v", p, err, tt.p)
			}
		})
	}
}

// recordingStore opens a store on a migrated schema of its own through a
// recorder of the queries it runs.
func recordingStore(t *testing.T) (*recorder, storage.Storage) {
	t.Helper()
	dsn := pgtest.SchemaDSN(t)
	migrated, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	migrated.Close()
	rec := &recorder{dsn: dsn}
	db := sql.OpenDB(rec)
	rec.db = db
	t.Cleanup(func() { db.Close() })
	s := postgres.NewOn(db)
	t.Cleanup(func() { s.Close() })
	return rec, s
}

// PutUsers takes its shares of the organizations' rows a few hundred a
// statement, not one statement each, and still in the order of their
// domains' bytes: the order every other change locks them in.
func TestPutUsersSharesOrgsInFewStatements(t *testing.T) {
	ctx := context.Background()
	rec, s := recordingStore(t)
	// The domains in a collation that is not byte order, if the server
	// has ICU's, and domains whose order it changes.
	if _, err := rec.db.ExecContext(ctx, `ALTER TABLE orgs ALTER COLUMN domain TYPE text COLLATE "en-x-icu"`); err != nil {
		t.Logf("orgs.domain keeps the database's collation: %v", err)
	}
	ev := storage.AuditEvent{Time: time.Now(), Action: "test", Outcome: storage.OutcomeSuccess}
	var users []storage.User
	var orgs []string
	var bulk storage.Bulk // the organizations in one transaction, not one each
	for i := range 1200 {
		d := fmt.Sprintf("o%03d%s.test", i/3, []string{"-a", "_a", "a"}[i%3])
		orgs = append(orgs, d)
		bulk.Orgs = append(bulk.Orgs, storage.Org{Domain: d, CreatedAt: time.Now()})
		users = append(users, storage.User{Email: "u@" + d, Org: d, CreatedAt: time.Now()})
	}
	if err := s.Load(ctx, bulk, []storage.AuditEvent{ev}); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(users)
	rec.take()
	if err := s.PutUsers(ctx, users, storage.SameEvent(ev)); err != nil {
		t.Fatal(err)
	}
	var statements int
	var shared []string
	for _, q := range rec.take() {
		if !strings.Contains(q.text, "FROM orgs") || !strings.HasSuffix(q.text, "FOR KEY SHARE") {
			continue
		}
		statements++
		shared = append(shared, q.first...) // each row locked as it is returned
	}
	slices.Sort(orgs)
	if statements == 0 || statements > len(orgs)/100 {
		t.Errorf("%d statements took shares of %d organizations, want a few", statements, len(orgs))
	}
	if !slices.Equal(shared, orgs) {
		t.Errorf("shares taken of %d organizations (%v…), want each of the %d once, in the order of their bytes (%v…)",
			len(shared), shared[:min(6, len(shared))], len(orgs), orgs[:6])
	}
}

// TouchSecrets updates the secrets' rows in the order of their IDs, not
// in the map's random order: two replicas flushing the last uses of the
// same secrets at once would otherwise lock them in opposite orders, a
// deadlock that fails one of them.
func TestTouchSecretsInIDOrder(t *testing.T) {
	ctx := context.Background()
	rec, s := recordingStore(t)
	lastUsed := map[string]time.Time{}
	var ids []string
	for i := range 40 {
		id := fmt.Sprintf("secret-%02d", i)
		ids = append(ids, id)
		lastUsed[id] = time.Now()
	}
	rec.take()
	if err := s.TouchSecrets(ctx, lastUsed); err != nil {
		t.Fatal(err)
	}
	var touched []string
	for _, q := range rec.take() {
		if strings.HasPrefix(q.text, "UPDATE secrets SET last_used_at") && len(q.args) == 3 {
			touched = append(touched, fmt.Sprint(q.args[1].Value))
		}
	}
	if !slices.Equal(touched, ids) {
		t.Errorf("secrets touched in the order %v, want %v", touched, ids)
	}
}

// Load puts its users in the order of their emails' bytes, the order
// PutUsers and DeleteOrg lock users' rows in, whatever order the bulk
// gives them in (an export's is organization by organization).
func TestLoadPutsUsersInEmailOrder(t *testing.T) {
	ctx := context.Background()
	rec, s := recordingStore(t)
	b := storage.Bulk{Orgs: []storage.Org{{Domain: "a.example", CreatedAt: time.Now()}, {Domain: "b.example", CreatedAt: time.Now()}}}
	var want []string
	for _, e := range []string{"z@a.example", "x-y@a.example", "xy@a.example", "x_y@b.example", "a@b.example"} {
		b.Users = append(b.Users, storage.User{Email: e, Org: e[strings.IndexByte(e, '@')+1:], CreatedAt: time.Now()})
		want = append(want, e)
	}
	slices.Sort(want)
	rec.take()
	if err := s.Load(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	var put []string
	for _, q := range rec.take() {
		if strings.HasPrefix(q.text, "INSERT INTO org_users") {
			for i := 0; i < len(q.args); i += 4 {
				put = append(put, fmt.Sprint(q.args[i].Value))
			}
		}
	}
	if !slices.Equal(put, want) {
		t.Errorf("users put in the order %v, want %v", put, want)
	}
}

// DeleteAccount locks the APIs it takes the account out of as an
// introspector in the order of their names' bytes, the order Go sorts
// them in, whatever the column's collation.
func TestDeleteAccountLocksAPIsInByteOrder(t *testing.T) {
	ctx := context.Background()
	rec, s := recordingStore(t)
	if _, err := rec.db.ExecContext(ctx, `ALTER TABLE apis ALTER COLUMN name TYPE text COLLATE "en-x-icu"`); err != nil {
		t.Skipf("apis.name keeps the database's collation, byte order here: %v", err)
	}
	ev := storage.AuditEvent{Time: time.Now(), Action: "test", Outcome: storage.OutcomeSuccess}
	a := storage.Account{ID: "100000000000000000001", Email: "a@p.example", Name: "a", Project: "p", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.CreateAccount(ctx, a, ev); err != nil {
		t.Fatal(err)
	}
	names := []string{"o-a", "o_a", "oa", "Ob", "ob"}
	for i, n := range names {
		api := storage.API{Name: n, Identifier: fmt.Sprintf("https://api%d.example", i), Scopes: []string{fmt.Sprintf("s%d.read", i)},
			Introspectors: []string{a.ID}, CreatedAt: time.Now()}
		if err := s.CreateAPI(ctx, api, ev); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(names)
	rec.take()
	if err := s.DeleteAccount(ctx, a.ID, nil, ev); err != nil {
		t.Fatal(err)
	}
	var locked []string
	for _, q := range rec.take() {
		if strings.Contains(q.text, "FROM apis") && strings.HasSuffix(q.text, "FOR UPDATE") {
			locked = append(locked, q.first...)
		}
	}
	if !slices.Equal(locked, names) {
		t.Errorf("APIs locked in the order %v, want %v: the order of their bytes", locked, names)
	}
}

// PutUsers upserts its users a few hundred a statement, not one statement
// each (most of a large put's time), each email once (one statement
// cannot change a row twice), in the order of their bytes.
func TestPutUsersInFewStatements(t *testing.T) {
	ctx := context.Background()
	rec, s := recordingStore(t)
	ev := storage.AuditEvent{Time: time.Now(), Action: "test", Outcome: storage.OutcomeSuccess}
	if err := s.CreateOrg(ctx, storage.Org{Domain: "a.example", CreatedAt: time.Now()}, ev); err != nil {
		t.Fatal(err)
	}
	var users []storage.User
	var emails []string
	for i := range 1200 {
		e := fmt.Sprintf("u%03d%s@a.example", i/3, []string{"-a", "_a", "a"}[i%3])
		emails = append(emails, e)
		users = append(users, storage.User{Email: e, Org: "a.example", CreatedAt: time.Now()})
	}
	users = append(users, users...) // each twice
	slices.Reverse(users)
	slices.Sort(emails)
	rec.take()
	if err := s.PutUsers(ctx, users, storage.SameEvent(ev)); err != nil {
		t.Fatal(err)
	}
	var statements int
	var put []string
	for _, q := range rec.take() {
		if strings.HasPrefix(q.text, "INSERT INTO org_users") {
			statements++
			for i := 0; i < len(q.args); i += 4 {
				put = append(put, fmt.Sprint(q.args[i].Value))
			}
		}
	}
	if statements == 0 || statements > len(users)/100 {
		t.Errorf("%d statements put %d users, want a few", statements, len(users))
	}
	if !slices.Equal(put, emails) {
		t.Errorf("put %d users (%v…), want each of the %d emails once, in the order of their bytes (%v…)",
			len(put), put[:min(6, len(put))], len(emails), emails[:6])
	}
}
