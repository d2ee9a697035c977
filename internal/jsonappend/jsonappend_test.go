package jsonappend_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/keyward/keyward/internal/jsonappend"
)

func marshal(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var samples = []string{
	"",
	"plain ascii 123",
	`quote " and backslash \`,
	"html <script>&</script>",
	"controls \x00\x01\b\f\n\r\t\x1f\x7f",
	"unicode é ☃ 𝄞",
	"separators \u2028 and \u2029",
	"invalid \xff\xfe utf-8 \xc3",
	"truncated rune \xe2\x82",
	"surrogate half \xed\xa0\x80",
	"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
}

func TestString(t *testing.T) {
	for _, s := range samples {
		if got, want := string(jsonappend.String(nil, s)), marshal(t, s); got != want {
			t.Errorf("String(%q) = %s, json.Marshal = %s", s, got, want)
		}
	}
}

func TestStringAppends(t *testing.T) {
	if got := string(jsonappend.String([]byte("x="), "<")); got != `x="\u003c"` {
		t.Errorf("got %s", got)
	}
}

func FuzzString(f *testing.F) {
	for _, s := range samples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(jsonappend.String(nil, s)), marshal(t, s); got != want {
			t.Fatalf("String(%q) = %s, json.Marshal = %s", s, got, want)
		}
	})
}

func TestStringsAndMaps(t *testing.T) {
	tests := []struct {
		got  []byte
		want any
	}{
		{jsonappend.Strings(nil, nil), []string(nil)},
		{jsonappend.Strings(nil, []string{}), []string{}},
		{jsonappend.Strings(nil, samples), samples},
		{jsonappend.StringMap(nil, nil), map[string]string(nil)},
		{jsonappend.StringMap(nil, map[string]string{}), map[string]string{}},
		{jsonappend.StringMap(nil, map[string]string{"b": "2", "a": "1", "<": "&", "é": "\xff", "": ""}),
			map[string]string{"b": "2", "a": "1", "<": "&", "é": "\xff", "": ""}},
	}
	for _, tt := range tests {
		if want := marshal(t, tt.want); string(tt.got) != want {
			t.Errorf("got %s, json.Marshal = %s", tt.got, want)
		}
	}
}

// StringMap sorts the keys of a map as large as an audit event's data
// without allocating, and those of a larger one in order too.
func TestStringMapAllocs(t *testing.T) {
	for _, n := range []int{12, 40} {
		m := map[string]string{}
		for i := range n {
			m[strconv.Itoa(i)] = "v"
		}
		if got, want := string(jsonappend.StringMap(nil, m)), marshal(t, m); got != want {
			t.Errorf("StringMap of %d keys = %s, json.Marshal = %s", n, got, want)
		}
		if n > 16 {
			continue
		}
		dst := make([]byte, 0, 1024)
		if allocs := testing.AllocsPerRun(100, func() { jsonappend.StringMap(dst, m) }); allocs != 0 {
			t.Errorf("StringMap of %d keys allocates %v times, want 0", n, allocs)
		}
	}
}

func FuzzStringMap(f *testing.F) {
	f.Add("a", "1", "b", "2")
	f.Add("same", "x", "same", "y")
	f.Add("\xff", "<", "\u2028", "\x00")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		m := map[string]string{k1: v1, k2: v2}
		if got, want := string(jsonappend.StringMap(nil, m)), marshal(t, m); got != want {
			t.Fatalf("StringMap(%q) = %s, json.Marshal = %s", m, got, want)
		}
	})
}

func TestObject(t *testing.T) {
	type inner struct {
		S string `json:"s"`
	}
	type empty struct{}
	want := struct {
		A string            `json:"a"`
		N int64             `json:"n"`
		T bool              `json:"t"`
		F bool              `json:"f"`
		L []string          `json:"l"`
		M map[string]string `json:"m"`
		R json.RawMessage   `json:"r"`
		I inner             `json:"i"`
		E empty             `json:"e"`
		Z int64             `json:"z"`
	}{"x<y", -42, true, false, []string{"p", "q"}, map[string]string{"k": "v"}, json.RawMessage(`[1,2]`), inner{"in"}, empty{}, 0}

	o := jsonappend.NewObject([]byte(nil))
	o.String("a", want.A)
	o.Int("n", want.N)
	o.Bool("t", want.T)
	o.Bool("f", want.F)
	o.Strings("l", want.L)
	o.StringMap("m", want.M)
	o.Raw("r", want.R)
	o.Open("i")
	o.String("s", want.I.S)
	o.Close()
	o.Open("e")
	o.Close()
	o.Int("z", want.Z)
	if got, want := string(o.End()), marshal(t, want); got != want {
		t.Errorf("object = %s, json.Marshal = %s", got, want)
	}

	e := jsonappend.NewObject([]byte("prefix "))
	if got := string(e.End()); got != "prefix {}" {
		t.Errorf("empty object = %s", got)
	}
}

func BenchmarkString(b *testing.B) {
	s := "eyJhbGciOiJFUzI1NiIsImtpZCI6ImtleS0xIiwidHlwIjoiYXQrand0In0.eyJpc3MiOiJodHRwczovL2tleXdhcmQuZXhhbXBsZSJ9.c2lnbmF0dXJl"
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = jsonappend.String(buf[:0], s)
	}
}

// BenchmarkStringMap measures an audit event's data: a dozen keys.
func BenchmarkStringMap(b *testing.B) {
	m := map[string]string{}
	for _, k := range []string{"auth_method", "client_id", "grant", "scope", "active", "token_id", "account_id", "api", "caller", "error", "description", "secret_id"} {
		m[k] = "value-of-" + k
	}
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = jsonappend.StringMap(dst[:0], m)
	}
}
