package transfer_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/storage/sqlstore"
	"github.com/keyward/keyward/internal/testkeys"
	"github.com/keyward/keyward/internal/transfer"
)

// FuzzImport edits a real export and imports it. The exports are
// testdata/export-v2.json, which 'keyward export' wrote of a served store
// (generated and uploaded keys, a secret, sealed signing keys and pepper,
// an organization with users, a project and a delegation), and
// export-v1.json, of an earlier release. The fuzzer's first byte picks
// one; each 4 bytes after it are an edit (see edit): a field of an item
// set to another item's value or to one the rules are about, an item
// removed or given twice. The edited dump goes through the JSON that
// 'keyward export' writes and 'keyward import' reads, and is imported
// into an empty SQLite store. Either the import is refused, saying that
// nothing was imported (quoting the file's values: no control character
// reaches the terminal as it is, nor in a warning), and the store is left empty (no item, no audit
// event); or the store's export is the file again, item for item, with
// an audit log that verifies. A refused import leaves the store to the
// next input; only an accepted one costs a new store.
func FuzzImport(f *testing.F) {
	var bases []transfer.Dump
	for _, name := range []string{"export-v2.json", "export-v1.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		var d transfer.Dump
		if err := json.Unmarshal(b, &d); err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		bases = append(bases, d)
	}
	p := newPools(bases)
	for _, seed := range [][]byte{
		{0}, {1}, // the exports as they are
		{0, 1, 0, 1, 0},               // an account without its email
		{0, 2, 1, 254, 0},             // a key twice
		{0, 2, 0, 3, 40},              // a key's public key replaced
		{0, 9, 0, 1, 7},               // a delegation to no account
		{0, 0, 1, 255, 0},             // an API removed, its scopes with it
		{0, 1, 2, 1, 30},              // an account's email changed
		{0, 7, 1, 0, 201},             // a user's email in upper case
		{0, 3, 0, 2, 100},             // a secret's hash replaced
		{0, 4, 0, 2, 1},               // a signing key's sealed value replaced
		{1, 6, 0, 1, 3},               // an organization's blocked scope twice
		{0, 1, 0, 14, 2},              // an account's created_at
		{0, 1, 1, 7, 5},               // an account's token lifetime
		{0, 1, 0, 9, 13},              // an account's TLS binding
		{0, 5, 0, 255, 0},             // the pepper removed
		{0, 8, 0, 1, 9},               // a project placed in no organization
		{0, 2, 3, 254, 0, 2, 4, 0, 1}, // a key given again with another ID
	} {
		f.Add(seed)
	}

	ctx := context.Background()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	// Each new store is a copy of one made at the start: a store's
	// migrations cost more than an import.
	dir := storeDir(f)
	empty := filepath.Join(dir, "empty.db")
	st0, err := sqlite.Open(ctx, empty, sqlite.Options{})
	if err != nil {
		f.Fatal(err)
	}
	st0.Close()
	schema, err := os.ReadFile(empty)
	if err != nil {
		f.Fatal(err)
	}
	var (
		st *sqlstore.Store
		n  int
	)
	defer func() {
		if st != nil {
			st.Close()
		}
	}()
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) == 0 || len(ops) > 4*16+1 {
			return
		}
		d := clone(bases[int(ops[0])%len(bases)])
		for e := ops[1:]; len(e) >= 4; e = e[4:] {
			p.edit(&d, e[0], e[1], e[2], e[3])
		}
		b, err := json.Marshal(d)
		if err != nil {
			return // a time JSON cannot hold: no file has it
		}
		var in transfer.Dump
		if err := json.Unmarshal(b, &in); err != nil {
			t.Fatalf("an export's JSON does not read back: %v\n%s", err, b)
		}

		if st == nil {
			n++
			path := filepath.Join(dir, strconv.Itoa(n)+".db")
			if err := os.WriteFile(path, schema, 0o600); err != nil {
				t.Fatal(err)
			}
			if st, err = sqlite.Open(ctx, path, sqlite.Options{NoMigrate: true}); err != nil {
				t.Fatal(err)
			}
		}
		ierr := transfer.Import(ctx, st, in, now)
		got, err := transfer.Export(ctx, st, now)
		if err != nil {
			t.Fatalf("export after import (%v): %v", ierr, err)
		}
		events, err := st.ListAuditEvents(ctx, storage.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range transfer.Warnings(in, accountDomain, now) {
			if strings.ContainsFunc(w, unicode.IsControl) {
				t.Errorf("a warning shows a control character of the file as it is: %q", w)
			}
		}
		if ierr != nil {
			if !strings.Contains(ierr.Error(), "nothing was imported") {
				t.Errorf("a refused import says %q, not that nothing was imported", ierr)
			}
			if strings.ContainsFunc(ierr.Error(), unicode.IsControl) {
				t.Errorf("a refused import shows a control character of the file as it is: %q", ierr)
			}
			if len(got.APIs)+len(got.Accounts)+len(got.Keys)+len(got.Secrets)+len(got.SigningKeys)+len(got.SealedValues)+
				len(got.Orgs)+len(got.Users)+len(got.Projects)+len(got.Grants)+len(events) > 0 {
				t.Fatalf("a refused import (%v) left data: %+v and %d audit events", ierr, got, len(events))
			}
			return
		}
		// The next input needs an empty store.
		defer func() {
			st.Close()
			st = nil
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(filepath.Join(dir, strconv.Itoa(n)+".db"+suffix))
			}
		}()
		got.ExportedAt = in.ExportedAt
		for i, a := range in.APIs { // the store's default, as the admin API's
			if a.TokenFormat == "" {
				in.APIs[i].TokenFormat = storage.TokenJWT
			}
		}
		if g, w := canonical(t, got), canonical(t, in); !bytes.Equal(g, w) {
			t.Fatalf("the store's export is not the imported file: %s", firstDiff(g, w))
		}
		if len(events) == 0 {
			t.Fatal("an import left no audit event")
		}
		if _, err := storage.VerifyLog(ctx, st); err != nil {
			t.Fatalf("the audit log after an import: %v", err)
		}
	})
}

// storeDir is the directory FuzzImport keeps its stores in: one in
// /dev/shm, in memory, where the system has it, else tb's TempDir. Each
// accepted import commits to a new store, and SQLite syncs every commit
// to disk (synchronous(FULL)): on a disk, those syncs were four fifths
// of the fuzzer's time, which ran at a fifth of the speed. A fuzzing
// worker, killed at the end, runs no cleanup: the directory is named by
// the process, and one whose process has ended is removed.
func storeDir(tb testing.TB) string {
	const prefix = "/dev/shm/keyward-FuzzImport-"
	left, _ := filepath.Glob(prefix + "*")
	for _, d := range left {
		pid, err := strconv.Atoi(strings.TrimPrefix(d, prefix))
		if err != nil {
			continue
		}
		if p, err := os.FindProcess(pid); err == nil && errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone) {
			os.RemoveAll(d)
		}
	}
	dir := prefix + strconv.Itoa(os.Getpid())
	os.RemoveAll(dir) // of an ended process with the same ID
	if err := os.Mkdir(dir, 0o700); err != nil {
		return tb.TempDir()
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// canonical is the JSON of d with each list of items sorted and every
// time in UTC, to the microsecond: an export lists items in the store's
// order, and a store keeps an instant in microseconds, not its zone.
func canonical(t *testing.T, d transfer.Dump) []byte {
	v := reflect.ValueOf(&d).Elem()
	for i := range v.NumField() {
		l := v.Field(i)
		if l.Kind() != reflect.Slice {
			continue
		}
		items := make([][]byte, l.Len())
		for j := range l.Len() {
			inUTC(l.Index(j))
			b, err := json.Marshal(l.Index(j).Interface())
			if err != nil {
				t.Fatal(err)
			}
			items[j] = b
		}
		idx := make([]int, l.Len())
		for j := range idx {
			idx[j] = j
		}
		slices.SortStableFunc(idx, func(a, b int) int { return bytes.Compare(items[a], items[b]) })
		sorted := reflect.MakeSlice(l.Type(), l.Len(), l.Len())
		for j, k := range idx {
			sorted.Index(j).Set(l.Index(k))
		}
		if l.Len() == 0 {
			sorted = reflect.Zero(l.Type())
		}
		l.Set(sorted)
	}
	b, err := json.MarshalIndent(d, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firstDiff shows where got and want, JSON with one value a line, first
// differ, with the lines before for context.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	i := 0
	for i < len(g) && i < len(w) && g[i] == w[i] {
		i++
	}
	ctx := strings.Join(g[max(0, i-8):i], "\n")
	line := func(l []string) string {
		if i < len(l) {
			return l[i]
		}
		return "(end)"
	}
	return fmt.Sprintf("at line %d, after\n%s\n got %s\nwant %s", i+1, ctx, line(g), line(w))
}

// inUTC sets every time in the struct v to UTC, to the microsecond, and
// every empty list to nil.
func inUTC(v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(f.Interface().(time.Time).UTC().Truncate(time.Microsecond)))
		case f.Kind() == reflect.Slice && f.Len() == 0:
			f.Set(reflect.Zero(f.Type()))
		}
	}
}

// pools are the values edits put in fields, by type: the bases' own (so
// that an edit can name another item, or give a value twice) and those
// the import's rules are about.
type pools struct {
	strs  []string
	bytes [][]byte
	times []time.Time
	durs  []time.Duration
}

func newPools(bases []transfer.Dump) *pools {
	p := &pools{
		strs: []string{"", " ", "x", "\x00", "a\x00b", "\u00e9", strings.Repeat("a", 300), "keyward.admin", "keyward.introspect",
			"orders.read orders.write", "a@b", "A@EXAMPLE.COM", "a@example.com.", "example.com.", "EXAMPLE.COM", "*", "123",
			"RS256", "ES256", "EdDSA", "HS256", "none", "generated", "uploaded", "jwt", "opaque", "client-secret-pepper",
			"client_secret_basic", "tls_client_auth", "CN=a", "10.0.0.1", "spiffe://a"},
		times: []time.Time{{}, t0, t0.Add(time.Nanosecond), t0.Add(time.Microsecond), t0.In(time.FixedZone("", -7*3600)),
			time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC), time.Unix(0, 0),
			time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2262, 4, 12, 0, 0, 0, 0, time.UTC)},
		durs: []time.Duration{0, 1, -1, time.Second, 59 * time.Second, time.Minute, time.Hour, 24 * time.Hour, math.MaxInt64, math.MinInt64},
	}
	spki := func(pub any) []byte {
		b, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			panic(err)
		}
		return b
	}
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	rsaE := func(bits, e int) []byte {
		k := testkeys.RSAPublic(bits)
		k.E = e
		return spki(k)
	}
	even := testkeys.RSAPublic(2048)
	even = &rsa.PublicKey{N: new(big.Int).SetBit(even.N, 0, 0), E: 65537}
	p.bytes = [][]byte{nil, {}, {0}, []byte("not DER"), spki(&ec384.PublicKey), spki(&ec256.PublicKey), spki(ed),
		spki(testkeys.RSAPublic(1024)), spki(testkeys.RSAPublic(2048)), spki(testkeys.RSAPublic(8200)),
		rsaE(2048, 1), rsaE(2048, 4), rsaE(2048, 3), spki(even)}
	for _, d := range bases {
		collect(reflect.ValueOf(d), p)
	}
	return p
}

// collect adds the strings and bytes of v to p.
func collect(v reflect.Value, p *pools) {
	switch {
	case v.Type() == reflect.TypeFor[[]byte]():
		if v.Len() > 0 {
			p.bytes = append(p.bytes, v.Bytes())
		}
	case v.Kind() == reflect.String:
		if s := v.String(); !slices.Contains(p.strs, s) {
			p.strs = append(p.strs, s)
		}
	case v.Kind() == reflect.Slice:
		for i := range v.Len() {
			collect(v.Index(i), p)
		}
	case v.Kind() == reflect.Struct && v.Type() != reflect.TypeFor[time.Time]():
		for i := range v.NumField() {
			collect(v.Field(i), p)
		}
	}
}

// edit changes d as four bytes say: list picks one of d's lists of items
// (APIs, accounts, keys, secrets, signing keys, sealed values,
// organizations, users, projects, grants, in Dump's order) and item one of
// its items; field 255 removes the item, 254 appends a copy of it, and
// any other picks a field, which val sets: a string, bytes, a time or a
// duration to a value of the pools (a string also in upper case, or with a
// space or a NUL added), a list of strings by adding, removing or
// repeating one, a flag turned over, a TLS binding's field to a string.
func (p *pools) edit(d *transfer.Dump, list, item, field, val byte) {
	var lists []reflect.Value
	v := reflect.ValueOf(d).Elem()
	for i := range v.NumField() {
		if v.Field(i).Kind() == reflect.Slice {
			lists = append(lists, v.Field(i))
		}
	}
	l := lists[int(list)%len(lists)]
	if l.Len() == 0 {
		if field == 254 { // a new, empty item
			l.Set(reflect.Append(l, reflect.Zero(l.Type().Elem())))
		}
		return
	}
	i := int(item) % l.Len()
	switch field {
	case 255:
		l.Set(reflect.AppendSlice(l.Slice(0, i), l.Slice(i+1, l.Len())))
		return
	case 254:
		l.Set(reflect.Append(l, l.Index(i)))
		return
	}
	it := l.Index(i)
	p.set(it.Field(int(field)%it.NumField()), val)
}

// set sets f as edit says.
func (p *pools) set(f reflect.Value, val byte) {
	pick := func(n int) int { return int(val) % n }
	switch {
	case f.Type() == reflect.TypeFor[time.Time]():
		f.Set(reflect.ValueOf(p.times[pick(len(p.times))]))
	case f.Type() == reflect.TypeFor[time.Duration]():
		f.SetInt(int64(p.durs[pick(len(p.durs))]))
	case f.Type() == reflect.TypeFor[[]byte]():
		f.SetBytes(slices.Clone(p.bytes[pick(len(p.bytes))]))
	case f.Kind() == reflect.String:
		switch {
		case val >= 240:
			f.SetString(f.String() + "\x00")
		case val >= 220:
			f.SetString(f.String() + " ")
		case val >= 200:
			f.SetString(strings.ToUpper(f.String()))
		default:
			f.SetString(p.strs[pick(len(p.strs))])
		}
	case f.Kind() == reflect.Bool:
		f.SetBool(!f.Bool())
	case f.Kind() == reflect.Slice: // []string
		s := f.Interface().([]string)
		switch val % 4 {
		case 0:
			s = append(slices.Clone(s), p.strs[int(val/4)%len(p.strs)])
		case 1:
			if len(s) > 0 {
				s = slices.Clone(s[1:])
			}
		case 2:
			s = nil
		case 3:
			if len(s) > 0 {
				s = append(slices.Clone(s), s[0])
			}
		}
		f.Set(reflect.ValueOf(s))
	case f.Kind() == reflect.Struct: // the TLS binding
		p.set(f.Field(int(val)%f.NumField()), val/byte(f.NumField()))
	}
}
