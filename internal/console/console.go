// Package console serves Keyward's web console: a single page, embedded in
// the binary, through which an operator manages service accounts with
// their keys and secrets, the APIs and the organizations of domain-wide
// delegation, revokes tokens, rotates the signing keys and reads the audit
// log. The page talks only to the admin REST API (/v1/) and the token endpoint
// of the server that serves it, with a bearer token it keeps in memory: no
// cookies, no sessions and no server-side state of its own.
//
// Every response carries a strict Content-Security-Policy (no inline
// script or style, no third-party origins, no framing), so server data the
// page shows can only ever be text.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/oauth2"
)

// Path is where the console is mounted; Handler also answers Path without
// the trailing slash, with a redirect.
const Path = "/console/"

// ContentSecurityPolicy is sent with every console response. Trusted Types
// make the browser itself refuse HTML strings in DOM sinks such as
// innerHTML, on top of the page never using them.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"form-action 'none'; frame-ancestors 'none'; base-uri 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

//go:embed static
var static embed.FS

// contentTypes are the types of the files the console may embed; a file
// of any other kind is a mistake the tests catch.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// asset is one embedded file, ready to serve.
type asset struct {
	name        string
	body        []byte
	contentType string
	etag        string
}

// Handler serves the console. Its zero value is not usable; call New.
type Handler struct {
	assets map[string]*asset // by path below Path; "" is index.html
}

// New returns the console handler, mounted at Path (and at Path without
// its trailing slash, which redirects).
func New() *Handler {
	h, err := newHandler(static)
	if err != nil {
		panic("console: " + err.Error()) // the embedded files are fixed at build time
	}
	return h
}

// newHandler indexes the files under static/ in fsys.
func newHandler(fsys fs.FS) (*Handler, error) {
	h := &Handler{assets: map[string]*asset{}}
	err := fs.WalkDir(fsys, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("%s: no content type for %q files", p, path.Ext(p))
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		name := strings.TrimPrefix(p, "static/")
		h.assets[name] = &asset{name: name, body: body, contentType: ct, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	index, ok := h.assets["index.html"]
	if !ok {
		return nil, fmt.Errorf("static/index.html is missing")
	}
	h.assets[""] = index
	return h, nil
}

// Register mounts the console on mux at Path, and at Path without its
// trailing slash.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle(Path, h)
	mux.Handle(strings.TrimSuffix(Path, "/"), h)
}

// ServeHTTP serves the embedded files by GET and HEAD; anything else under
// Path is 404 (there is no directory listing), and other methods are 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		plain(w, http.StatusMethodNotAllowed, "The console is read with GET or HEAD only.")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, Path)
	if !ok {
		if r.URL.Path+"/" == Path {
			// Relative, so that it also works behind a proxy that mounts
			// Keyward under a path prefix.
			hd.Set("Location", path.Base(Path)+"/")
			hd.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		plain(w, http.StatusNotFound, "There is no console page here.")
		return
	}
	a, ok := h.assets[rest]
	if !ok {
		plain(w, http.StatusNotFound, "There is no console page "+shownPath(r)+".")
		return
	}
	hd.Set("Content-Type", a.contentType)
	if a.name == "index.html" {
		// The page is the entry point: always fetch it afresh, so that an
		// upgraded server never runs with an old page.
		hd.Set("Cache-Control", "no-store")
	} else {
		hd.Set("Cache-Control", "no-cache")
		hd.Set("ETag", a.etag)
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// maxShownPath bounds the path a 404 echoes: the caller picks it, up to
// the server's header limit.
const maxShownPath = 200

// shownPath is r's path as a 404 names it: escaped, so printable ASCII
// (no control character reaches a terminal that shows the answer),
// without a credential given in it (oauth2.ShownPath), and cut at
// maxShownPath bytes.
func shownPath(r *http.Request) string {
	return oauth2.ShownRequestPath(r, maxShownPath)
}

// plain writes a short text answer.
func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}
