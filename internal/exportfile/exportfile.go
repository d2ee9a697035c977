// Package exportfile reads the file that 'keyward import' is given, the
// JSON that 'keyward export' writes, and says what is wrong with one that
// is no export, or holds a value an export cannot, in words about the
// file rather than the JSON package's Go ones. It is a package of its
// own, not part of transfer, so that its fuzz test links neither the
// server nor the SQLite store transfer's tests import into.
package exportfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/transfer"
)

// Parse reads the file of an import, and says what is wrong with one
// that is no export, or an export with a value it cannot take (a
// *ValueError), in words about the file: before the store is opened,
// so a wrong file creates no data directory. A byte order mark
// at its start (an editor's, saving an edited export) is skipped, not
// copied away with the whole file, and the byte offsets it names count
// it, so that they are the file's.
func Parse(b []byte) (transfer.Dump, error) {
	var d transfer.Dump
	var bom int64
	if rest, ok := bytes.CutPrefix(b, []byte("\ufeff")); ok {
		b, bom = rest, int64(len(b)-len(rest))
	}
	// JSON's white space only: a form feed, a vertical tab or a no-break
	// space, which bytes.TrimSpace trims too, is no JSON, said below.
	if len(bytes.Trim(b, " \t\r\n")) == 0 {
		return d, errors.New("the file is empty")
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch err := decode(b, &d); {
	case errors.As(err, &syntax):
		if err := severalValues(b, bom); err != nil {
			return d, err
		}
		if at := syntax.Offset - 1; at >= 0 && at < int64(len(b)) && b[at] == 0 {
			// Of an export, the rest of a file that was never written:
			// a sparse file's holes, read only so far (jsonBytes).
			return d, fmt.Errorf("it has a zero byte at byte %d, which no JSON has: the rest of the file may be zeros, as of a sparse file or a copy that was never finished; copy it again, or export the store again", at+1+bom)
		}
		if syntax.Error() == "unexpected end of JSON input" {
			// Of an export, a copy that did not finish, or a disk that
			// filled up under 'keyward export > FILE'.
			return d, fmt.Errorf("its JSON stops part way, at byte %d, the end of the file: the file was cut short; copy it again, or export the store again", syntax.Offset+bom)
		}
		return d, fmt.Errorf("not JSON: %s (at byte %d)", syntax, syntax.Offset+bom)
	case errors.As(err, &typ) && typ.Field == "":
		return d, fmt.Errorf("a JSON %s, not the object of an export", typ.Value)
	case errors.As(err, &typ) && strings.EqualFold(typ.Field, "format"):
		return d, fmt.Errorf("its \"format\" is a JSON %s, not a string such as %q", strings.Fields(typ.Value)[0], transfer.Format)
	case errors.As(err, &typ):
		// transfer names a value of the wrong kind by its place; this is
		// for one it did not find.
		return d, &ValueError{fmt.Errorf("its field %q holds a JSON %s, of the wrong kind", typ.Field, strings.Fields(typ.Value)[0])}
	case err != nil:
		// Of an export in a format it reads, transfer.Dump names a value
		// it cannot take by its place (accounts[3].created_at), or a field
		// the format does not have.
		return d, &ValueError{errors.New(strings.TrimPrefix(err.Error(), "json: "))}
	}
	if d.Format != transfer.Format && d.Format != transfer.FormatV1 {
		return d, notExport(b, d.Format)
	}
	return d, nil
}

// decode is json.Unmarshal(b, d), with the same result and errors
// (FuzzParse), two passes over the file shorter: json.Unmarshal
// reads b once to check that it is JSON and again to find the end of
// the value it gives d.UnmarshalJSON, which checks that too as it reads
// the format, with the same errors, at the same offsets.
func decode(b []byte, d *transfer.Dump) error {
	return d.UnmarshalJSON(b)
}

// ValueError is Parse's error for a file that is an export, of a format
// import reads, but holds a value it cannot take or a field the format
// does not have: an edited export, say. Its message names the value; the
// file's name goes before it.
type ValueError struct{ err error }

// Error says what the value is and where, without the file's name.
func (e *ValueError) Error() string { return e.err.Error() }

// Unwrap returns the error of the value.
func (e *ValueError) Unwrap() error { return e.err }

// notExport says what b, JSON read as a dump whose format is neither of
// an export's, is: null, an object with another "format", or one with
// none (or a null one), which is said before anything about the kinds
// of its other fields. An audit event (a file of one, from 'audit prune
// --export') and a service-account key file (Keyward's or Google's), the
// JSON files most likely passed for an export by mistake, are named, with
// what to do with them instead. Another format is shown cut to 64 bytes,
// as the file's other values are, not echoed whole.
func notExport(b []byte, format string) error {
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil || fields == nil {
		return errors.New("a JSON null, not the object of an export")
	}
	if f, ok := fields["format"]; format != "" || ok && string(f) != "null" {
		return fmt.Errorf("its \"format\" is %s, not %q (nor %q, of earlier releases)", oauth2.QuoteShort(format), transfer.Format, transfer.FormatV1)
	}
	if isAuditEvent(fields) {
		return errAuditEvents
	}
	var key struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(b, &key) == nil && key.Type == "service_account" {
		return errors.New(`it is a service-account key file ("type": "service_account"), not an export: a key file is used as it is ` +
			`(--credentials, 'keyward token --key-file'); to register a key made elsewhere with an account, upload its public key: ` +
			`'keyward keys upload SA --public-key PEM-FILE'`)
	}
	return fmt.Errorf("it has no \"format\" field, which every export has (%q, or %q from earlier releases)", transfer.Format, transfer.FormatV1)
}

// errAuditEvents says that an import file holds audit events, which
// 'audit prune --export' and 'audit list -o json' write and nothing
// imports.
var errAuditEvents = errors.New("it holds audit events, one JSON object a line, as 'keyward audit prune --export' and 'keyward audit list -o json' write them: " +
	"'keyward import' takes the one JSON object 'keyward export' writes (the configuration: APIs, accounts, keys, organizations), and audit events are not imported")

// severalValues says what b, which is not one JSON value, is when it
// begins with one followed by more: audit events (JSON lines; the first
// is enough to tell), or several JSON values where an export is one
// object. It returns nil for anything else (trailing bytes that are not
// JSON), which is said as a syntax error.
func severalValues(b []byte, skipped int64) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var first, second json.RawMessage
	if dec.Decode(&first) != nil {
		return nil
	}
	end := dec.InputOffset()
	var fields map[string]json.RawMessage
	if json.Unmarshal(first, &fields) == nil && isAuditEvent(fields) {
		return errAuditEvents
	}
	if dec.Decode(&second) != nil {
		return nil
	}
	return fmt.Errorf("several JSON values, one after another (the first ends at byte %d), not the one object of an export", end+skipped)
}

// isAuditEvent reports whether the fields of a JSON object are those of
// an audit event as 'audit list -o json' and 'audit prune --export' show
// it (admin.AuditEventView): each it always has (time is left out when
// the database holds no time for it).
func isAuditEvent(fields map[string]json.RawMessage) bool {
	for _, f := range []string{"seq", "action", "outcome", "prev_hash", "hash"} {
		if _, ok := fields[f]; !ok {
			return false
		}
	}
	return true
}
