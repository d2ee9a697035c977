package console

import (
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/storage"
)

func serve(t *testing.T, h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	h.(*Handler).Register(mux)
	r := httptest.NewRequest(method, target, nil)
	for k, vs := range header {
		r.Header[k] = vs
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return w
}

func TestConsoleResponses(t *testing.T) {
	h := New()
	tests := []struct {
		name, method, target string
		status               int
		contentType          string
		cacheControl         string
		location             string
		allow                string
		bodyHas              string
	}{
		{"index", "GET", "/console/", 200, "text/html; charset=utf-8", "no-store", "", "", `<script type="module" src="app.js">`},
		{"index by name", "GET", "/console/index.html", 200, "text/html; charset=utf-8", "no-store", "", "", "<title>Keyward console</title>"},
		{"index HEAD", "HEAD", "/console/", 200, "text/html; charset=utf-8", "no-store", "", "", ""},
		{"script", "GET", "/console/app.js", 200, "text/javascript; charset=utf-8", "no-cache", "", "", "onSessionChange"},
		{"module", "GET", "/console/signin.js", 200, "text/javascript; charset=utf-8", "no-cache", "", "", "crypto.subtle.sign"},
		{"style", "GET", "/console/console.css", 200, "text/css; charset=utf-8", "no-cache", "", "", "[hidden]"},
		{"icon", "GET", "/console/icon.svg", 200, "image/svg+xml", "no-cache", "", "", "<svg"},
		{"no slash redirects", "GET", "/console", 301, "", "no-store", "console/", "", ""},
		{"no slash HEAD redirects", "HEAD", "/console", 301, "", "no-store", "console/", "", ""},
		{"unknown file", "GET", "/console/nope.js", 404, "text/plain; charset=utf-8", "no-store", "", "", "There is no console page /console/nope.js."},
		{"unknown file, escaped", "GET", "/console/a%1b%5D0;x%07.js", 404, "text/plain; charset=utf-8", "no-store", "", "", "There is no console page /console/a%1b%5D0;x%07.js."},
		{"unknown file, long", "GET", "/console/" + strings.Repeat("x", 5000), 404, "text/plain; charset=utf-8", "no-store", "", "", "There is no console page /console/" + strings.Repeat("x", 200-len("/console/")) + "…."},
		{"unknown file, a secret", "GET", "/console/kw%5F" + strings.Repeat("Zs9", 14) + "x", 404, "text/plain; charset=utf-8", "no-store", "", "", "There is no console page /console/(credential)."},
		{"no directory listing", "GET", "/console/static/", 404, "text/plain; charset=utf-8", "no-store", "", "", ""},
		{"embedded path is not a URL", "GET", "/console/static/app.js", 404, "text/plain; charset=utf-8", "no-store", "", "", ""},
		{"subdirectory", "GET", "/console/a/b", 404, "text/plain; charset=utf-8", "no-store", "", "", ""},
		{"query ignored", "GET", "/console/?x=<script>", 200, "text/html; charset=utf-8", "no-store", "", "", ""},
		{"POST", "POST", "/console/", 405, "text/plain; charset=utf-8", "no-store", "", "GET, HEAD", "GET or HEAD"},
		{"PUT file", "PUT", "/console/app.js", 405, "text/plain; charset=utf-8", "no-store", "", "GET, HEAD", ""},
		{"DELETE no slash", "DELETE", "/console", 405, "text/plain; charset=utf-8", "no-store", "", "GET, HEAD", ""},
		{"OPTIONS", "OPTIONS", "/console/", 405, "text/plain; charset=utf-8", "no-store", "", "GET, HEAD", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(t, h, tc.method, tc.target, nil)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d; body %q", w.Code, tc.status, w.Body)
			}
			want := map[string]string{
				"Content-Security-Policy":      ContentSecurityPolicy,
				"X-Content-Type-Options":       "nosniff",
				"Referrer-Policy":              "no-referrer",
				"X-Frame-Options":              "DENY",
				"Content-Type":                 tc.contentType,
				"Cache-Control":                tc.cacheControl,
				"Location":                     tc.location,
				"Allow":                        tc.allow,
				"Set-Cookie":                   "",
				"Access-Control-Allow-Origin":  "",
				"Cross-Origin-Resource-Policy": "same-origin",
			}
			for k, v := range want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if !strings.Contains(w.Body.String(), tc.bodyHas) {
				t.Errorf("body lacks %q", tc.bodyHas)
			}
			if tc.method == "HEAD" && w.Body.Len() != 0 {
				t.Errorf("HEAD has a body of %d bytes", w.Body.Len())
			}
		})
	}
}

// The policy is the strict one: nothing but this origin, no framing, no
// form submission, no base URL changes, HTML strings refused in sinks.
func TestConsoleCSP(t *testing.T) {
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self'",
		"form-action 'none'", "frame-ancestors 'none'", "base-uri 'none'", "require-trusted-types-for 'script'"} {
		if !slices.Contains(strings.Split(ContentSecurityPolicy, "; "), d) {
			t.Errorf("the CSP lacks %s", d)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe") || strings.Contains(ContentSecurityPolicy, "data:") || strings.Contains(ContentSecurityPolicy, "*") {
		t.Errorf("the CSP allows too much: %s", ContentSecurityPolicy)
	}
}

func TestConsoleETag(t *testing.T) {
	h := New()
	w := serve(t, h, "GET", "/console/app.js", nil)
	etag := w.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on a script")
	}
	w = serve(t, h, "GET", "/console/app.js", http.Header{"If-None-Match": {etag}})
	if w.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match with the ETag: %d, want 304", w.Code)
	}
	if w.Header().Get("Content-Security-Policy") == "" {
		t.Error("a 304 lacks the security headers")
	}
}

var (
	// references in index.html: src and href of files next to it.
	htmlRefRE = regexp.MustCompile(`(?:src|href)="([^"#:]+)"`)
	// module imports: import … from "./x.js".
	importRE = regexp.MustCompile(`from "\./([^"]+)"`)
)

// Every file the page refers to is embedded, and every embedded file is
// referred to.
func TestConsoleFilesReferenced(t *testing.T) {
	h := New()
	files := embedded(h)
	referenced := map[string]bool{"index.html": true}
	for _, name := range files {
		body := string(h.assets[name].body)
		var refs [][]string
		switch {
		case strings.HasSuffix(name, ".html"):
			refs = htmlRefRE.FindAllStringSubmatch(body, -1)
		case strings.HasSuffix(name, ".js"):
			refs = importRE.FindAllStringSubmatch(body, -1)
		}
		for _, m := range refs {
			if !slices.Contains(files, m[1]) {
				t.Errorf("%s refers to %s, which is not embedded", name, m[1])
			}
			referenced[m[1]] = true
		}
	}
	for _, name := range files {
		if !referenced[name] {
			t.Errorf("%s is embedded but nothing refers to it", name)
		}
	}
}

// The page has no inline script or style (the CSP would block them) and
// never turns strings into HTML or code.
func TestConsoleNoInlineCodeOrHTMLSinks(t *testing.T) {
	h := New()
	index := string(h.assets["index.html"].body)
	for _, bad := range []*regexp.Regexp{regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`), regexp.MustCompile(`<script(?:(?:\s(?:type="module"))?)>`),
		regexp.MustCompile(`<style`), regexp.MustCompile(`\sstyle=`), regexp.MustCompile(`\son[a-z]+=`), regexp.MustCompile(`javascript:`)} {
		if bad.MatchString(index) {
			t.Errorf("index.html matches %s", bad)
		}
	}
	for _, name := range embedded(h) {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		body := string(h.assets[name].body)
		for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage", "sessionStorage", "document.cookie", "indexedDB"} {
			if strings.Contains(body, sink) {
				t.Errorf("%s uses %s", name, sink)
			}
		}
	}
}

func TestConsoleRefusesUnknownFiles(t *testing.T) {
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"unknown extension", fstest.MapFS{"static/index.html": {}, "static/x.exe": {}}, "no content type"},
		{"no index", fstest.MapFS{"static/app.js": {}}, "index.html is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newHandler(fs.FS(tc.fsys))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// embedded returns the names of h's embedded files, sorted.
func embedded(h *Handler) []string {
	var names []string
	for name := range h.assets {
		if name != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// The account form offers exactly the client authentication methods the
// server knows, in its order.
func TestConsoleAuthMethods(t *testing.T) {
	app := string(New().assets["app.js"].body)
	m := regexp.MustCompile(`const AUTH_METHODS = \[([^\]]*)\];`).FindStringSubmatch(app)
	if m == nil {
		t.Fatal("app.js declares no AUTH_METHODS")
	}
	var got []string
	for _, q := range strings.Split(m[1], ",") {
		got = append(got, strings.Trim(strings.TrimSpace(q), `"`))
	}
	if !slices.Equal(got, storage.AuthMethods) {
		t.Errorf("app.js AUTH_METHODS = %q, want storage.AuthMethods %q", got, storage.AuthMethods)
	}
}

// The users import's tables of characters (userimport.js) are Go's, as
// keyward users import reads a file with the standard library: SPACE is
// every rune unicode.IsSpace takes, and foldName folds to an ASCII letter
// every other rune encoding/json's name matching folds to one (the
// smallest rune of its unicode.SimpleFold orbit).
func TestConsoleUnicodeTables(t *testing.T) {
	js := string(New().assets["userimport.js"].body)
	m := regexp.MustCompile(`const SPACE = new Set\(("[^"]*")\);`).FindStringSubmatch(js)
	if m == nil {
		t.Fatal("userimport.js declares no SPACE")
	}
	// The JS string's escapes (\t … \r, \uXXXX) are Go's too.
	space, err := strconv.Unquote(m[1])
	if err != nil {
		t.Fatalf("SPACE %s: %v", m[1], err)
	}
	var want []rune
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if unicode.IsSpace(r) {
			want = append(want, r)
		}
	}
	if got := []rune(space); !slices.Equal(got, want) {
		t.Errorf("userimport.js SPACE = %U, want unicode.IsSpace's %U", got, want)
	}

	m = regexp.MustCompile(`const foldName = \(k\) => k\.replace\(/\[a-z\]/g, \(c\) => c\.toUpperCase\(\)\)((?:\.replace\(/\\u[0-9a-f]{4}/g, "[A-Z]"\))*);`).FindStringSubmatch(js)
	if m == nil {
		t.Fatal("userimport.js declares no foldName of the form this test reads")
	}
	folds := map[rune]rune{}
	for _, f := range regexp.MustCompile(`/\\u([0-9a-f]{4})/g, "([A-Z])"`).FindAllStringSubmatch(m[1], -1) {
		r, _ := strconv.ParseUint(f[1], 16, 32)
		folds[rune(r)] = rune(f[2][0])
	}
	wantFolds := map[rune]rune{}
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		// encoding/json's foldRune: the smallest rune of r's orbit.
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		if least < utf8.RuneSelf {
			wantFolds[r] = unicode.ToUpper(least)
		}
	}
	if !maps.Equal(folds, wantFolds) {
		t.Errorf("userimport.js foldName folds %q to ASCII, want encoding/json's %q", folds, wantFolds)
	}
}
