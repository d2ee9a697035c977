package oauth2

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/keyward/keyward/internal/jsonappend"
)

// tokenBody is a token response that writes its own JSON, as the token
// endpoint's does.
type tokenBody struct{}

func (tokenBody) AppendJSON(b []byte) []byte {
	return append(b, `{"access_token":"eyJhbGciOiJFUzI1NiJ9.e30.c2ln","token_type":"Bearer","expires_in":3600}`...)
}

var _ jsonappend.Appender = tokenBody{}

// headerWriter is a ResponseWriter that keeps its header map between
// responses, so a benchmark counts only what WriteJSON allocates.
type headerWriter struct{ h http.Header }

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *headerWriter) WriteHeader(int)             {}

// BenchmarkWriteJSON measures writing a token response: the body from the
// pool and the four headers.
// Run with: go test ./internal/oauth2 -run '^$' -bench WriteJSON -benchmem
func BenchmarkWriteJSON(b *testing.B) {
	w := &headerWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		WriteJSON(w, http.StatusOK, tokenBody{})
	}
}

// TestWriteJSONHeaders: every JSON answer, a token and an error alike,
// says what it is and that it must not be sniffed as anything else or
// stored.
func TestWriteJSONHeaders(t *testing.T) {
	want := http.Header{
		"Content-Type":           {"application/json"},
		"Cache-Control":          {"no-store"},
		"Pragma":                 {"no-cache"},
		"X-Content-Type-Options": {"nosniff"},
	}
	for name, write := range map[string]func(http.ResponseWriter){
		"token":      func(w http.ResponseWriter) { WriteJSON(w, http.StatusOK, tokenBody{}) },
		"marshalled": func(w http.ResponseWriter) { WriteJSON(w, http.StatusOK, map[string]bool{"active": false}) },
		"error":      func(w http.ResponseWriter) { WriteError(w, Errorf(ErrInvalidGrant, "Invalid JWT Signature.")) },
	} {
		t.Run(name, func(t *testing.T) {
			w := httptest.NewRecorder()
			write(w)
			for k, v := range want {
				if got := w.Result().Header.Values(k); !slices.Equal(got, v) {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestWriteJSONHeadersShared: the header values WriteJSON shares between
// responses cannot be changed through one of them: a header added to after
// WriteJSON gets a copy.
func TestWriteJSONHeadersShared(t *testing.T) {
	a, b := make(http.Header), make(http.Header)
	setJSONHeaders(a)
	a.Add("Cache-Control", "private")
	a.Add("X-Content-Type-Options", "other")
	setJSONHeaders(b)
	if got := b.Values("Cache-Control"); !slices.Equal(got, []string{"no-store"}) {
		t.Errorf("Cache-Control = %q, want [no-store]", got)
	}
	if got := b.Values("X-Content-Type-Options"); !slices.Equal(got, []string{"nosniff"}) {
		t.Errorf("X-Content-Type-Options = %q, want [nosniff]", got)
	}
	for k := range b {
		if ck := http.CanonicalHeaderKey(k); ck != k {
			t.Errorf("key %q is not canonical (%q): Get would not find it", k, ck)
		}
	}
}

// TestWriteJSONHeadersAllocs: the token endpoint's hot path sets its
// headers without allocating.
func TestWriteJSONHeadersAllocs(t *testing.T) {
	h := make(http.Header)
	if n := testing.AllocsPerRun(100, func() { clear(h); setJSONHeaders(h) }); n != 0 {
		t.Errorf("setJSONHeaders allocates %v times, want 0", n)
	}
}
