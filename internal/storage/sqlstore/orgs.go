package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"

	"github.com/keyward/keyward/internal/storage"
)

func init() {
	for k, v := range map[string]string{
		"insertOrg": `INSERT INTO orgs (domain, blocked_scopes, created_at) VALUES (?, ?, ?)`,
		"getOrg":    `SELECT domain, blocked_scopes, created_at FROM orgs WHERE domain = ?`,
		"getOrgs":   `SELECT domain, blocked_scopes, created_at FROM orgs WHERE domain ` + inOrgs,
		"getOrgProjects": `SELECT o.domain, o.blocked_scopes, o.created_at, p.project, p.internal
			FROM orgs o LEFT JOIN project_orgs p ON p.org = o.domain WHERE o.domain = ? ORDER BY p.project`,
		"listOrgs":          `SELECT domain, blocked_scopes, created_at FROM orgs ORDER BY domain`,
		"updateOrg":         `UPDATE orgs SET blocked_scopes = ? WHERE domain = ?`,
		"deleteOrgUsers":    `DELETE FROM org_users WHERE org = ?`,
		"deleteOrgProjects": `DELETE FROM project_orgs WHERE org = ?`,
		"deleteOrgGrants":   `DELETE FROM delegation_grants WHERE org = ?`,
		"deleteOrg":         `DELETE FROM orgs WHERE domain = ?`,
		"getUser":           `SELECT email, org, suspended, created_at FROM org_users WHERE email = ?`,
		"updateUser":        `UPDATE org_users SET suspended = ? WHERE email = ?`,
		"listUsers":         `SELECT email, org, suspended, created_at FROM org_users WHERE org = ? AND email > ? ORDER BY email LIMIT ?`,
		"deleteUser":        `DELETE FROM org_users WHERE email = ?`,
		"insertProjectOrg":  `INSERT INTO project_orgs (project, org, internal) VALUES (?, ?, ?) ON CONFLICT (project) DO NOTHING`,
		"putProjectOrg":     `INSERT INTO project_orgs (project, org, internal) VALUES (?, ?, ?) ON CONFLICT (project) DO UPDATE SET org = excluded.org, internal = excluded.internal`,
		"getProjectOrg":     `SELECT project, org, internal FROM project_orgs WHERE project = ?`,
		"listProjectOrgs":   `SELECT project, org, internal FROM project_orgs WHERE org = ? ORDER BY project`,
		"deleteProjectOrg":  `DELETE FROM project_orgs WHERE project = ? AND org = ?`,
		"putGrant":          `INSERT INTO delegation_grants (org, client_id, scopes, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (org, client_id) DO UPDATE SET scopes = excluded.scopes`,
		"getGrant":          `SELECT org, client_id, scopes, created_at FROM delegation_grants WHERE org = ? AND client_id = ?`,
		"listGrants":        `SELECT org, client_id, scopes, created_at FROM delegation_grants WHERE org = ? ORDER BY client_id`,
		"deleteGrant":       `DELETE FROM delegation_grants WHERE org = ? AND client_id = ?`,
	} {
		queries[k] = v
	}
}

func scanOrg(row scanner) (storage.Org, error) {
	var (
		o       storage.Org
		blocked string
		created int64
	)
	if err := row.Scan(&o.Domain, &blocked, &created); err != nil {
		return o, err
	}
	o.CreatedAt = fromMicros(created)
	var err error
	o.BlockedScopes, err = decodeList(blocked)
	return o, err
}

// CreateOrg implements storage.Storage.
func (s *Store) CreateOrg(ctx context.Context, o storage.Org, ev storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.insertOrg(ctx, tx, o) }, ev)
}

func (s *Store) insertOrg(ctx context.Context, tx *sql.Tx, o storage.Org) error {
	_, err := tx.ExecContext(ctx, s.q["insertOrg"], o.Domain, encodeList(o.BlockedScopes), micros(o.CreatedAt))
	return s.wrap("create org", err)
}

// GetOrg implements storage.Storage.
func (s *Store) GetOrg(ctx context.Context, domain string) (storage.Org, error) {
	o, err := scanOrg(s.queryRow(ctx, "getOrg", domain))
	return o, s.wrap("get org", err)
}

// orgsPerQuery is how many domains one query of GetOrgs looks up: well
// under SQLite's limit of 32,766 variables a statement, and PostgreSQL's
// of 65,535.
const orgsPerQuery = 500

// inOrgs is the IN list of a query that reads orgsPerQuery organizations.
var inOrgs = `IN (` + strings.Repeat("?, ", orgsPerQuery-1) + `?)`

// orgChunks yields domains, sorted and each given once, orgsPerQuery at a
// time, each chunk with the arguments of an inOrgs query for it: the last
// chunk is padded with its last domain, which names no other row. The
// arguments are reused from one chunk to the next.
func orgChunks(domains []string) iter.Seq2[[]string, []any] {
	return func(yield func([]string, []any) bool) {
		args := make([]any, orgsPerQuery)
		for chunk := range slices.Chunk(domains, orgsPerQuery) {
			for i := range args {
				args[i] = chunk[min(i, len(chunk)-1)]
			}
			if !yield(chunk, args) {
				return
			}
		}
	}
}

// GetOrgs implements storage.Storage: one prepared query per
// orgsPerQuery domains, the last chunk padded with its last domain.
func (s *Store) GetOrgs(ctx context.Context, domains []string) ([]storage.Org, error) {
	domains = slices.Clone(domains)
	slices.Sort(domains)
	domains = slices.Compact(domains)
	out := make([]storage.Org, 0, len(domains))
	for _, args := range orgChunks(domains) {
		if err := s.getOrgs(ctx, args, &out); err != nil {
			return nil, s.wrap("get orgs", err)
		}
	}
	slices.SortFunc(out, func(a, b storage.Org) int { return strings.Compare(a.Domain, b.Domain) })
	return out, nil
}

// getOrgs appends the organizations of the getOrgs query with args to out.
func (s *Store) getOrgs(ctx context.Context, args []any, out *[]storage.Org) error {
	rows, err := s.query(ctx, "getOrgs", args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return err
		}
		*out = append(*out, o)
	}
	return rows.Err()
}

// GetOrgProjects implements storage.Storage. One statement reads both,
// so both backends read them from one snapshot.
func (s *Store) GetOrgProjects(ctx context.Context, domain string) (storage.Org, []storage.ProjectOrg, error) {
	rows, err := s.query(ctx, "getOrgProjects", domain)
	if err != nil {
		return storage.Org{}, nil, s.wrap("get org", err)
	}
	defer rows.Close()
	var (
		o        storage.Org
		projects []storage.ProjectOrg
		found    bool
	)
	for rows.Next() {
		var (
			blocked  string
			created  int64
			project  sql.NullString
			internal sql.NullInt64
		)
		if err := rows.Scan(&o.Domain, &blocked, &created, &project, &internal); err != nil {
			return storage.Org{}, nil, s.wrap("get org", err)
		}
		if !found {
			found = true
			o.CreatedAt = fromMicros(created)
			if o.BlockedScopes, err = decodeList(blocked); err != nil {
				return storage.Org{}, nil, s.wrap("get org", err)
			}
		}
		if project.Valid {
			projects = append(projects, storage.ProjectOrg{Project: project.String, Org: o.Domain, Internal: internal.Int64 != 0})
		}
	}
	if err := rows.Err(); err != nil {
		return storage.Org{}, nil, s.wrap("get org", err)
	}
	if !found {
		return storage.Org{}, nil, s.wrap("get org", sql.ErrNoRows)
	}
	return o, projects, nil
}

// ListOrgs implements storage.Storage.
func (s *Store) ListOrgs(ctx context.Context) ([]storage.Org, error) {
	rows, err := s.query(ctx, "listOrgs")
	if err != nil {
		return nil, s.wrap("list orgs", err)
	}
	defer rows.Close()
	var out []storage.Org
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, s.wrap("list orgs", err)
		}
		out = append(out, o)
	}
	return out, s.wrap("list orgs", rows.Err())
}

// UpdateOrg implements storage.Storage. Only BlockedScopes changes.
func (s *Store) UpdateOrg(ctx context.Context, domain string, fn func(storage.Org, []storage.ProjectOrg) (storage.Org, error), ev storage.AuditEvent) (storage.Org, []storage.ProjectOrg, error) {
	var (
		out      storage.Org
		projects []storage.ProjectOrg
	)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		old, err := scanOrg(tx.QueryRowContext(ctx, s.q["getOrgForUpdate"], domain))
		if err != nil {
			return s.wrap("update org", err)
		}
		// Read after the row is locked, each project as committed last:
		// with the row unchanged since, fn is given the state as it is.
		if projects, err = s.projectOrgs(ctx, tx, domain); err != nil {
			return s.wrap("update org", err)
		}
		o, err := fn(old, projects)
		if err != nil {
			return err
		}
		if o.Domain != old.Domain {
			return fmt.Errorf("update org %s: the domain cannot change", domain)
		}
		if _, err := tx.ExecContext(ctx, s.q["updateOrg"], encodeList(o.BlockedScopes), domain); err != nil {
			return s.wrap("update org", err)
		}
		out = o
		return s.notify(ctx, tx, storage.ChangeAll)
	}, ev)
	if err != nil {
		return storage.Org{}, nil, err
	}
	return out, projects, nil
}

// DeleteOrg implements storage.Storage.
func (s *Store) DeleteOrg(ctx context.Context, domain string, check func(storage.Org, []storage.ProjectOrg) error, ev storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		// The organization's row first, as every change of its projects
		// locks it before a project's row: locked after deleting its
		// projects, it would deadlock with a placement in it that holds
		// the row and waits for a project's. check is given the projects
		// read once it is locked, which no placement can change until
		// this commits.
		if err := s.lockOrgProjects(ctx, tx, "delete org", domain, check); err != nil {
			return err
		}
		// Its users' rows in the order of their emails' bytes (ByteOrder,
		// whatever the column's collation), the order PutUsers locks them
		// in: a put moving users out of the organization takes no lock of
		// it, and deleted in another order, a user the put holds could be
		// waited for while holding one the put waits for.
		if s.d.ForUpdate != "" {
			var n int
			if err := tx.QueryRowContext(ctx, s.q["lockOrgUsers"], domain).Scan(&n); err != nil {
				return s.wrap("delete org", err)
			}
		}
		for _, q := range []string{"deleteOrgUsers", "deleteOrgProjects", "deleteOrgGrants"} {
			if _, err := tx.ExecContext(ctx, s.q[q], domain); err != nil {
				return s.wrap("delete org", err)
			}
		}
		if err := s.execOne(ctx, tx, "delete org", s.q["deleteOrg"], domain); err != nil {
			return err
		}
		return s.notify(ctx, tx, storage.ChangeAll)
	}, ev)
}

func scanUser(row scanner) (storage.User, error) {
	var (
		u         storage.User
		suspended int
		created   int64
	)
	err := row.Scan(&u.Email, &u.Org, &suspended, &created)
	u.Suspended, u.CreatedAt = suspended != 0, fromMicros(created)
	return u, err
}

// PutUsers implements storage.Storage.
//
// Its locks are taken in one order: first a share of each organization's
// row, in the order of their domains' bytes (the share inserting a user
// takes anyway, and which DeleteOrg's lock of the row waits for; a few
// hundred rows a statement, see shareOrgs), then the
// users' rows in the order of their emails. A put that locked an existing
// user's row before its organization's would deadlock with a DeleteOrg
// that holds the organization's row and waits to delete that user; two
// puts that locked the same users in different orders would deadlock with
// each other. A missing organization is ErrNotFound. The users' rows are
// locked, in that order, by the read of their Suspended flags that ev is
// given the changes of, before they are replaced.
func (s *Store) PutUsers(ctx context.Context, users []storage.User, ev storage.UsersEvent) error {
	orgs := make([]string, 0, 1)
	for _, u := range users {
		orgs = append(orgs, u.Org)
	}
	slices.Sort(orgs)
	orgs = slices.Compact(orgs)
	users = lastOfEach(users)
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.shareOrgs(ctx, tx, orgs); err != nil {
			return err
		}
		flipped, err := s.flippedUsers(ctx, tx, users)
		if err != nil {
			return err
		}
		if err := s.putUsers(ctx, tx, users); err != nil {
			return err
		}
		if err := s.notify(ctx, tx, storage.ChangeAll); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, []storage.AuditEvent{ev(flipped)})
	})
}

// flippedUsers locks the stored users of users (sorted by email, each
// once, as lastOfEach leaves them) in the order of their emails and
// returns those of users whose Suspended differs from the stored one's.
// It reads orgsPerQuery emails a statement, with orgChunks.
func (s *Store) flippedUsers(ctx context.Context, tx *sql.Tx, users []storage.User) ([]storage.User, error) {
	emails := make([]string, len(users))
	for i, u := range users {
		emails[i] = u.Email
	}
	var flipped []storage.User
	for _, args := range orgChunks(emails) {
		rows, err := tx.QueryContext(ctx, s.q["lockUsers"], args...)
		if err != nil {
			return nil, s.wrap("put users", err)
		}
		for rows.Next() {
			var (
				email     string
				suspended int64
			)
			if err := rows.Scan(&email, &suspended); err != nil {
				rows.Close()
				return nil, s.wrap("put users", err)
			}
			if i, ok := slices.BinarySearch(emails, email); ok && users[i].Suspended != (suspended != 0) {
				flipped = append(flipped, users[i])
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, s.wrap("put users", err)
		}
	}
	// In the order of their emails' bytes, whatever the database's.
	slices.SortFunc(flipped, func(a, b storage.User) int { return strings.Compare(a.Email, b.Email) })
	return flipped, nil
}

// shareOrgs takes a share of the rows of orgs, sorted and each given
// once, in that order (the order of their bytes: the query orders by
// domain in ByteOrder), orgsPerQuery rows a statement. A missing
// organization is ErrNotFound, naming it.
func (s *Store) shareOrgs(ctx context.Context, tx *sql.Tx, orgs []string) error {
	for chunk, args := range orgChunks(orgs) {
		rows, err := tx.QueryContext(ctx, s.q["lockOrgs"], args...)
		if err != nil {
			return s.wrap("put users", err)
		}
		found := make([]string, 0, len(chunk))
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return s.wrap("put users", err)
			}
			found = append(found, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return s.wrap("put users", err)
		}
		if len(found) == len(chunk) {
			continue
		}
		for _, o := range chunk {
			if !slices.Contains(found, o) {
				return s.wrap("put users: organization "+o, sql.ErrNoRows)
			}
		}
	}
	return nil
}

// putUsers creates or replaces users in the order of their emails'
// bytes, the order PutUsers, Load and DeleteOrg lock users' rows in, so
// that no two of them lock the same users in different orders, with as
// few multi-row upserts as userChunks allow.
func (s *Store) putUsers(ctx context.Context, tx *sql.Tx, users []storage.User) error {
	return inChunks(userChunks, lastOfEach(users), 4, func(args []any, u storage.User) []any {
		return append(args, u.Email, u.Org, boolInt(u.Suspended), micros(u.CreatedAt))
	}, func(n int, args []any) error {
		_, err := tx.ExecContext(ctx, s.q[multiRowName("putUsers", n)], args...)
		return s.wrap("put users", err)
	})
}

// lastOfEach returns users sorted by email, each email once, as putting
// them one by one in the order given would leave them: of an email given
// more than once, the last one given, but created when the first one
// given was (a replacement keeps the creation time). One upsert cannot
// change a row twice on PostgreSQL.
func lastOfEach(users []storage.User) []storage.User {
	users = slices.Clone(users)
	// Stable: of an email given twice, the later one stays later.
	slices.SortStableFunc(users, func(a, b storage.User) int { return strings.Compare(a.Email, b.Email) })
	out := users[:0]
	for _, u := range users {
		if n := len(out); n > 0 && out[n-1].Email == u.Email {
			u.CreatedAt = out[n-1].CreatedAt
			out[n-1] = u
			continue
		}
		out = append(out, u)
	}
	return out
}

// GetUser implements storage.Storage.
func (s *Store) GetUser(ctx context.Context, email string) (storage.User, error) {
	u, err := scanUser(s.queryRow(ctx, "getUser", email))
	return u, s.wrap("get user", err)
}

// UpdateUser implements storage.Storage. Only Suspended changes.
func (s *Store) UpdateUser(ctx context.Context, email string, fn func(storage.User) (storage.User, error), ev storage.AuditEvent) (storage.User, error) {
	var out storage.User
	err := s.tx(ctx, func(tx *sql.Tx) error {
		old, err := scanUser(tx.QueryRowContext(ctx, s.q["getUserForUpdate"], email))
		if err != nil {
			return s.wrap("update user", err)
		}
		u, err := fn(old)
		if err != nil {
			return err
		}
		if u.Email != old.Email || u.Org != old.Org {
			return fmt.Errorf("update user %s: the email and organization cannot change", email)
		}
		if _, err := tx.ExecContext(ctx, s.q["updateUser"], boolInt(u.Suspended), email); err != nil {
			return s.wrap("update user", err)
		}
		out = u
		return s.notify(ctx, tx, storage.ChangeAll)
	}, ev)
	return out, err
}

// ListUsers implements storage.Storage.
func (s *Store) ListUsers(ctx context.Context, org string, opts storage.ListOptions) ([]storage.User, error) {
	rows, err := s.query(ctx, "listUsers", org, opts.After, opts.PageLimit())
	if err != nil {
		return nil, s.wrap("list users", err)
	}
	defer rows.Close()
	var out []storage.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, s.wrap("list users", err)
		}
		out = append(out, u)
	}
	return out, s.wrap("list users", rows.Err())
}

// DeleteUser implements storage.Storage.
func (s *Store) DeleteUser(ctx context.Context, email string, ev storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.execOne(ctx, tx, "delete user", s.q["deleteUser"], email); err != nil {
			return err
		}
		return s.notify(ctx, tx, storage.ChangeAll)
	}, ev)
}

func scanProjectOrg(row scanner) (storage.ProjectOrg, error) {
	var (
		p        storage.ProjectOrg
		internal int
	)
	err := row.Scan(&p.Project, &p.Org, &internal)
	p.Internal = internal != 0
	return p, err
}

// errProjectMoved ends an attempt of PutProjectOrg whose project another
// change placed, moved or removed between reading where it was and
// locking that organization: the attempt is rolled back and made again.
var errProjectMoved = errors.New("the project was moved meanwhile")

// maxPutProjectOrgAttempts bounds PutProjectOrg's attempts: each one after
// the first follows a concurrent change of the same project committed
// meanwhile.
const maxPutProjectOrgAttempts = 10

// PutProjectOrg implements storage.Storage.
//
// A move locks both organizations' rows, the one the project leaves (whose
// projects, and so whose state, change too) and p.Org, in the order of
// their domains, so that two moves in opposite directions wait for each
// other rather than deadlock, and so that no change that locks either
// organization (UpdateOrg, DeleteOrg, another placement) interleaves with
// it. The organization the project is in is read before the locks are
// taken. Once they are held, the project's row is locked and read again
// (waiting for a change of it not yet committed), or, if the project was
// in none, inserted (waiting for a concurrent placement's insert): if it
// is in another organization by then (a concurrent change placed, moved
// or removed the project, or deleted that organization), the attempt is
// rolled back and made again, before check is called. Writing over what
// a placement committed meanwhile instead would move the project out of
// an organization this change never locked.
func (s *Store) PutProjectOrg(ctx context.Context, p storage.ProjectOrg, check func(storage.Org, []storage.ProjectOrg) error, ev storage.AuditEvent) error {
	for range maxPutProjectOrgAttempts {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			from, err := s.projectOrgIn(ctx, tx, "getProjectOrg", p.Project)
			if err != nil {
				return err
			}
			domains := []string{p.Org}
			if from != "" && from != p.Org {
				domains = append(domains, from)
				slices.Sort(domains)
			}
			var to storage.Org // p.Org, as locked
			for _, d := range domains {
				o, err := scanOrg(tx.QueryRowContext(ctx, s.q["getOrgForUpdate"], d))
				if d != p.Org && errors.Is(err, sql.ErrNoRows) {
					return errProjectMoved // deleted, with its projects
				}
				if err != nil {
					return s.wrap("put project org", err)
				}
				if d == p.Org {
					to = o
				}
			}
			if from == "" {
				// No row to lock: insert it now. A concurrent placement's
				// insert is waited for; if it committed, nothing is
				// inserted, and the project is in an organization not
				// locked here.
				res, err := tx.ExecContext(ctx, s.q["insertProjectOrg"], p.Project, p.Org, boolInt(p.Internal))
				if err != nil {
					return s.wrap("put project org", err)
				}
				if n, err := res.RowsAffected(); err != nil {
					return s.wrap("put project org", err)
				} else if n == 0 {
					return errProjectMoved
				}
			} else if now, err := s.projectOrgIn(ctx, tx, "getProjectOrgForUpdate", p.Project); err != nil {
				return err
			} else if now != from {
				return errProjectMoved
			}
			// p.Org is locked already, by the loop above: check is given
			// it and its projects before the change, without one just
			// inserted.
			if check != nil {
				projects, err := s.projectOrgs(ctx, tx, p.Org)
				if err != nil {
					return s.wrap("put project org", err)
				}
				if from == "" {
					projects = slices.DeleteFunc(projects, func(q storage.ProjectOrg) bool { return q.Project == p.Project })
				}
				if err := check(to, projects); err != nil {
					return err
				}
			}
			if from != "" {
				if err := s.putProjectOrg(ctx, tx, p); err != nil {
					return err
				}
			}
			if err := s.notify(ctx, tx, storage.ChangeAll); err != nil {
				return err
			}
			return s.appendAudit(ctx, tx, []storage.AuditEvent{movedFrom(ev, from, p.Org)})
		})
		if !errors.Is(err, errProjectMoved) {
			return err
		}
	}
	return fmt.Errorf("put project org %s: %w %d times; try again", p.Project, errProjectMoved, maxPutProjectOrgAttempts)
}

// movedFrom is ev, the event of a placement of a project in org, with
// moved_from naming the organization from, if the project was moved out
// of it: the event of a move names the organization the project leaves,
// whose projects change too.
func movedFrom(ev storage.AuditEvent, from, org string) storage.AuditEvent {
	if from == "" || from == org {
		return ev
	}
	data := make(map[string]string, len(ev.Data)+1)
	maps.Copy(data, ev.Data)
	data[storage.AuditMovedFrom] = from
	ev.Data = data
	ev.Prepare() // encoded again, with the new data
	return ev
}

// projectOrgIn returns the organization project is placed in, as last
// committed, or "" if it is in none, read with the query named.
func (s *Store) projectOrgIn(ctx context.Context, tx *sql.Tx, query, project string) (string, error) {
	p, err := scanProjectOrg(tx.QueryRowContext(ctx, s.q[query], project))
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return p.Org, s.wrap("put project org", err)
}

// lockOrgProjects locks the row of the organization domain, as UpdateOrg
// does, so that no other change of its projects or its policy that locks
// it too interleaves; a check that is not nil is then called with it and
// the projects placed in it, read once the lock is held, and its error
// ends the change. A missing organization is ErrNotFound; op names the change
// in errors.
func (s *Store) lockOrgProjects(ctx context.Context, tx *sql.Tx, op, domain string, check func(storage.Org, []storage.ProjectOrg) error) error {
	o, err := scanOrg(tx.QueryRowContext(ctx, s.q["getOrgForUpdate"], domain))
	if err != nil {
		return s.wrap(op, err)
	}
	if check == nil {
		return nil
	}
	projects, err := s.projectOrgs(ctx, tx, domain)
	if err != nil {
		return s.wrap(op, err)
	}
	return check(o, projects)
}

func (s *Store) putProjectOrg(ctx context.Context, tx *sql.Tx, p storage.ProjectOrg) error {
	_, err := tx.ExecContext(ctx, s.q["putProjectOrg"], p.Project, p.Org, boolInt(p.Internal))
	return s.wrap("put project org", err)
}

// GetProjectOrg implements storage.Storage.
func (s *Store) GetProjectOrg(ctx context.Context, project string) (storage.ProjectOrg, error) {
	p, err := scanProjectOrg(s.queryRow(ctx, "getProjectOrg", project))
	return p, s.wrap("get project org", err)
}

// ListProjectOrgs implements storage.Storage.
func (s *Store) ListProjectOrgs(ctx context.Context, org string) ([]storage.ProjectOrg, error) {
	out, err := s.projectOrgs(ctx, s.reader(ctx), org)
	return out, s.wrap("list project orgs", err)
}

// projectOrgs returns the projects placed in org, by project.
func (s *Store) projectOrgs(ctx context.Context, q queryer, org string) ([]storage.ProjectOrg, error) {
	rows, err := q.QueryContext(ctx, s.q["listProjectOrgs"], org)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.ProjectOrg
	for rows.Next() {
		p, err := scanProjectOrg(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// DeleteProjectOrg implements storage.Storage.
func (s *Store) DeleteProjectOrg(ctx context.Context, org, project string, check func(storage.Org, []storage.ProjectOrg) error, ev storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		// A project that is not there is ErrNotFound, whatever check
		// would say: it is not called.
		err := s.lockOrgProjects(ctx, tx, "delete project org", org, func(o storage.Org, projects []storage.ProjectOrg) error {
			if !slices.ContainsFunc(projects, func(p storage.ProjectOrg) bool { return p.Project == project }) {
				return s.wrap("delete project org", sql.ErrNoRows)
			}
			if check != nil {
				return check(o, projects)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := s.execOne(ctx, tx, "delete project org", s.q["deleteProjectOrg"], project, org); err != nil {
			return err
		}
		return s.notify(ctx, tx, storage.ChangeAll)
	}, ev)
}

func scanGrant(row scanner) (storage.Grant, error) {
	var (
		g       storage.Grant
		scopes  string
		created int64
	)
	if err := row.Scan(&g.Org, &g.ClientID, &scopes, &created); err != nil {
		return g, err
	}
	g.CreatedAt = fromMicros(created)
	var err error
	g.Scopes, err = decodeList(scopes)
	return g, err
}

// PutGrant implements storage.Storage.
func (s *Store) PutGrant(ctx context.Context, g storage.Grant, ev storage.AuditEvent, guards ...storage.Guard) (storage.Grant, error) {
	var stored storage.Grant
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lockScopes(ctx, tx, guards); err != nil {
			return err
		}
		// The organization's row, shared, as inserting the grant would
		// take it: one that does not exist (deleted since the caller
		// looked it up) is ErrNotFound, not a foreign key's error.
		var domain string
		if err := tx.QueryRowContext(ctx, s.q["shareOrg"], g.Org).Scan(&domain); err != nil {
			return s.wrap("put grant: organization "+g.Org, err)
		}
		var old storage.Grant
		if len(guards) > 0 {
			// Guarded, as the admin API grants: the account's row, locked
			// as CreateKey locks it, so one deleted since the caller
			// looked it up is ErrNotFound, and a deletion in progress is
			// waited for: no grant is left naming no account.
			var id string
			if err := tx.QueryRowContext(ctx, s.q["lockAccount"], g.ClientID).Scan(&id); err != nil {
				return s.wrap("put grant: account "+g.ClientID, err)
			}
			var err error
			old, err = scanGrant(tx.QueryRowContext(ctx, s.q["getGrant"], g.Org, g.ClientID))
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return s.wrap("put grant", err)
			}
		}
		if err := s.putGrant(ctx, tx, g); err != nil {
			return err
		}
		for _, gd := range guards {
			if gd.KnownScopes {
				if err := s.checkKnown(ctx, tx, "put grant", old.Scopes, g.Scopes); err != nil {
					return err
				}
			}
		}
		// A replaced grant keeps its created_at: read back what is stored.
		var err error
		if stored, err = scanGrant(tx.QueryRowContext(ctx, s.q["getGrant"], g.Org, g.ClientID)); err != nil {
			return s.wrap("put grant", err)
		}
		return s.notify(ctx, tx, storage.ChangeAll)
	}, ev)
	if err != nil {
		return storage.Grant{}, err
	}
	return stored, nil
}

// putGrant creates or replaces g with its indexed scopes.
func (s *Store) putGrant(ctx context.Context, tx *sql.Tx, g storage.Grant) error {
	if _, err := tx.ExecContext(ctx, s.q["putGrant"], g.Org, g.ClientID, encodeList(g.Scopes), micros(g.CreatedAt)); err != nil {
		return s.wrap("put grant", err)
	}
	return s.wrap("put grant", s.putGrantScopes(ctx, tx, g))
}

// GetGrant implements storage.Storage.
func (s *Store) GetGrant(ctx context.Context, org, clientID string) (storage.Grant, error) {
	g, err := scanGrant(s.queryRow(ctx, "getGrant", org, clientID))
	return g, s.wrap("get grant", err)
}

// ListGrants implements storage.Storage.
func (s *Store) ListGrants(ctx context.Context, org string) ([]storage.Grant, error) {
	rows, err := s.query(ctx, "listGrants", org)
	if err != nil {
		return nil, s.wrap("list grants", err)
	}
	defer rows.Close()
	var out []storage.Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, s.wrap("list grants", err)
		}
		out = append(out, g)
	}
	return out, s.wrap("list grants", rows.Err())
}

// DeleteGrant implements storage.Storage.
func (s *Store) DeleteGrant(ctx context.Context, org, clientID string, ev storage.AuditEvent) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.execOne(ctx, tx, "delete grant", s.q["deleteGrant"], org, clientID); err != nil {
			return err
		}
		return s.notify(ctx, tx, storage.ChangeAll)
	}, ev)
}
