package transfer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// The JSON of a dump's items. Each type has the fields of its storage type
// in the same order, so the two convert into each other; the names are the
// admin API's for the same objects (client_id, key_id, secret_id,
// blocked_scopes), and a field the admin API shows otherwise keeps the
// storage type's value under a name that says it (token_lifetime_ns, in
// nanoseconds). A field added to a storage type and not here fails to
// compile.
type (
	apiJSON struct {
		Name          string    `json:"name"`
		Identifier    string    `json:"identifier"`
		Description   string    `json:"description"`
		Scopes        []string  `json:"scopes"`
		TokenFormat   string    `json:"token_format"`
		Introspectors []string  `json:"introspectors"`
		CreatedAt     time.Time `json:"created_at"`
	}
	accountJSON struct {
		ID                      string             `json:"client_id"`
		Email                   string             `json:"email"`
		Name                    string             `json:"name"`
		Project                 string             `json:"project"`
		DisplayName             string             `json:"display_name"`
		Description             string             `json:"description"`
		Scopes                  []string           `json:"scopes"`
		TokenLifetime           time.Duration      `json:"token_lifetime_ns"`
		AuthMethods             []string           `json:"auth_methods"`
		TLS                     storage.TLSBinding `json:"tls_binding"`
		TokenFormat             string             `json:"token_format"`
		TokensRevokedBefore     time.Time          `json:"tokens_revoked_before"`
		CertTokensRevokedBefore time.Time          `json:"cert_tokens_revoked_before"`
		Disabled                bool               `json:"disabled"`
		CreatedAt               time.Time          `json:"created_at"`
		UpdatedAt               time.Time          `json:"updated_at"`
	}
	keyJSON struct {
		ID          string    `json:"key_id"`
		AccountID   string    `json:"account_id"`
		Algorithm   string    `json:"algorithm"`
		PublicKey   []byte    `json:"public_key"`
		Certificate []byte    `json:"certificate"`
		Origin      string    `json:"origin"`
		Disabled    bool      `json:"disabled"`
		ExpiresAt   time.Time `json:"expires_at"`
		CreatedAt   time.Time `json:"created_at"`
	}
	secretJSON struct {
		ID         string    `json:"secret_id"`
		AccountID  string    `json:"account_id"`
		Hash       []byte    `json:"hash"`
		Hint       string    `json:"hint"`
		Disabled   bool      `json:"disabled"`
		ExpiresAt  time.Time `json:"expires_at"`
		CreatedAt  time.Time `json:"created_at"`
		LastUsedAt time.Time `json:"last_used_at"`
	}
	signingKeyJSON struct {
		ID          string    `json:"key_id"`
		Algorithm   string    `json:"algorithm"`
		Sealed      []byte    `json:"sealed"`
		CreatedAt   time.Time `json:"created_at"`
		ActivatedAt time.Time `json:"activated_at"`
		RetiredAt   time.Time `json:"retired_at"`
	}
	sealedValueJSON struct {
		Name      string    `json:"name"`
		Sealed    []byte    `json:"sealed"`
		CreatedAt time.Time `json:"created_at"`
	}
	orgJSON struct {
		Domain        string    `json:"domain"`
		BlockedScopes []string  `json:"blocked_scopes"`
		CreatedAt     time.Time `json:"created_at"`
	}
	userJSON struct {
		Email     string    `json:"email"`
		Org       string    `json:"org"`
		Suspended bool      `json:"suspended"`
		CreatedAt time.Time `json:"created_at"`
	}
	projectJSON struct {
		Project  string `json:"project"`
		Org      string `json:"org"`
		Internal bool   `json:"internal"`
	}
	grantJSON struct {
		Org       string    `json:"org"`
		ClientID  string    `json:"client_id"`
		Scopes    []string  `json:"scopes"`
		CreatedAt time.Time `json:"created_at"`
	}
)

// dumpJSON is the JSON of a dump in Format.
type dumpJSON struct {
	Format       string            `json:"format"`
	ExportedAt   time.Time         `json:"exported_at"`
	APIs         []apiJSON         `json:"apis"`
	Accounts     []accountJSON     `json:"accounts"`
	Keys         []keyJSON         `json:"keys"`
	Secrets      []secretJSON      `json:"secrets"`
	SigningKeys  []signingKeyJSON  `json:"signing_keys"`
	SealedValues []sealedValueJSON `json:"sealed_values,omitempty"`
	Orgs         []orgJSON         `json:"orgs"`
	Users        []userJSON        `json:"users"`
	Projects     []projectJSON     `json:"projects"`
	Grants       []grantJSON       `json:"grants"`
}

// dumpV1 is the JSON of a dump in FormatV1: the storage types without
// tags, so their fields have their Go names.
type dumpV1 Dump

// MarshalJSON writes the dump in Format, whatever d.Format says.
func (d Dump) MarshalJSON() ([]byte, error) {
	return json.Marshal(dumpJSON{
		Format:       Format,
		ExportedAt:   d.ExportedAt,
		APIs:         convert(d.APIs, func(v storage.API) apiJSON { return apiJSON(v) }),
		Accounts:     convert(d.Accounts, func(v storage.Account) accountJSON { return accountJSON(v) }),
		Keys:         convert(d.Keys, func(v storage.Key) keyJSON { return keyJSON(v) }),
		Secrets:      convert(d.Secrets, func(v storage.Secret) secretJSON { return secretJSON(v) }),
		SigningKeys:  convert(d.SigningKeys, func(v storage.SigningKey) signingKeyJSON { return signingKeyJSON(v) }),
		SealedValues: convert(d.SealedValues, func(v storage.SealedValue) sealedValueJSON { return sealedValueJSON(v) }),
		Orgs:         convert(d.Orgs, func(v storage.Org) orgJSON { return orgJSON(v) }),
		Users:        convert(d.Users, func(v storage.User) userJSON { return userJSON(v) }),
		Projects:     convert(d.Projects, func(v storage.ProjectOrg) projectJSON { return projectJSON(v) }),
		Grants:       convert(d.Grants, func(v storage.Grant) grantJSON { return grantJSON(v) }),
	})
}

// UnmarshalJSON reads a dump in Format or FormatV1, by its "format". Of
// any other format it reads only the format, for Import to refuse. A
// field that Format does not have is refused; FormatV1's are ignored, as
// earlier releases ignored them.
func (d *Dump) UnmarshalJSON(b []byte) error {
	format, err := readFormat(b)
	if err != nil {
		return err
	}
	switch format {
	case FormatV1:
		var v dumpV1
		if err := json.Unmarshal(b, &v); err != nil {
			return valueProblem(b, reflect.TypeFor[dumpV1](), err)
		}
		*d = Dump(v)
	case Format:
		if s := (nameScan{b: b}); s.value() {
			return s.repeatedError()
		}
		if v, err := decodeItems(b); err == nil {
			*d = v
			return nil
		}
		v, err := decodeWhole(b)
		if err != nil {
			return err
		}
		*d = v
	default:
		*d = Dump{Format: format}
	}
	return nil
}

// readFormat is the "format" of b, and the error, that json.Unmarshal
// makes of it into a struct of that one field: the syntax error of a
// file that is not JSON, the type error of a value that is no object or
// a format that is no string. Of a file that is JSON, an object, and
// whose formats (any case, the last that is not null) are strings, it
// reads the format from the object's members, skipping their values a
// byte at a time, not with json.Unmarshal's decoder, which took as long
// as its check that the file is JSON (FuzzReadFormat holds the two to
// the same results).
func readFormat(b []byte) (string, error) {
	if json.Valid(b) {
		if format, ok := topFormat(b); ok {
			return format, nil
		}
	}
	var head struct {
		Format string `json:"format"`
	}
	err := json.Unmarshal(b, &head)
	return head.Format, err
}

// topFormat is the format of b, valid JSON, and true, when b is an
// object whose "format" members (any case, as encoding/json matches
// names) are strings or null: the last string; else false.
func topFormat(b []byte) (string, bool) {
	s := nameScan{b: b}
	if s.space(); !s.next('{') {
		return "", false
	}
	format := ""
	if s.space(); s.next('}') {
		return format, true
	}
	for !s.bad {
		s.space()
		start := s.i
		if s.str(); s.bad {
			break
		}
		name := b[start:s.i]
		if s.space(); !s.next(':') {
			break
		}
		s.space()
		at := s.i
		s.skip()
		if v := b[at:s.i]; isFormat(name) {
			switch {
			case len(v) > 0 && v[0] == '"':
				format = unquote(v)
			case string(v) != "null":
				return "", false // a type error, json.Unmarshal's to say
			}
		}
		if s.space(); s.next('}') {
			return format, !s.bad
		}
		if !s.next(',') {
			break
		}
	}
	return "", false
}

// isFormat reports whether a name, quoted, is the format's, as
// encoding/json matches it: "format" in any case. None of its letters
// folds with a letter outside ASCII.
func isFormat(quoted []byte) bool {
	raw := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(raw, '\\') >= 0 || !isASCII(raw) {
		return strings.EqualFold(unquote(quoted), "format")
	}
	return bytes.EqualFold(raw, []byte("format"))
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// decodeWhole decodes b, a dump in Format, whole, strictly, unlike
// FormatV1 (kept as lenient as earlier releases read it): a field this
// release does not know, misspelt in an edited file or added by a later
// release, would be dropped. UnmarshalJSON calls it once decodeItems
// failed, for the error, which names what is wrong; the two make the
// same Dump of a file both read (FuzzDecodeItems).
func decodeWhole(b []byte) (Dump, error) {
	var v dumpJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			// Go quotes the name whole; a file may hold one of any length.
			if u, err := strconv.Unquote(name); err == nil {
				name = u
			}
			return Dump{}, fmt.Errorf("%s has no field %s: misspelt, or added by a later release, whose data this one would drop", Format, oauth2.QuoteShort(name))
		}
		return Dump{}, valueProblem(b, reflect.TypeFor[dumpJSON](), err)
	}
	return Dump{
		Format:       v.Format,
		ExportedAt:   v.ExportedAt,
		APIs:         convert(v.APIs, func(v apiJSON) storage.API { return storage.API(v) }),
		Accounts:     convert(v.Accounts, func(v accountJSON) storage.Account { return storage.Account(v) }),
		Keys:         convert(v.Keys, func(v keyJSON) storage.Key { return storage.Key(v) }),
		Secrets:      convert(v.Secrets, func(v secretJSON) storage.Secret { return storage.Secret(v) }),
		SigningKeys:  convert(v.SigningKeys, func(v signingKeyJSON) storage.SigningKey { return storage.SigningKey(v) }),
		SealedValues: convert(v.SealedValues, func(v sealedValueJSON) storage.SealedValue { return storage.SealedValue(v) }),
		Orgs:         convert(v.Orgs, func(v orgJSON) storage.Org { return storage.Org(v) }),
		Users:        convert(v.Users, func(v userJSON) storage.User { return storage.User(v) }),
		Projects:     convert(v.Projects, func(v projectJSON) storage.ProjectOrg { return storage.ProjectOrg(v) }),
		Grants:       convert(v.Grants, func(v grantJSON) storage.Grant { return storage.Grant(v) }),
	}, nil
}

// decodeItems decodes b, a dump in Format whose names are each given
// once (nameScan), as UnmarshalJSON's strict decoder does, but an item
// at a time, straight into the storage type: that decoder holds a copy
// of the whole file, and the dumpJSON it fills a second copy of every
// slice of items. Any error it returns means that UnmarshalJSON's decoder
// says what is wrong.
func decodeItems(b []byte) (Dump, error) {
	var d Dump
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return d, errors.New("not an object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return d, err
		}
		name, _ := tok.(string)
		switch {
		case strings.EqualFold(name, "format"):
			err = dec.Decode(&d.Format)
		case strings.EqualFold(name, "exported_at"):
			err = dec.Decode(&d.ExportedAt)
		case strings.EqualFold(name, "apis"):
			d.APIs, err = decodeArray(dec, func(v apiJSON) storage.API { return storage.API(v) })
		case strings.EqualFold(name, "accounts"):
			d.Accounts, err = decodeArray(dec, func(v accountJSON) storage.Account { return storage.Account(v) })
		case strings.EqualFold(name, "keys"):
			d.Keys, err = decodeArray(dec, func(v keyJSON) storage.Key { return storage.Key(v) })
		case strings.EqualFold(name, "secrets"):
			d.Secrets, err = decodeArray(dec, func(v secretJSON) storage.Secret { return storage.Secret(v) })
		case strings.EqualFold(name, "signing_keys"):
			d.SigningKeys, err = decodeArray(dec, func(v signingKeyJSON) storage.SigningKey { return storage.SigningKey(v) })
		case strings.EqualFold(name, "sealed_values"):
			d.SealedValues, err = decodeArray(dec, func(v sealedValueJSON) storage.SealedValue { return storage.SealedValue(v) })
		case strings.EqualFold(name, "orgs"):
			d.Orgs, err = decodeArray(dec, func(v orgJSON) storage.Org { return storage.Org(v) })
		case strings.EqualFold(name, "users"):
			d.Users, err = decodeArray(dec, func(v userJSON) storage.User { return storage.User(v) })
		case strings.EqualFold(name, "projects"):
			d.Projects, err = decodeArray(dec, func(v projectJSON) storage.ProjectOrg { return storage.ProjectOrg(v) })
		case strings.EqualFold(name, "grants"):
			d.Grants, err = decodeArray(dec, func(v grantJSON) storage.Grant { return storage.Grant(v) })
		default:
			err = errors.New("unknown field")
		}
		if err != nil {
			return d, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return d, err
	}
	return d, nil
}

// decodeArray decodes the JSON array dec reads next, an item at a time,
// into what conv makes of each: nil for null, as encoding/json decodes a
// slice.
func decodeArray[J, T any](dec *json.Decoder, conv func(J) T) ([]T, error) {
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return nil, err
	}
	if tok != json.Delim('[') {
		return nil, errors.New("not an array")
	}
	out := []T{}
	for dec.More() {
		var v J
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, conv(v))
	}
	_, err = dec.Token()
	return out, err
}

// repeatedError says which name s found given twice, and where (s.value
// returned true). The empty name is said to be one, in the object that
// has it: a path ending in it ("accounts[0].\"\"") reads as a typo.
func (s *nameScan) repeatedError() error {
	const why = "(names match in any case): the import would keep the last and drop the other without a word; merge them into one, and import again"
	last := len(s.path) - 1
	if string(s.path[last].name) != `""` {
		return fmt.Errorf("%s is in the file twice %s", oauth2.QuoteShort(s.where()), why)
	}
	in := "the file's top-level object"
	if s.path = s.path[:last]; len(s.path) > 0 {
		in = oauth2.QuoteShort(s.where())
	}
	return fmt.Errorf(`the empty name "" is in %s twice %s`, in, why)
}

// nameScan reads JSON a byte at a time, for UnmarshalJSON's refusal of a
// name an object gives twice (value, repeatedError) and for topFormat:
// encoding/json matches names in any case (accounts, Accounts), and of a
// name given twice keeps the last value, dropping the other (a list of
// accounts pasted under a second "accounts") without a word. A byte at
// a time, not a json.Decoder's token at a time, which allocated every
// value and took most of an import's reading of its file.
type nameScan struct {
	b    []byte
	i    int       // the next byte to read
	bad  bool      // b was found not to be JSON
	path []step    // where the value being read is
	sets []nameSet // the names of each object being read, by len(path)
	fold []byte    // a name, folded
}

// step is a member of an object, by its name as b has it (quoted), or
// an item of an array, by its index.
type step struct {
	name  []byte
	index int
}

// value reads the value at s.i, and reports whether it gives a name
// twice: then s.path is where.
func (s *nameScan) value() bool {
	s.space()
	switch {
	case s.i >= len(s.b):
		s.bad = true
	case s.b[s.i] == '{':
		return s.object()
	case s.b[s.i] == '[':
		return s.array()
	case s.b[s.i] == '"':
		s.str()
	default: // a number, true, false or null
		for s.i < len(s.b) && !isDelim(s.b[s.i]) {
			s.i++
		}
	}
	return false
}

func (s *nameScan) object() bool {
	s.i++
	depth := len(s.path)
	for len(s.sets) <= depth {
		s.sets = append(s.sets, nameSet{})
	}
	s.sets[depth].reset()
	if s.space(); s.next('}') {
		return false
	}
	for !s.bad {
		s.space()
		start := s.i
		if !s.next('"') {
			s.bad = true
			break
		}
		s.i--
		if s.str(); s.bad {
			break
		}
		name := s.b[start:s.i]
		s.path = append(s.path, step{name: name})
		if s.sets[depth].add(s.folded(name)) {
			return true
		}
		if s.space(); !s.next(':') {
			s.bad = true
			break
		}
		if s.value() {
			return true
		}
		s.path = s.path[:depth]
		if s.space(); s.next('}') {
			return false
		}
		if !s.next(',') {
			s.bad = true
		}
	}
	return false
}

func (s *nameScan) array() bool {
	s.i++
	depth := len(s.path)
	if s.space(); s.next(']') {
		return false
	}
	for i := 0; !s.bad; i++ {
		s.path = append(s.path, step{index: i})
		if s.value() {
			return true
		}
		s.path = s.path[:depth]
		if s.space(); s.next(']') {
			return false
		}
		if !s.next(',') {
			s.bad = true
		}
	}
	return false
}

// str reads the string at s.i, quotes and all.
func (s *nameScan) str() {
	for s.i++; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			s.i++
		case '"':
			s.i++
			return
		}
	}
	s.bad = true
}

// skip reads the value at s.i, a number, literal, string, object or
// array, which must be valid JSON.
func (s *nameScan) skip() {
	depth := 0
	for s.i < len(s.b) && !s.bad {
		switch c := s.b[s.i]; {
		case c == '"':
			if s.str(); depth == 0 {
				return
			}
			continue
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return // after a number or a literal, its object's end
			}
			if depth--; depth == 0 {
				s.i++
				return
			}
		case depth == 0 && isDelim(c):
			return
		}
		s.i++
	}
}

// space reads JSON's white space.
func (s *nameScan) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// next reads c if it is the next byte.
func (s *nameScan) next(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// isDelim reports whether c ends a number or a literal in JSON.
func isDelim(c byte) bool {
	return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// unquote is the name a quoted JSON string stands for, as encoding/json
// reads it (escapes, and invalid UTF-8 as U+FFFD).
func unquote(quoted []byte) string {
	var name string
	if json.Unmarshal(quoted, &name) != nil {
		return string(quoted[1 : len(quoted)-1])
	}
	return name
}

// folded is what encoding/json matches name (quoted) by, foldName's, in
// s.fold: of a name in ASCII, which folds to its upper case, without a
// string.
func (s *nameScan) folded(quoted []byte) []byte {
	raw := quoted[1 : len(quoted)-1]
	s.fold = s.fold[:0]
	for _, c := range raw {
		if c >= utf8.RuneSelf || c == '\\' {
			s.fold = append(s.fold[:0], foldName(unquote(quoted))...)
			return s.fold
		}
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		s.fold = append(s.fold, c)
	}
	return s.fold
}

// where is s.path as repeatedError names it: accounts[3].email. The empty
// name is written as JSON writes it, "" (accounts[3]."".x), not as
// nothing.
func (s *nameScan) where() string {
	var at strings.Builder
	for _, p := range s.path {
		if p.name == nil {
			fmt.Fprintf(&at, "[%d]", p.index)
			continue
		}
		if at.Len() > 0 {
			at.WriteByte('.')
		}
		if string(p.name) == `""` {
			at.WriteString(`""`)
			continue
		}
		at.WriteString(unquote(p.name))
	}
	return at.String()
}

// nameSet is the folded names of an object: a list, since most objects
// have a few, and a map once there are many.
type nameSet struct {
	names []byte // one after another
	ends  []int  // where each ends in names
	many  map[string]bool
}

// manyNames is how many names a nameSet lists before it maps them.
const manyNames = 32

func (n *nameSet) reset() {
	n.names, n.ends, n.many = n.names[:0], n.ends[:0], nil
}

// add adds name, and reports whether n had it already.
func (n *nameSet) add(name []byte) bool {
	if n.many != nil {
		if n.many[string(name)] {
			return true
		}
		n.many[string(name)] = true
		return false
	}
	start := 0
	for _, end := range n.ends {
		if bytes.Equal(n.names[start:end], name) {
			return true
		}
		start = end
	}
	n.names = append(n.names, name...)
	n.ends = append(n.ends, len(n.names))
	if len(n.ends) > manyNames {
		n.many = make(map[string]bool, 2*manyNames)
		start := 0
		for _, end := range n.ends {
			n.many[string(n.names[start:end])] = true
			start = end
		}
	}
	return false
}

// foldName maps a name to what encoding/json matches it by: each rune to
// the least of those it folds with (Unicode simple folding).
func foldName(name string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, name)
}

// valueProblem says what is wrong with b, a dump that failed to decode
// into t with err, when it is a value that does not decode: where it is
// (accounts[3].created_at) and the form it must have. Go's error names
// neither of a time or bytes field (a *time.ParseError, a
// base64.CorruptInputError), and of a value of the wrong kind (a string
// for a list) names the field without the item (accounts.scopes). Any
// other err is returned as it is.
func valueProblem(b []byte, t reflect.Type, err error) error {
	if p := badValue(b, t, ""); p != nil {
		return p
	}
	return err
}

// badValue finds the first value in b, JSON to decode into t, at path,
// that does not decode, and says what it must be: a time or bytes field
// that does not parse, or a value of the wrong kind.
func badValue(b []byte, t reflect.Type, path string) error {
	switch {
	case t == reflect.TypeFor[time.Time]():
		if json.Unmarshal(b, new(time.Time)) != nil {
			return fmt.Errorf("%s is %s, not an RFC 3339 time such as 2026-01-02T15:04:05Z", path, showJSON(b))
		}
	case t == reflect.TypeFor[[]byte]():
		if json.Unmarshal(b, new([]byte)) != nil {
			return fmt.Errorf("%s is %s, not bytes in standard base64 (RFC 4648 §4, with = padding)", path, showJSON(b))
		}
	case t.Kind() == reflect.Slice:
		var items []json.RawMessage
		_ = json.Unmarshal(b, &items) // of another kind: not this error
		for i, item := range items {
			if p := badValue(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); p != nil {
				return p
			}
		}
	case t.Kind() == reflect.Struct:
		var fields map[string]json.RawMessage
		_ = json.Unmarshal(b, &fields)
		// Sorted, so that of two spellings that both do not decode
		// (created_at, CREATED_AT) the same one is named every time.
		keys := slices.Sorted(maps.Keys(fields))
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" {
				name = f.Name // FormatV1's items
			}
			for _, k := range keys {
				// encoding/json matches names in any case.
				if !strings.EqualFold(k, name) {
					continue
				}
				v := fields[k]
				at := k
				if path != "" {
					at = path + "." + k
				}
				if p := badValue(v, f.Type, at); p != nil {
					return p
				}
			}
		}
	}
	// Nothing in it is at fault: if it does not decode, it is a value of
	// the wrong kind. (Of the dump itself, not an object, the caller says.)
	var typ *json.UnmarshalTypeError
	if err := json.Unmarshal(b, reflect.New(t).Interface()); path != "" && errors.As(err, &typ) {
		shown := showJSON(b)
		if shown == "a JSON number" && len(b) <= 32 {
			shown = "the number " + string(b)
		}
		return fmt.Errorf("%s is %s, not %s", path, shown, jsonKind(t))
	}
	return nil
}

// jsonKind names the JSON of a value that decodes into t.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a JSON string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("a whole number of %d bits", t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("a whole number from 0, of %d bits", t.Bits())
	case reflect.Float32, reflect.Float64:
		return "a JSON number"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	}
	return "a JSON value of another kind"
}

// showJSON shows a JSON value for a message: a string quoted, cut to 64
// bytes; anything else by its kind.
func showJSON(b []byte) string {
	var s string
	if json.Unmarshal(b, &s) == nil {
		return oauth2.QuoteShort(s)
	}
	switch b[0] {
	case '{':
		return "a JSON object"
	case '[':
		return "a JSON array"
	case 't', 'f':
		return "a JSON boolean"
	}
	return "a JSON number"
}

// convert maps a slice, nil to nil.
func convert[T, U any](in []T, f func(T) U) []U {
	if in == nil {
		return nil
	}
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}
