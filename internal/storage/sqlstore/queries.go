package sqlstore

import (
	"slices"
	"strconv"
	"strings"
)

// queries are written with ? placeholders and rebound per dialect once.
var queries = map[string]string{
	"insertAccount": `INSERT INTO accounts (id, email, name, project, display_name, description, scopes, token_lifetime_s, disabled, created_at, updated_at,
		auth_methods, tls_binding, token_format, tokens_revoked_before, cert_tokens_revoked_before)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	"getAccount":        `SELECT ` + accountCols + ` FROM accounts WHERE id = ?`,
	"getAccountByEmail": `SELECT ` + accountCols + ` FROM accounts WHERE email = ?`,
	// Any account's email in lower case, by the indexes of migration
	// 00011: the whole email, or its domain (the part after its last @, as
	// validate.EmailDomain), each without and with a final dot
	// (AccountEmailAt). The project index would find only the accounts
	// whose email is NAME@PROJECT.<domain>, not all an import kept.
	"accountEmailIs":   `SELECT 1 FROM accounts WHERE ` + emailLower + ` IN (?, ?) LIMIT 1`,
	"accountEmailAt":   `SELECT 1 FROM accounts WHERE ` + emailDomain + ` IN (?, ?) LIMIT 1`,
	"listAccounts":     `SELECT ` + accountCols + ` FROM accounts WHERE id > ? ORDER BY id LIMIT ?`,
	"listAccountsProj": `SELECT ` + accountCols + ` FROM accounts WHERE project = ? AND id > ? ORDER BY id LIMIT ?`,
	"updateAccount": `UPDATE accounts SET name = ?, project = ?, display_name = ?, description = ?, scopes = ?, token_lifetime_s = ?, disabled = ?, updated_at = ?,
		auth_methods = ?, tls_binding = ?, token_format = ?, tokens_revoked_before = ?,
		cert_tokens_revoked_before = ? WHERE id = ?`,
	"deleteAccount":        `DELETE FROM accounts WHERE id = ?`,
	"deleteAccountKeys":    `DELETE FROM keys WHERE account_id = ?`,
	"deleteAccountSecrets": `DELETE FROM secrets WHERE account_id = ?`,
	"deleteAccountGrants":  `DELETE FROM delegation_grants WHERE client_id = ?`,
	"countAccounts":        `SELECT COUNT(*) FROM accounts`,
	"countAccountsOrgs":    `SELECT (SELECT COUNT(*) FROM accounts), (SELECT COUNT(*) FROM orgs)`,
	"listAPINames":         `SELECT name FROM apis ORDER BY name`,

	"insertKey": `INSERT INTO keys (id, account_id, algorithm, public_key, certificate, origin, disabled, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	"getKey":    `SELECT ` + keyCols + ` FROM keys WHERE id = ?`,
	"listKeys":  `SELECT ` + keyCols + ` FROM keys WHERE account_id = ? ORDER BY created_at, id`,
	"updateKey": `UPDATE keys SET disabled = ?, expires_at = ? WHERE id = ?`,
	"deleteKey": `DELETE FROM keys WHERE id = ?`,

	"insertSecret": `INSERT INTO secrets (id, account_id, hash, hint, disabled, expires_at, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
	"getSecret":    `SELECT ` + secretCols + ` FROM secrets WHERE id = ?`,
	"listSecrets":  `SELECT ` + secretCols + ` FROM secrets WHERE account_id = ? ORDER BY created_at, id`,
	"updateSecret": `UPDATE secrets SET disabled = ?, expires_at = ? WHERE id = ?`,
	"deleteSecret": `DELETE FROM secrets WHERE id = ?`,
	"touchSecret":  `UPDATE secrets SET last_used_at = ? WHERE id = ? AND last_used_at < ?`,

	"insertAPI":           `INSERT INTO apis (name, identifier, description, created_at, token_format, introspectors) VALUES (?, ?, ?, ?, ?, ?)`,
	"updateAPI":           `UPDATE apis SET description = ?, token_format = ?, introspectors = ? WHERE name = ?`,
	"replaceAPI":          `UPDATE apis SET description = ?, created_at = ?, token_format = ?, introspectors = ? WHERE name = ? AND identifier = ?`,
	"insertAPIScope":      `INSERT INTO api_scopes (scope, api_name, position) VALUES (?, ?, ?)`,
	"getAPI":              `SELECT ` + apiCols + ` FROM apis WHERE name = ?`,
	"listAPIs":            `SELECT ` + apiCols + ` FROM apis ORDER BY name`,
	"listAPIIdentifiers":  `SELECT name, identifier FROM apis ORDER BY name`,
	"listAPIScopes":       `SELECT api_name, scope FROM api_scopes ORDER BY api_name, position`,
	"getAPIScopes":        `SELECT scope FROM api_scopes WHERE api_name = ? ORDER BY position`,
	"deleteAPIScope":      `DELETE FROM api_scopes WHERE api_name = ?`,
	"deleteAPI":           `DELETE FROM apis WHERE name = ?`,
	"setAPIIntrospectors": `UPDATE apis SET introspectors = ? WHERE name = ?`,

	"listSigningKeys":   `SELECT id, algorithm, sealed, created_at, activated_at, retired_at FROM signing_keys ORDER BY created_at, id`,
	"deleteSigningKeys": `DELETE FROM signing_keys`,
	"insertSigningKey":  `INSERT INTO signing_keys (id, algorithm, sealed, created_at, activated_at, retired_at) VALUES (?, ?, ?, ?, ?, ?)`,
	"resealSigningKey":  `UPDATE signing_keys SET sealed = ? WHERE id = ?`,

	"getSealedValue":    `SELECT sealed, created_at FROM sealed_values WHERE name = ?`,
	"listSealedValues":  `SELECT name, sealed, created_at FROM sealed_values ORDER BY name`,
	"insertSealedValue": `INSERT INTO sealed_values (name, sealed, created_at) VALUES (?, ?, ?)`,
	"resealValue":       `UPDATE sealed_values SET sealed = ? WHERE name = ?`,
	"replaceValue":      `UPDATE sealed_values SET sealed = ?, created_at = ? WHERE name = ?`,
	"deleteValue":       `DELETE FROM sealed_values WHERE name = ?`,

	"deleteJTI": `DELETE FROM used_jtis WHERE issuer = ? AND jti = ?`,
	// The deletes of what expired before a time (the first, second and
	// fourth arguments) take a batch at a time, the oldest first: through
	// the expiry of the batch's last row (the third argument is its offset,
	// the batch's size less one), or all when fewer are left. Both the
	// subquery and the delete scan a range of the expires_at index alone
	// (PostgreSQL plans a subquery of keys as a scan of the whole table).
	"deleteExpiredJTI": `DELETE FROM used_jtis WHERE expires_at < ? AND expires_at <= COALESCE((SELECT expires_at FROM used_jtis WHERE expires_at < ? ORDER BY expires_at LIMIT 1 OFFSET ?), ?)`,

	"getToken":           `SELECT ` + tokenCols + ` FROM tokens WHERE hash = ?`,
	"getTokenByID":       `SELECT ` + tokenCols + ` FROM tokens WHERE jti = ?`,
	"deleteExpiredToken": `DELETE FROM tokens WHERE expires_at < ? AND expires_at <= COALESCE((SELECT expires_at FROM tokens WHERE expires_at < ? ORDER BY expires_at LIMIT 1 OFFSET ?), ?)`,
	"insertRevocation":   `INSERT INTO revocations (jti, account_id, revoked_at, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
	"isRevoked":          `SELECT COUNT(*) FROM revocations WHERE jti = ?`,
	"deleteExpiredRevoc": `DELETE FROM revocations WHERE expires_at < ? AND expires_at <= COALESCE((SELECT expires_at FROM revocations WHERE expires_at < ? ORDER BY expires_at LIMIT 1 OFFSET ?), ?)`,

	"auditHead": `SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`,
	// The last event to prune: the one before the first event at or after
	// the time, or before the newest event when none is that recent.
	"auditPruneThrough": `SELECT COALESCE((SELECT MIN(seq) FROM audit_events WHERE time >= ?), (SELECT MAX(seq) FROM audit_events), 1) - 1`,
	"auditHashAt":       `SELECT hash FROM audit_events WHERE seq = ?`,
	"auditFirstSeq":     `SELECT COALESCE(MIN(seq), 0) FROM audit_events`,
	"openPruneGate":     `INSERT INTO audit_prune_gate (through) VALUES (?)`,
	"pruneAudit":        `DELETE FROM audit_events WHERE seq <= ?`,
	"closePruneGate":    `DELETE FROM audit_prune_gate`,
}

// rowChunks are the row counts of the prepared multi-row statements,
// largest first: powers of two, so a batch of up to 63 rows takes one
// statement per bit of its size (23 = 16 + 4 + 2 + 1) — on PostgreSQL each
// statement is a round trip from the one committing connection, and on
// either backend a statement costs about as much as the rows it writes.
var rowChunks = []int{32, 16, 8, 4, 2, 1}

// userChunks are the row counts of the multi-row upserts of users
// (putUsers), largest first: a put of thousands (an import's batch of up
// to 5,000) takes a statement per 512 users, then at most 7 each of 64,
// 8 and 1 for the rest (600 = 512 + 64 + 3·8), where a statement per user
// took most of its time on PostgreSQL. 512 rows of 4 columns are 2,048
// parameters, well under either backend's limit.
var userChunks = []int{512, 64, 8, 1}

// chunkSize is the largest of sizes (largest first, the last 1) that n
// rows fill.
func chunkSize(sizes []int, n int) int {
	for _, size := range sizes {
		if size <= n {
			return size
		}
	}
	return 1
}

// inChunks writes items with as few multi-row statements as sizes (see
// rowChunks) allow: row appends one item's arguments, run executes a
// statement of n rows with their arguments.
func inChunks[T any](sizes []int, items []T, cols int, row func(args []any, item T) []any, run func(n int, args []any) error) error {
	args := make([]any, 0, cols*min(len(items), sizes[0]))
	for len(items) > 0 {
		n := chunkSize(sizes, len(items))
		args = args[:0]
		for _, it := range items[:n] {
			args = row(args, it)
		}
		if err := run(n, args); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}

// multiRowName names the multi-row statement of base for rows rows.
func multiRowName(base string, rows int) string { return base + strconv.Itoa(rows) }

// addMultiRow registers statements head VALUES (…), … tail, one per size
// in sizes, each row with cols placeholders, and returns their names.
func addMultiRow(sizes []int, base, head string, cols int, tail string) []string {
	row := "(" + strings.Repeat("?, ", cols-1) + "?)"
	var names []string
	for _, n := range sizes {
		name := multiRowName(base, n)
		queries[name] = head + ` VALUES ` + strings.Repeat(row+", ", n-1) + row + tail
		names = append(names, name)
	}
	return names
}

func init() {
	// Hot: prepared once on the writer (see hotQueries).
	hotQueries = slices.Concat(hotQueries,
		addMultiRow(rowChunks, "insertAudit", `INSERT INTO audit_events (`+auditCols+`)`, auditColumns, ""),
		addMultiRow(rowChunks, "insertJTIs", `INSERT INTO used_jtis (issuer, jti, expires_at)`, 3, ` ON CONFLICT DO NOTHING RETURNING issuer, jti`),
		addMultiRow(rowChunks, "insertTokens", `INSERT INTO tokens (`+tokenCols+`)`, tokenColumns, ""))
	addMultiRow(userChunks, "putUsers", `INSERT INTO org_users (email, org, suspended, created_at)`, 4,
		` ON CONFLICT (email) DO UPDATE SET org = excluded.org, suspended = excluded.suspended`)
}

// emailLower is an account's email with its ASCII letters lowered, as the
// index accounts_email_lower (migration 00011) holds it; a query must name
// it so for the index to serve it.
const emailLower = `lower(email` + asciiCase + `)`

// emailDomain is the domain of an account's email with its ASCII letters
// lowered, the part after its last @ (all of it without one), as the index
// accounts_email_domain (migration 00011) holds it; a query must name it
// so for the index to serve it. The rtrim keeps the email up to its last @
// (it trims the characters the email has but for @), in SQLite and
// PostgreSQL alike.
const emailDomain = `lower(substr(email, length(rtrim(email, replace(email, '@', ''))) + 1)` + asciiCase + `)`

// asciiCase marks the text that lower() lowers in emailLower and
// emailDomain: New replaces it with the dialect's ASCIICase.
const asciiCase = `/*ascii*/`

const (
	accountCols = `id, email, name, project, display_name, description, scopes, token_lifetime_s, disabled, created_at, updated_at, auth_methods, tls_binding,
		token_format, tokens_revoked_before, cert_tokens_revoked_before`
	apiCols    = `name, identifier, description, created_at, token_format, introspectors`
	secretCols = `id, account_id, hash, hint, disabled, expires_at, created_at, last_used_at`
	keyCols    = `id, account_id, algorithm, public_key, certificate, origin, disabled, expires_at, created_at`
	auditCols  = `seq, time, action, outcome, account_id, actor, source, data, prev_hash, hash`
	// auditColumns is the number of columns in auditCols.
	auditColumns = 10
	tokenCols    = `hash, jti, account_id, subject, scope, audience, credential, thumbprint, actor, issued_at, expires_at, jkt`
	// tokenColumns is the number of columns in tokenCols.
	tokenColumns = 12
)
