package admin

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/validate"
)

// MaxImportUsers bounds one import.
const MaxImportUsers = 100_000

// MaxReportedRows bounds how many bad rows an import reports one by one.
const MaxReportedRows = 20

// UserRow is a user read from an import file, with the line it is on.
type UserRow struct {
	UserInput
	Line int
}

// ParseUsers reads users for a bulk import: JSON (an array of
// {"email", "suspended" or "status"}, or {"users": [...]}) or CSV (one user
// a line: email[,status], status active or suspended). A CSV file whose
// first row is not an email (has no @) begins with a header, which must be
// email,status or email (in any case); any other first row is a bad row. A
// line starting with # is a comment, skipped: an email starting with #
// must be quoted ("#ops@example.com"); a line whose first field is a #
// after spaces is a bad row, neither a comment nor a user, and so is a
// line with a # after a value and a space (a comment after it). The file may
// begin with a byte order mark (U+FEFF), as Excel writes CSV; a line with
// one anywhere else is a bad row. Emails are checked and lower-cased. It reports
// every bad row with its line number (the first MaxReportedRows of them, and
// how many more), and returns no user when any row is bad.
func ParseUsers(data []byte) ([]UserInput, error) {
	rows, err := ParseUserRows(data, nil)
	if err != nil {
		return nil, err
	}
	out := make([]UserInput, len(rows))
	for i, r := range rows {
		out[i] = r.UserInput
	}
	return out, nil
}

// ParseUserRows is ParseUsers keeping each user's line number; check, if
// not nil, is one more test of each well-formed row (that its organization
// exists, say), reported like the others.
func ParseUserRows(data []byte, check func(UserRow) error) ([]UserRow, error) {
	data = bytes.TrimPrefix(data, bom) // as Excel writes
	isJSON := usersJSON(data)
	if bytes.IndexByte(data, 0) >= 0 || isJSON && hasNUL(data) || !utf8.Valid(data) {
		return nil, notTextRows(data, isJSON)
	}
	if bytes.Contains(data, bom) {
		return nil, bomRows(data)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("the file is empty")
	}
	lead := len(data) - len(bytes.TrimLeft(data, " \t\r\n"))
	// JSON by JSON's white space alone (usersJSON): one that
	// bytes.TrimSpace takes too, such as U+00A0 before "{ops}@example.com",
	// starts a CSV field, which the CSV reader trims.
	if isJSON {
		return parseUsersJSON(data[lead:], bytes.Count(data[:lead], []byte{'\n'}), check)
	}
	return parseUsersCSV(data, check)
}

// bom is a UTF-8 byte order mark, which a file may begin with (Excel
// writes one at the start of UTF-8 CSV) and have nowhere else.
var bom = []byte("\ufeff")

// bomRows reports each line of data with a byte order mark (after the
// one the file may begin with) as a bad row: one in a field (invisible,
// and no whitespace that trimming drops) would make an email, a status or
// the header that is not what it looks like; a file joined from others
// that began with one has it at the start of a line.
func bomRows(data []byte) error {
	var bad []string
	for i, l := range bytes.Split(data, []byte{'\n'}) {
		if bytes.Contains(l, bom) {
			bad = append(bad, fmt.Sprintf("line %d: a byte order mark (U+FEFF, invisible), which only the start of the file may have (files joined together each bring theirs): remove it", i+1))
		}
	}
	return BadRows(bad)
}

// usersJSON reports whether data, a users file, is JSON (its first
// character after white space is [ or {), not CSV.
func usersJSON(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && (t[0] == '[' || t[0] == '{')
}

// notTextRows reports each line of data with a NUL character (raw or, in
// JSON, as a \u0000 escape: CSV has no escapes, and the text \u0000 in
// it is that text) or bytes that are not UTF-8, as the other bad rows are
// reported; a raw NUL in a CSV field with the field's column
// (nulColumns). A line break is ASCII, so no UTF-8 character spans two
// lines.
func notTextRows(data []byte, isJSON bool) error {
	var bad []string
	var cols map[int]string
	if !isJSON {
		cols = nulColumns(data)
	}
	for i, l := range bytes.Split(data, []byte{'\n'}) {
		switch {
		case bytes.IndexByte(l, 0) >= 0:
			bad = append(bad, fmt.Sprintf("line %d: a NUL character (U+0000)%s, which Keyward does not store: remove it", i+1, cols[i+1]))
		case isJSON && hasNUL(l):
			bad = append(bad, fmt.Sprintf("line %d: a NUL character (the escape \\u0000), which Keyward does not store: remove it", i+1))
		case !utf8.Valid(l):
			bad = append(bad, fmt.Sprintf("line %d: bytes that are not UTF-8 (Latin-1, say): save the file as UTF-8", i+1))
		}
	}
	return BadRows(bad)
}

// nulColumns maps each line of data, CSV, with a NUL character in a
// field to the field's column, " in the email column", as parseUsersCSV
// reads the fields (the first NUL of a line names it). It reads up to the
// first row that is not valid CSV; the lines after it are not in it, and
// are reported without a column, as are the lines of a JSON file.
func nulColumns(data []byte) map[int]string {
	cols := map[int]string{}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.Comment = '#'
	for {
		rec, err := r.Read()
		if err != nil {
			return cols
		}
		for j, f := range rec {
			k := strings.IndexByte(f, 0)
			if k < 0 {
				continue
			}
			line, _ := r.FieldPos(j)
			line += strings.Count(f[:k], "\n") // a quoted field may span lines
			if _, ok := cols[line]; ok {
				continue
			}
			switch names := strings.Split(UsersHeader, ","); {
			case j < len(names):
				cols[line] = " in the " + names[j] + " column"
			default:
				cols[line] = fmt.Sprintf(" in column %d", j+1)
			}
		}
	}
}

type jsonUser struct {
	Email     string `json:"email"`
	Suspended *bool  `json:"suspended"`
	Status    string `json:"status"`
}

// parseUsersJSON reads the array (or the "users" array of the object) one
// element at a time, so each user's line is known; skip is the number of
// lines before data.
func parseUsersJSON(data []byte, skip int, check func(UserRow) error) ([]UserRow, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	b := importBatch{check: check}
	if data[0] == '{' {
		if err := seekUsers(dec); err != nil {
			return nil, err
		}
	} else if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	// line is the line data[counted] is on, counted forward from one user
	// to the next: counting from the start each time made a big file's
	// import quadratic.
	line, counted := skip+1, 0
	for dec.More() {
		off := int(dec.InputOffset())
		off += len(data[off:]) - len(bytes.TrimLeft(data[off:], " \t\r\n,"))
		line += bytes.Count(data[counted:off], []byte{'\n'})
		counted = off
		var u jsonUser
		if err := dec.Decode(&u); err != nil {
			if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
				// A value of the wrong type ("suspended": "true"): the
				// decoder has read the whole user, so it is a bad row,
				// reported with the others, not the file's end.
				b.add(line, "", false, errors.New(userJSONProblem(err)))
				continue
			}
			return nil, fmt.Errorf("not valid JSON at line %d: %s", line, userJSONProblem(err))
		}
		suspended, err := status(u.Status)
		if u.Suspended != nil {
			if u.Status != "" && *u.Suspended != suspended {
				err = errors.New("suspended and status disagree")
			}
			suspended = *u.Suspended
		}
		b.add(line, u.Email, suspended, err)
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if data[0] == '{' {
		if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
			return nil, errors.New(`a JSON object must be {"users": [...]} and nothing else`)
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("the file has more after the JSON value")
	}
	return b.result()
}

// seekUsers advances dec past {"users": [ and refuses any other key.
func seekUsers(dec *json.Decoder) error {
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	key, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	if key != "users" {
		return fmt.Errorf(`a JSON object must be {"users": [...]}, not have %s`, quoteClip(fmt.Sprint(key)))
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return errors.New(`"users" must be an array`)
	}
	return nil
}

func status(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "active":
		return false, nil
	case "suspended":
		return true, nil
	}
	return false, fmt.Errorf("status %s must be active or suspended", quoteClip(s))
}

func parseUsersCSV(data []byte, check func(UserRow) error) ([]UserRow, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.Comment = '#'
	b := importBatch{check: check}
	var lineStarts []int // offsets of lines, found when first needed
	for first := true; ; {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not valid CSV: %w", err)
		}
		line, col := r.FieldPos(0)
		if strings.HasPrefix(rec[0], "#") {
			if lineStarts == nil {
				lineStarts = lineOffsets(data)
			}
			if at := lineStarts[line-1] + col - 1; at < len(data) && data[at] == '#' {
				// An unquoted # after spaces: a comment meant to be one
				// (encoding/csv takes only a # in the first column), or
				// an email the file had to quote. Either way it is said
				// so, not read as an email or a header.
				b.add(line, "", false, fmt.Errorf("%s is not a comment: # starts one only as the first character of a line (an email starting with # must be quoted: \"#ops@example.com\")", quoteClip(strings.Join(rec, ","))))
				continue // a header may follow it
			}
		}
		if first {
			first = false
			if !strings.Contains(rec[0], "@") {
				if !isUsersHeader(rec) {
					b.add(line, "", false, fmt.Errorf("%s is neither an email address nor the header %s", quoteClip(strings.Join(rec, ",")), UsersHeader))
				}
				continue
			}
		}
		if afterValue(rec) {
			b.add(line, "", false, fmt.Errorf("%s has a comment after a value: # starts one only as the first character of a line", quoteClip(strings.Join(rec, ","))))
			continue
		}
		if len(rec) > 2 {
			b.add(line, rec[0], false, fmt.Errorf("%d columns, want email[,status]", len(rec)))
			continue
		}
		suspended := false
		if len(rec) == 2 {
			suspended, err = status(rec[1])
		}
		b.add(line, rec[0], suspended, err)
	}
	return b.result()
}

// afterValue reports whether a field of rec has a # after a space or a
// tab, as a comment after a value would ("alice@example.com # Alice"),
// which CSV does not have: no email or status has one, and the row is
// said to be bad for it rather than for a malformed email.
func afterValue(rec []string) bool {
	for _, f := range rec {
		if strings.Contains(f, " #") || strings.Contains(f, "\t#") {
			return true
		}
	}
	return false
}

// lineOffsets returns the offset in data of each of its lines, the first
// at 0.
func lineOffsets(data []byte) []int {
	out := []int{0}
	for i, c := range data {
		if c == '\n' {
			out = append(out, i+1)
		}
	}
	return out
}

// quoteClip quotes s, a value from an import file or a request body, for
// an error message, as clip cuts it.
func quoteClip(s string) string { return validate.QuoteClip(s) }

// clip shows s, a value from an import file or a request body, with show
// for an error message; one longer than 64 bytes is cut to the whole
// characters of its first 48, shown with its length: a file of one 50 MB
// line is not echoed back whole.
func clip(s string, show func(string) string) string { return validate.Clip(s, show) }

// showName shows a name for an error message: an email from an import
// file or a request body, or a stored email, client ID, key or secret ID
// (an import stores any the store can hold). It is shown as it is, or,
// longer than 64 bytes or with a character that is not printable, as
// quoteClip shows it. net/mail accepts any character above ASCII, the C1
// controls among them (U+009B is a terminal's CSI), which must not reach
// the CLI's terminal raw.
func showName(s string) string {
	if len(s) <= 64 && !strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return s
	}
	return quoteClip(s)
}

// showDomain shows a domain from a request, or a stored one, for an error
// message: as it is when it is a domain name (validate.Domain) of 64 bytes
// or fewer, which has only letters, digits, hyphens and dots, else as
// quoteClip shows it.
func showDomain(d string) string {
	if len(d) <= 64 && validate.Domain(d) == nil {
		return d
	}
	return quoteClip(d)
}

// userJSONProblem describes err, from decoding one user of a JSON import,
// by the JSON the file has and the JSON wanted, not by Go's types.
func userJSONProblem(err error) string {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		want, got := jsonTypeMismatch(typ)
		if typ.Field == "" {
			return fmt.Sprintf("a user must be %s, not %s", want, got)
		}
		return fmt.Sprintf("%q must be %s, not %s", typ.Field, want, got)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// UsersHeader is the header line a CSV user list may begin with; "email"
// alone is one too.
const UsersHeader = "email,status"

// isUsersHeader reports whether rec, the first row of a CSV user list, is
// its header: email or email,status, in any case.
func isUsersHeader(rec []string) bool {
	cols := strings.Split(UsersHeader, ",")
	if len(rec) > len(cols) {
		return false
	}
	for i, f := range rec {
		if strings.ToLower(strings.TrimSpace(f)) != cols[i] { // as userimport.js does
			return false
		}
	}
	return true
}

// importBatch collects the rows of an import and what is wrong with them.
type importBatch struct {
	rows  []UserRow
	bad   []string
	seen  map[string]int // email → line
	total int
	check func(UserRow) error
}

// add checks one row; err is what the caller found wrong with it already.
func (b *importBatch) add(line int, email string, suspended bool, err error) {
	if b.seen == nil {
		b.seen = map[string]int{}
	}
	if b.total++; b.total > MaxImportUsers {
		return // reported as too many
	}
	if err == nil {
		if strings.TrimSpace(email) == "" {
			err = errors.New("no email")
		} else {
			email, err = normalizeEmail(email)
		}
	}
	if err == nil {
		if first, dup := b.seen[email]; dup {
			err = fmt.Errorf("%s is also on line %d", showName(email), first)
		}
	}
	row := UserRow{UserInput{Email: email, Suspended: suspended}, line}
	if err == nil && b.check != nil {
		err = b.check(row)
	}
	if err != nil {
		b.bad = append(b.bad, fmt.Sprintf("line %d: %v", line, err))
		return
	}
	b.seen[email] = line
	b.rows = append(b.rows, row)
}

func (b *importBatch) result() ([]UserRow, error) {
	if b.total > MaxImportUsers {
		return nil, fmt.Errorf("more than %d users: split the file", MaxImportUsers)
	}
	if len(b.bad) > 0 {
		return nil, BadRows(b.bad)
	}
	if len(b.rows) == 0 {
		return nil, errors.New("the file has no users")
	}
	return b.rows, nil
}

// BadRows reports the bad rows of an import, one a line: the first
// MaxReportedRows, then how many more there are.
func BadRows(bad []string) error {
	n := len(bad)
	if n > MaxReportedRows {
		bad = append(bad[:MaxReportedRows:MaxReportedRows], "and "+badRows(n-MaxReportedRows, "more bad"))
	}
	return fmt.Errorf("%s, nothing was imported; fix and retry:\n  %s", badRows(n, "bad"), strings.Join(bad, "\n  "))
}

// badRows writes n rows described by adj: 1 bad row, 5 more bad rows.
func badRows(n int, adj string) string {
	if n == 1 {
		return "1 " + adj + " row"
	}
	return fmt.Sprintf("%d %s rows", n, adj)
}
