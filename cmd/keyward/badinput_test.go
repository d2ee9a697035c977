package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/exportfile"
	"github.com/keyward/keyward/internal/storage"
)

// runCLIErrWithin runs the CLI like runCLIErr, but gives up after d, so that a
// command that never ends fails the test instead of hanging it.
func runCLIErrWithin(t *testing.T, d time.Duration, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := runCLIErrContext(ctx, args...)
	if ctx.Err() != nil {
		t.Fatalf("keyward %s did not finish within %v", strings.Join(args, " "), d)
	}
	return err
}

// TestAuditPruneFarBack: a count of days so large that the cut-off overflows
// the store's timestamps is refused; it used to wrap round to a time to
// come, so that prune deleted its own audit.prune events without end.
func TestAuditPruneFarBack(t *testing.T) {
	m := startServer(t)
	for _, before := range []string{"999999999999d", "3652426d"} {
		err := runCLIErrWithin(t, 20*time.Second, "audit", "prune", "--data-dir", m.Config.DataDir, "--before", before)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "10000 years") {
			t.Errorf("prune --before %s: %v, want a usage error about 10000 years", before, err)
		}
	}
	if err := runCLIErrWithin(t, 20*time.Second, "audit", "prune", "--data-dir", m.Config.DataDir, "--before", "3652425d"); err != nil {
		t.Errorf("prune --before 3652425d: %v", err)
	}
}

// TestServerURLRefused: a server URL that is not http(s) with a host is
// refused up front, naming where it came from, instead of failing in the
// HTTP client ("http: no Host in request URL", "unsupported protocol
// scheme") or being blamed on --server when the key file's token_uri or
// bench's --target held it.
func TestServerURLRefused(t *testing.T) {
	m := startServer(t)
	kf, err := os.ReadFile(m.AdminKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(kf, &doc); err != nil {
		t.Fatal(err)
	}
	doc["token_uri"] = "ftp://keyward.internal/token"
	badURI := filepath.Join(t.TempDir(), "key.json")
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(badURI, b, 0o600); err != nil {
		t.Fatal(err)
	}
	doc["token_uri"] = "https://keyward.internal/token?x=1"
	queryURI := filepath.Join(t.TempDir(), "key.json")
	b, _ = json.Marshal(doc)
	if err := os.WriteFile(queryURI, b, 0o600); err != nil {
		t.Fatal(err)
	}
	doc["token_uri"] = m.Issuer + "/v1/token"
	v1URI := filepath.Join(t.TempDir(), "key.json")
	b, _ = json.Marshal(doc)
	if err := os.WriteFile(v1URI, b, 0o600); err != nil {
		t.Fatal(err)
	}
	doc["token_uri"] = m.Issuer + "/token/"
	slashURI := filepath.Join(t.TempDir(), "key.json")
	b, _ = json.Marshal(doc)
	if err := os.WriteFile(slashURI, b, 0o600); err != nil {
		t.Fatal(err)
	}
	creds := []string{"--credentials", m.AdminKeyFile}
	tests := []struct {
		name      string
		env       string // KEYWARD_SERVER
		args      []string
		usage     bool
		wantInErr string
		notInErr  string // "": nothing
	}{
		{name: "no host", args: append([]string{"sa", "list", "--server", "http://"}, creds...), usage: true, wantInErr: `--server "http://"`},
		{name: "scheme that starts with http", args: append([]string{"sa", "list", "--server", "httpfoo://x"}, creds...), usage: true, wantInErr: `--server "httpfoo://x"`},
		{name: "not a URL", args: append([]string{"sa", "list", "--server", "junk"}, creds...), usage: true, wantInErr: `--server "junk"`},
		{name: "password", args: append([]string{"sa", "list", "--server", "http://admin:hunter2@keyward.internal"}, creds...), usage: true, wantInErr: `--server "http://admin:xxxxx@keyward.internal" must be a base URL without a user name, password, query or fragment`},
		// Not an http(s) URL with a host, the password is not shown either.
		{name: "password, another scheme", args: append([]string{"sa", "list", "--server", "ftp://admin:hunter2@keyward.internal"}, creds...), usage: true, wantInErr: `--server "ftp://admin:xxxxx@keyward.internal" must be an http:// or https:// URL with a host`},
		{name: "password, no host", args: append([]string{"sa", "list", "--server", "https://admin:hunter2@"}, creds...), usage: true, wantInErr: `--server "https://admin:xxxxx@" must be an http:// or https:// URL with a host`},
		{name: "password, not a URL", args: append([]string{"sa", "list", "--server", "https://admin:hunter2@keyward internal"}, creds...), usage: true, wantInErr: `--server "https://xxxxx@keyward internal" must be an http:// or https:// URL with a host`},
		{name: "password, no scheme", args: append([]string{"sa", "list", "--server", "admin:hunter2@keyward.internal"}, creds...), usage: true, wantInErr: `--server "xxxxx@keyward.internal" must be an http:// or https:// URL with a host`},
		{name: "query", args: append([]string{"sa", "list", "--server", "http://keyward.internal?x=1"}, creds...), usage: true, wantInErr: `--server "http://keyward.internal?x=1" must be a base URL without`},
		{name: "fragment", env: "http://keyward.internal/#top", args: append([]string{"sa", "list"}, creds...), usage: true, wantInErr: `KEYWARD_SERVER "http://keyward.internal/#top" must be a base URL without`},
		{name: "empty fragment", args: append([]string{"sa", "list", "--server", "http://keyward.internal#"}, creds...), usage: true, wantInErr: `--server "http://keyward.internal#" must be a base URL without`},
		{name: "bench target with a query", args: []string{"bench", "--target", "http://keyward.internal?", "--credentials", m.AdminKeyFile}, usage: true, wantInErr: `--target "http://keyward.internal?" must be a base URL without`},
		{name: "environment", env: "http://", args: append([]string{"sa", "list"}, creds...), usage: true, wantInErr: `KEYWARD_SERVER "http://"`},
		{name: "key file token_uri", args: []string{"sa", "list", "--credentials", badURI}, wantInErr: `token_uri "ftp://keyward.internal/token" must be an http:// or https:// URL with a host, such as https://keyward.internal/token`},
		// A token_uri is the token endpoint, not a base URL.
		{name: "key file token_uri with a query", args: []string{"sa", "list", "--credentials", queryURI},
			wantInErr: `token_uri "https://keyward.internal/token?x=1" must be the token endpoint's URL without a user name, password, query or fragment, such as https://keyward.internal/token`, notInErr: "base URL"},
		// A URL of something that is not a token endpoint is not blamed
		// on the credentials.
		{name: "admin API path", args: append([]string{"sa", "list", "--server", m.Issuer + "/v1"}, creds...), wantInErr: m.Issuer + `/v1/token is not Keyward's token endpoint (HTTP 401 invalid_token): --server "` + m.Issuer + `/v1" must be Keyward's base URL`},
		{name: "no such path", env: m.Issuer + "/keyward", args: append([]string{"sa", "list"}, creds...), wantInErr: `(HTTP 404 not_found): KEYWARD_SERVER "` + m.Issuer + `/keyward" must be Keyward's base URL`},
		{name: "key file token_uri path", args: []string{"sa", "list", "--credentials", v1URI}, wantInErr: m.Issuer + "/v1/token is not Keyward's token endpoint (HTTP 401 invalid_token): " + v1URI + ": token_uri is wrong; pass --server"},
		// Not ending in /token, it has no base URL to find the admin
		// API under.
		{name: "key file token_uri not ending in /token", args: []string{"sa", "list", "--credentials", slashURI},
			wantInErr: slashURI + `: token_uri "` + m.Issuer + `/token/" must be Keyward's token endpoint, whose path ends in /token, such as https://keyward.internal/token; pass --server`},
		{name: "bench target", args: []string{"bench", "--target", "http://", "--credentials", m.AdminKeyFile}, usage: true, wantInErr: `--target "http://"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KEYWARD_SERVER", tt.env)
			err := runCLIErrWithin(t, 20*time.Second, tt.args...)
			var ue usageError
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the password: %v", err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantInErr) || errors.As(err, &ue) != tt.usage {
				t.Fatalf("keyward %s: %v (usage error: %v); want an error naming %s (usage error: %v)", strings.Join(tt.args, " "), err, errors.As(err, &ue), tt.wantInErr, tt.usage)
			}
			if tt.notInErr != "" && strings.Contains(err.Error(), tt.notInErr) {
				t.Errorf("keyward %s: %v, should not say %q", strings.Join(tt.args, " "), err, tt.notInErr)
			}
		})
	}
}

// TestDBNotPostgres: every command that opens the store refuses a --db that
// is not a PostgreSQL URL, as serve does, instead of handing it to the
// PostgreSQL driver ("cannot parse `keyward.db`: failed to parse as
// keyword/value").
func TestDBNotPostgres(t *testing.T) {
	dump := filepath.Join(t.TempDir(), "export.json")
	if err := os.WriteFile(dump, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	newKey := writeMasterKey(t, "c2")
	for _, db := range []string{"junk", "keyward-data/keyward.db", "mysql://u:hunter2@db/keyward"} {
		for _, args := range [][]string{
			{"migrate"},
			{"export"},
			{"import", dump},
			{"audit", "verify"},
			{"audit", "prune", "--before", "90d"},
			{"master-key", "rotate", "--new-master-key-file", newKey},
			{"recover-admin", "--key-file", filepath.Join(t.TempDir(), "k.json")},
		} {
			args := append(args, "--db", db, "--data-dir", t.TempDir())
			err := runCLIErrWithin(t, 20*time.Second, args...)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), "must be a postgres:// URL") || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("keyward %s: %v; want a usage error asking for a postgres:// URL, without the password", strings.Join(args, " "), err)
			}
		}
	}
}

// TestOutputFileErrors: a file to write that is a directory, or in a
// directory that does not exist, is reported by the name given, not as a
// failed rename or by the name of the temporary file written first.
func TestOutputFileErrors(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "writer")
	dir := t.TempDir()
	missing := filepath.Join(dir, "nonexistent", "out.json")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"export to a directory", []string{"export", "--data-dir", m.Config.DataDir, "--out", dir}, dir + " is a directory"},
		{"export to a missing directory", []string{"export", "--data-dir", m.Config.DataDir, "--out", missing}, "cannot create " + missing + ": no such file or directory"},
		{"key file to a directory", []string{"keys", "create", email, "--out", dir, "--credentials", m.AdminKeyFile}, "cannot write the key file, no key was created: " + dir + " is a directory; name a file"},
		{"key file in a missing directory", []string{"keys", "create", email, "--out", missing, "--credentials", m.AdminKeyFile}, "cannot create " + missing + ": no such file or directory"},
		{"recover-admin in a missing directory", []string{"recover-admin", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", missing}, "cannot create " + missing + ": no such file or directory"},
		{"audit prune --export in a missing directory", []string{"audit", "prune", "--data-dir", m.Config.DataDir, "--before", "0s", "--yes", "--export", missing}, "--export: cannot create " + missing + ": no such file or directory (nothing was pruned)"},
		{"dpop keygen in a missing directory", []string{"dpop", "keygen", "--out", missing}, "cannot create " + missing + ": no such file or directory"},
		{"dpop keygen to a directory", []string{"dpop", "keygen", "--out", dir}, dir + " is a directory; name a file for the new key with --out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runCLIErrWithin(t, 20*time.Second, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), ".out.json.") {
				t.Fatalf("keyward %s: %v; want an error saying %q", strings.Join(tt.args, " "), err, tt.want)
			}
		})
	}
}

// TestBenchFlagMessages: bench says what it takes. --duration 0 was refused
// as not "between 0 and 1h", --duration 1ns was taken (and measured next
// to nothing), and an empty --scenarios started a server, ran nothing and
// printed an empty table.
func TestBenchFlagMessages(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--duration", "0s"}, "--duration must be from 100ms to 1h"},
		{[]string{"bench", "--duration", "1ns"}, "--duration must be from 100ms to 1h"},
		{[]string{"bench", "--duration", "2h"}, "--duration must be from 100ms to 1h"},
		{[]string{"bench", "--accounts", "20000000"}, "--accounts must be from 0 to 10000000"},
		{[]string{"bench", "--scenarios", "", "--duration", "100ms", "--warmup", "0s"}, "--scenarios is empty; name one or more of client_credentials_secret"},
	} {
		err := runCLIErrWithin(t, 60*time.Second, tt.args...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("keyward %s: %v; want a usage error saying %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
}

// TestAdminTokenServerError: a token endpoint that fails or is overloaded
// (5xx, 429) while the CLI gets its administrator token is reported as the
// server's failure, and is transient, as the same status from the admin API
// is; it used to read "the administrator credentials were refused", and
// audit list --follow gave up instead of retrying.
func TestAdminTokenServerError(t *testing.T) {
	m := startServer(t)
	for _, tt := range []struct {
		status    int
		body      string
		transient bool
	}{
		{http.StatusServiceUnavailable, `{"error":"temporarily_unavailable","error_description":"The server is shutting down."}`, true},
		{http.StatusTooManyRequests, `{"error":"slow_down"}`, true},
		{http.StatusInternalServerError, `{"error":"server_error"}`, false},
		{http.StatusBadGateway, `<html>bad gateway</html>`, true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tt.status)
			io.WriteString(w, tt.body)
		}))
		err := runCLIErrWithin(t, 20*time.Second, "sa", "list", "--credentials", m.AdminKeyFile, "--server", srv.URL)
		srv.Close()
		if err == nil || strings.Contains(err.Error(), "credentials were refused") || !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", tt.status)) {
			t.Errorf("token endpoint answering %d: %v; want an error naming the server's HTTP %d, not refused credentials", tt.status, err, tt.status)
		}
		if transient(err) != tt.transient {
			t.Errorf("token endpoint answering %d: transient = %v, want %v", tt.status, transient(err), tt.transient)
		}
	}
	// A refusal of the credentials themselves still says so.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
	}))
	defer srv.Close()
	if err := runCLIErrWithin(t, 20*time.Second, "sa", "list", "--credentials", m.AdminKeyFile, "--server", srv.URL); err == nil || !strings.Contains(err.Error(), "credentials were refused") || transient(err) {
		t.Errorf("invalid_grant: %v, want refused credentials, not transient", err)
	}
}

// TestEmptyArgument: an empty or blank name, ID, email or file argument is
// a usage error naming the argument, and nothing is sent; it used to reach
// the admin API as a path with an empty segment ('There is no admin
// endpoint GET /v1/service-accounts/').
func TestEmptyArgument(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request sent: %s %s", r.Method, r.URL)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer srv.Close()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"sa", "get", ""}, `argument 1 (SA) is empty`},
		{[]string{"sa", "update", "", "--description", "x"}, `argument 1 (SA) is empty`},
		{[]string{"sa", "delete", " "}, `argument 1 (SA) is empty`},
		{[]string{"sa", "disable", ""}, `argument 1 (SA) is empty`},
		{[]string{"api", "get", ""}, `argument 1 (NAME) is empty`},
		{[]string{"api", "update", "", "--scopes", "a"}, `argument 1 (NAME) is empty`},
		{[]string{"api", "delete", ""}, `argument 1 (NAME) is empty`},
		{[]string{"keys", "get", "a@b", ""}, `argument 2 (KEY_ID) is empty`},
		{[]string{"keys", "delete", "", "k"}, `argument 1 (SA) is empty`},
		{[]string{"keys", "list", ""}, `argument 1 (SA) is empty`},
		{[]string{"secrets", "get", "a@b", ""}, `argument 2 (SECRET_ID) is empty`},
		{[]string{"org", "get", ""}, `argument 1 (DOMAIN) is empty`},
		{[]string{"users", "add", "a@example.com", ""}, `argument 2 (EMAIL) is empty`},
		{[]string{"tokens", "revoke", ""}, `argument 1 (JTI) is empty`},
		{[]string{"users", "import", ""}, `argument 1 (FILE) is empty`},
		{[]string{"keys", "upload", "", "--public-key", "k.pem"}, `argument 1 (SA) is empty`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := runCLIErr(t, append(tt.args, "--server", srv.URL)...)
			if _, ok := errors.AsType[usageError](err); !ok || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("keyward %q: %v; want a usage error with %q", tt.args, err, tt.want)
			}
		})
	}
}

// TestRevokeInvalidUTF8: a token ID that is not UTF-8 is refused as such,
// as every argument but a file's is (emptyArg), and nothing is sent; JSON
// carried it as U+FFFD, and the server said it "holds a control
// character".
func TestRevokeInvalidUTF8(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request sent: %s %s", r.Method, r.URL)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer srv.Close()
	err := runCLIErr(t, "tokens", "revoke", "\xff", "--server", srv.URL)
	if want := `argument 1 (JTI), $'\xff', is not UTF-8 text`; !strings.Contains(fmt.Sprint(err), want) {
		t.Fatalf("keyward tokens revoke $'\\xff': %v; want %q", err, want)
	}
	if _, ok := errors.AsType[usageError](err); !ok {
		t.Errorf("%v: not a usage error", err)
	}
}

// TestDotArgument: an argument that is "." or ".." names a resource of
// that name, which does not exist, not the path's parent: the server
// redirects an unclean path to its clean form, and 'keys delete SA ..'
// used to follow it and delete the account.
func TestDotArgument(t *testing.T) {
	m := startServer(t)
	creds := []string{"--credentials", m.AdminKeyFile}
	runCLI(t, append([]string{"sa", "create", "job", "--project", "billing"}, creds...)...)
	const sa = "job@billing.iam.keyward.internal"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"keys", "delete", sa, ".."}, `The key ".." of ` + sa + ` does not exist`},
		{[]string{"keys", "disable", sa, ".."}, `The key ".." of ` + sa + ` does not exist`},
		{[]string{"secrets", "delete", sa, ".."}, `does not exist`},
		{[]string{"sa", "get", "."}, `The service account "." does not exist`},
		{[]string{"sa", "delete", ".."}, `The service account ".." does not exist`},
		{[]string{"api", "get", "."}, `The API "." does not exist`},
		{[]string{"users", "list", "--org", ".."}, `The organization ".." does not exist`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := runCLIErr(t, append(tt.args, creds...)...)
			if ae, ok := errors.AsType[*apiError](err); !ok || ae.Status != http.StatusNotFound || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("keyward %q: %v; want not found: %q", tt.args, err, tt.want)
			}
		})
	}
	var a admin.AccountView
	if err := json.Unmarshal([]byte(runCLI(t, append([]string{"sa", "get", sa, "-o", "json"}, creds...)...)), &a); err != nil {
		t.Fatal(err)
	}
	if a.Disabled {
		t.Errorf("%s was disabled", sa)
	}
}

// TestHugeKeyFile: a key, certificate, credentials or settings file larger
// than any such file is refused by the flag that named it, unread; it was
// read whole, and one such as /dev/zero until memory ran out.
func TestHugeKeyFile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request sent: %s %s", r.Method, r.URL)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer srv.Close()
	m := startServer(t)
	huge := filepath.Join(t.TempDir(), "huge")
	if err := os.WriteFile(huge, make([]byte, maxKeyFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"whoami", "--credentials", huge, "--server", srv.URL}, "credentials: " + huge + " is larger than 1 MiB"},
		{[]string{"whoami", "--ca-cert", huge, "--credentials", m.AdminKeyFile}, "--ca-cert: " + huge + " is larger than 1 MiB"},
		{[]string{"keys", "upload", "a@b", "--public-key", huge, "--credentials", m.AdminKeyFile}, "--public-key: " + huge + " is larger than 1 MiB"},
		{[]string{"token", "--key-file", huge, "--scopes", "a"}, "key file: " + huge + " is larger than 1 MiB"},
		{[]string{"dpop", "proof", "--dpop-key", huge, "--url", "https://orders.internal/"}, "--dpop-key: " + huge + " is larger than 1 MiB"},
		{[]string{"migrate", "--config", huge, "--data-dir", t.TempDir()}, "--config: " + huge + " is larger than 1 MiB, far more than a settings file holds"},
		{[]string{"master-key", "rotate", "--new-master-key-file", huge, "--data-dir", t.TempDir()}, "new master key: " + huge + " is larger than 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.args[0]+" "+tt.args[1], func(t *testing.T) {
			err := runCLIErrWithin(t, 20*time.Second, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("keyward %q: %v; want an error saying %q", tt.args, err, tt.want)
			}
		})
	}
}

// TestUploadPrivateKey: a --public-key file that holds a private key, a
// PEM one or a JSON key file, is refused before anything is sent; the
// server refused it, but only once the private key had reached it.
func TestUploadPrivateKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request sent: %s %s", r.Method, r.URL)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer srv.Close()
	m := startServer(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := filepath.Join(t.TempDir(), "job.key")
	if err := os.WriteFile(pemKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{pemKey, m.AdminKeyFile} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			err := runCLIErr(t, "keys", "upload", "a@b", "--public-key", file, "--credentials", m.AdminKeyFile, "--server", srv.URL)
			if want := "--public-key " + file + " holds a private key, which was not sent"; err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("keys upload --public-key %s: %v; want an error saying %q", file, err, want)
			}
		})
	}
}

// TestUploadDERPublicKey: a --public-key file in DER, which holds NUL
// bytes, is refused before anything is sent, saying how to make the PEM
// file keys upload takes; the server refused its request body as one
// holding a NUL character, which named no file and no way out.
func TestUploadDERPublicKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request sent: %s %s", r.Method, r.URL)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer srv.Close()
	m := startServer(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tests := []struct {
		name string
		der  []byte
		want string
	}{
		{"public key", spki, "openssl pkey -pubin -inform DER"},
		{"certificate", cert, "openssl x509 -inform DER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".der")
			if err := os.WriteFile(file, tt.der, 0o600); err != nil {
				t.Fatal(err)
			}
			err := runCLIErr(t, "keys", "upload", "a@b", "--public-key", file, "--credentials", m.AdminKeyFile, "--server", srv.URL)
			if err == nil || !strings.Contains(err.Error(), "--public-key "+file+" is binary, not PEM") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("keys upload --public-key %s: %v; want it refused as binary, naming %q", file, err, tt.want)
			}
		})
	}
}

// TestNotATokenResponse: a server that answers the token request with
// success but no token response (a web server's page) is not Keyward's
// token endpoint; it was "cannot reach Keyward at ...: oauth2: cannot
// parse json: invalid character '<' ...".
func TestNotATokenResponse(t *testing.T) {
	m := startServer(t)
	kf, err := os.ReadFile(m.AdminKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, contentType, body string
	}{
		{"HTML", "text/html", "<html>It works!</html>"},
		{"JSON without a token", "application/json", "{}"},
		{"form without a token", "application/x-www-form-urlencoded", "a=b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			var doc map[string]any
			if err := json.Unmarshal(kf, &doc); err != nil {
				t.Fatal(err)
			}
			doc["token_uri"] = srv.URL + "/token"
			b, _ := json.Marshal(doc)
			key := filepath.Join(t.TempDir(), "key.json")
			if err := os.WriteFile(key, b, 0o600); err != nil {
				t.Fatal(err)
			}
			err := runCLIErr(t, "sa", "list", "--server", srv.URL, "--credentials", m.AdminKeyFile)
			if _, ok := errors.AsType[*unreachableError](err); ok || err == nil || !strings.Contains(err.Error(), srv.URL+`/token is not Keyward's token endpoint (its answer is not an OAuth token response): --server "`+srv.URL+`" must be Keyward's base URL`) {
				t.Errorf("sa list --server: %v", err)
			}
			err = runCLIErr(t, "token", "--key-file", key, "--scopes", "a")
			if err == nil || !strings.Contains(err.Error(), srv.URL+"/token answered with something other than an OAuth token response") {
				t.Errorf("token: %v", err)
			}
		})
	}
}

// TestIfMatchControlChar: an --if-match with a control character (a
// newline pasted with it) is a usage error, not "cannot reach Keyward",
// which the HTTP client's refusal of the header used to be reported as.
func TestIfMatchControlChar(t *testing.T) {
	m := startServer(t)
	admin := []string{"--credentials", m.AdminKeyFile}
	runCLI(t, append([]string{"org", "create", "example.com"}, admin...)...)
	err := runCLIErr(t, append([]string{"org", "policy", "example.com", "--block-scopes", "x", "--if-match", "\"abc\"\n"}, admin...)...)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--if-match") {
		t.Errorf("--if-match with a newline: %v, want a usage error naming --if-match", err)
	}
}

// TestUnreachableMessage: a server that cannot be reached is reported by
// the cause alone, once, with what to do where the cause says it; it used
// to read 'Get ".../v1/service-accounts?limit=1000": Post ".../token": dial
// tcp ...'.
func TestUnreachableMessage(t *testing.T) {
	m := startServer(t)
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	closed := "http://" + reservePort(t) // held, so nothing listens on it
	// hangUp reads each request and closes the connection unanswered.
	hangUp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hangUp.Close()
	go func() {
		for {
			c, err := hangUp.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 64<<10))
			c.Close()
		}
	}()
	// silent reads each request and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	tests := []struct {
		name, server string
		want         []string
		transient    bool // audit list --follow retries it
		// timeout, if not 0, is tokenTimeout: the default's 30s, for a
		// failure that comes by itself. A short one for all made the
		// first TLS case (whose verification loads the system's roots)
		// say "no answer within 500ms" under load.
		timeout time.Duration
	}{
		{"nothing listens", closed, []string{"cannot reach Keyward at " + closed + ": dial tcp " + strings.TrimPrefix(closed, "http://") + ": connect: connection refused"}, true, 0},
		{"certificate of an unknown CA", tlsSrv.URL, []string{"cannot reach Keyward at " + tlsSrv.URL + ": tls: failed to verify certificate", "pass it with --ca-cert (or KEYWARD_CA_CERT)"}, true, 0},
		{"https to plain HTTP", strings.Replace(m.Issuer, "http:", "https:", 1), []string{"server gave HTTP response to HTTPS client; the server speaks plain HTTP: use an http:// URL"}, true, 0},
		// Go's words were a bare "EOF".
		{"closed without an answer", "http://" + hangUp.Addr().String(), []string{"cannot reach Keyward at http://" + hangUp.Addr().String() + ": the connection was closed without an answer"}, true, 0},
		// It read only "read tcp ...: connection reset by peer". A wrong
		// URL does not go away by itself: --follow ends with it.
		{"http to TLS", "http://" + tlsSrv.Listener.Addr().String(), []string{"cannot reach Keyward at http://" + tlsSrv.Listener.Addr().String() + ": ", "; the server speaks TLS: use an https:// URL"}, false, 0},
		// It read "context deadline exceeded (Client.Timeout exceeded
		// while awaiting headers)".
		{"no answer", "http://" + silent.Addr().String(), []string{"cannot reach Keyward at http://" + silent.Addr().String() + ": no answer within 500ms"}, true, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.timeout != 0 {
				defer func(d time.Duration) { tokenTimeout = d }(tokenTimeout)
				tokenTimeout = tt.timeout
			}
			err := runCLIErrWithin(t, 20*time.Second, "sa", "list", "--credentials", m.AdminKeyFile, "--server", tt.server)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), `Post "`) || strings.Contains(err.Error(), `Get "`) {
				t.Errorf("%q names the requests, not just the cause", err)
			}
			if transient(err) != tt.transient {
				t.Errorf("%v: transient = %v, want %v", err, transient(err), tt.transient)
			}
			if tt.transient {
				return
			}
			// A follower ends at once with it; it used to retry it for
			// followGiveUp, saying it was reconnecting.
			_, errOut, done, _ := startCLI(t, "audit", "list", "--follow", "--credentials", m.AdminKeyFile, "--server", tt.server)
			select {
			case err := <-done:
				if w := tt.want[len(tt.want)-1]; err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("audit list --follow: %v, want it to say %q", err, w)
				}
				if strings.Contains(errOut.String(), "reconnecting") {
					t.Errorf("audit list --follow said %q", errOut)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("audit list --follow still running after 10s; stderr: %s", errOut)
			}
		})
	}
	// keyward token, which goes to the key file's token_uri, alike.
	kf, err := os.ReadFile(m.AdminKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	json.Unmarshal(kf, &doc)
	doc["token_uri"] = closed + "/token"
	b, _ := json.Marshal(doc)
	keyFile := filepath.Join(t.TempDir(), "key.json")
	mustWriteFile(t, keyFile, b)
	err = runCLIErrWithin(t, 20*time.Second, "token", "--key-file", keyFile, "--scopes", "keyward.admin")
	if want := "cannot get a token from " + closed + "/token: dial tcp " + strings.TrimPrefix(closed, "http://") + ": connect: connection refused"; err == nil || err.Error() != want {
		t.Errorf("token: %v, want %q", err, want)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("token: %v is not ECONNREFUSED to errors.Is", err)
	}
}

// TestImportNotAnExport: a file that is no export is refused in words
// about the file, before the store is opened: no data directory is
// created for it. It used to read 'json: cannot unmarshal array into Go
// value of type transfer.Dump', or, for an object without "format",
// 'unknown dump format ""' with no file named, after creating the store;
// then 'its "format" is ""', for a key file too; and for audit events
// (JSON lines), "not JSON: invalid character '{' after top-level value".
func TestImportNotAnExport(t *testing.T) {
	// Audit events as 'audit prune --export' writes them.
	events := func(n int) string {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		for i := range n {
			e := storage.AuditEvent{Seq: int64(i + 1), Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Action: "token.issue",
				Outcome: storage.OutcomeSuccess, AccountID: "sa1", PrevHash: []byte{byte(i)}, Hash: []byte{byte(i + 1)}}
			if err := enc.Encode(admin.AuditView(e)); err != nil {
				t.Fatal(err)
			}
		}
		return b.String()
	}
	e := storage.AuditEvent{Seq: 1, Action: "token.issue", Outcome: storage.OutcomeSuccess, PrevHash: []byte{0}, Hash: []byte{1}}
	e.SetUnreadableTime("yesterday")
	b, err := json.Marshal(admin.AuditView(e))
	if err != nil {
		t.Fatal(err)
	}
	unreadableTime := string(b) + "\n"
	const auditEvents = "it holds audit events, one JSON object a line, as 'keyward audit prune --export' and 'keyward audit list -o json' write them: " +
		"'keyward import' takes the one JSON object 'keyward export' writes (the configuration: APIs, accounts, keys, organizations), and audit events are not imported"
	tests := []struct {
		name, content, want string
	}{
		{"empty", "\n", "the file is empty"},
		// White space to Go (bytes.TrimSpace) but not to JSON, which has
		// only space, tab, LF and CR: they said "the file is empty".
		{"form feeds", "\f\f\f", `not JSON: invalid character '\f' looking for beginning of value (at byte 1)`},
		{"vertical tab after white space", " \n\v", `not JSON: invalid character '\v' looking for beginning of value (at byte 3)`},
		{"no-break space", "\u00a0\n", "not JSON: invalid character 'Â' looking for beginning of value (at byte 1)"},
		{"not JSON", "email,status\n", "not JSON: invalid character 'e' looking for beginning of value (at byte 1)"},
		{"array", `[{"email":"a@x.com"}]`, "a JSON array, not the object of an export"},
		{"audit events", events(3), auditEvents},
		{"one audit event", events(1), auditEvents},
		// The first with no time: a changed database held none for it.
		{"audit events, the first with no time", unreadableTime + events(1), auditEvents},
		{"several JSON values", `{"format":"keyward-export/2"}` + "\n" + `{"format":"keyward-export/2"}` + "\n",
			"several JSON values, one after another (the first ends at byte 29), not the one object of an export"},
		{"JSON and then no JSON", `{"format":"keyward-export/2"} x`, "not JSON: invalid character 'x' after top-level value (at byte 31)"},
		// An export cut short said "not JSON: unexpected end of JSON input".
		{"cut short", `{"format":"keyward-export/2","apis":[{"name":"or`, "its JSON stops part way, at byte 48, the end of the file: the file was cut short; copy it again, or export the store again"},
		{"null", `null`, "a JSON null, not the object of an export"},
		{"no format", `{}`, `it has no "format" field, which every export has ("keyward-export/2", or "keyward-export/1" from earlier releases)`},
		{"null format", `{"format":null}`, `it has no "format" field, which every export has ("keyward-export/2", or "keyward-export/1" from earlier releases)`},
		// The missing format is said first, not the kind of a field.
		{"no format, field of the wrong kind", `{"apis":"x"}`, `it has no "format" field, which every export has ("keyward-export/2", or "keyward-export/1" from earlier releases)`},
		{"another format", `{"format":"x"}`, `its "format" is "x", not "keyward-export/2" (nor "keyward-export/1", of earlier releases)`},
		// Go reads field names in any case: "Format" is the format.
		{"another format, capitalised", `{"Format":"keyward-export/3"}`, `its "format" is "keyward-export/3", not "keyward-export/2" (nor "keyward-export/1", of earlier releases)`},
		{"empty format", `{"format":""}`, `its "format" is "", not "keyward-export/2" (nor "keyward-export/1", of earlier releases)`},
		// A long format is cut to 64 bytes, as the file's other values are.
		{"long format", `{"format":"` + strings.Repeat("x", 100000) + `"}`,
			`its "format" is "` + strings.Repeat("x", 64) + `…", not "keyward-export/2" (nor "keyward-export/1", of earlier releases)`},
		{"service-account key file", `{"type":"service_account","project_id":"p","private_key_id":"k","private_key":"x","client_email":"a@p.iam.gserviceaccount.com","token_uri":"https://oauth2.googleapis.com/token"}`,
			`it is a service-account key file ("type": "service_account"), not an export: a key file is used as it is (--credentials, 'keyward token --key-file'); ` +
				`to register a key made elsewhere with an account, upload its public key: 'keyward keys upload SA --public-key PEM-FILE'`},
		{"format of the wrong kind", `{"format":2}`, `its "format" is a JSON number, not a string such as "keyward-export/2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refuseImport(t, tt.content, func(file string) string { return file + " is not a file 'keyward export' writes: " + tt.want })
		})
	}
}

// TestImportBadValue: an export with a value import cannot take, or a
// field its format does not have (an edited export, say), is refused
// naming the file and the value, before the store is opened. It used to
// be called not a file 'keyward export' writes, as a file that is no
// export is; and a value of the wrong kind was named as Go names it, the
// field without its item ("accounts.scopes").
func TestImportBadValue(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		// A keyward-export/1 field is named as in keyward-export/1 files.
		{"field of the wrong kind in format 1", `{"format":"keyward-export/1","orgs":[{"Domain":"example.com","BlockedScopes":"x"}]}`, `orgs[0].BlockedScopes is "x", not a JSON array`},
		{"field of the wrong kind", `{"format":"keyward-export/2","apis":"x"}`, `apis is "x", not a JSON array`},
		{"field of an item of the wrong kind", `{"format":"keyward-export/2","accounts":[{"client_id":"1"},{"client_id":"2","scopes":"orders.read"}]}`,
			`accounts[1].scopes is "orders.read", not a JSON array`},
		// A value that does not decode is named by its place, with the
		// form it must have: Go's error named neither.
		{"bad time", `{"format":"keyward-export/2","accounts":[{"client_id":"1"},{"client_id":"2"},{"client_id":"3"},{"client_id":"4","created_at":"yesterday"}]}`,
			`accounts[3].created_at is "yesterday", not an RFC 3339 time such as 2026-01-02T15:04:05Z`},
		{"bad base64", `{"format":"keyward-export/2","keys":[{"key_id":"k","public_key":"!!"}]}`,
			`keys[0].public_key is "!!", not bytes in standard base64 (RFC 4648 §4, with = padding)`},
		{"field it does not have", `{"format":"keyward-export/2","orgs":[{"domain":"example.com","blocked_scope":["x"]}]}`,
			`keyward-export/2 has no field "blocked_scope": misspelt, or added by a later release, whose data this one would drop`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refuseImport(t, tt.content, func(file string) string { return file + ": " + tt.want })
		})
	}
}

// refuseImport runs 'keyward import' of a file of content, which must fail
// with the error want says, given the file's name, and create no data
// directory.
func refuseImport(t *testing.T, content string, want func(file string) string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "in.json")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	err := runCLIErrWithin(t, 20*time.Second, "import", file, "--data-dir", dataDir)
	if want := want(file); err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory was created for a file import refuses: %v", err)
	}
}

// TestImportLeavesOlderSchema: import creates the schema of a new
// database, but leaves one whose schema is older (a running release may
// serve from it) as it is, and refuses it.
func TestImportLeavesOlderSchema(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	runCLI(t, "migrate", "--data-dir", src)
	dump := filepath.Join(dir, "export.json")
	runCLI(t, "export", "--data-dir", src, "--out", dump)
	runCLI(t, "migrate", "--data-dir", dst)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dst, "keyward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	version := func() (v int) {
		if err := db.QueryRow(`SELECT MAX(version_id) FROM goose_db_version`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if _, err := db.Exec(`DELETE FROM goose_db_version WHERE version_id = ?`, version()); err != nil {
		t.Fatal(err)
	}
	older := version()
	if err := runCLIErr(t, "import", dump, "--data-dir", dst); err == nil || !strings.Contains(err.Error(), "not up to date") {
		t.Fatalf("import into an older schema: %v, want a refusal", err)
	}
	if v := version(); v != older {
		t.Errorf("import migrated the older schema from version %d to %d", older, v)
	}
	// Into a new database it goes, schema and all.
	if out := runCLI(t, "import", dump, "--data-dir", filepath.Join(dir, "new")); !strings.Contains(out, "imported") {
		t.Errorf("import into a new database said %q", out)
	}
}

// TestListenInUse: an address another process listens on is named with
// its flag and what to do; it read "listen: listen tcp ADDR: bind:
// address already in use".
func TestListenInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	for _, tt := range []struct {
		flag string
		set  func(*Config)
	}{
		{"--listen", func(c *Config) { c.Listen = addr }},
		{"--metrics-listen", func(c *Config) { c.Listen, c.MetricsListen = "127.0.0.1:0", addr }},
	} {
		t.Run(tt.flag, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DataDir = t.TempDir()
			tt.set(&cfg)
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := m.Open(context.Background())
			m.Close()
			want := tt.flag + " " + addr + ": the address is in use: another process (another keyward serve?) listens there; stop it, or give another " + tt.flag
			if err == nil || err.Error() != want {
				t.Fatalf("Open: %v, want %q", err, want)
			}
			// Nothing was created before the address was found taken.
			checkNothingCreated(t, cfg.DataDir)
		})
	}
}

// checkNothingCreated fails t if dir holds more than the lock file: no
// database, master key or signing key.
func checkNothingCreated(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != dataDirLock {
			t.Errorf("the data directory holds %s after a failed start", e.Name())
		}
	}
}

// TestTLSClientCAUnusable: a --tls-client-ca that cannot be read, holds
// no certificate or holds one that does not read (which would be left
// out, its clients refused as strangers) stops the server with its name,
// before it creates a database or keys.
func TestTLSClientCAUnusable(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	ca, err := os.ReadFile(newTLSFixture(t).caFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(ca), "\n") // BEGIN, base64 lines, END, ""
	bundle := func(name string, middle ...string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(string(ca)+strings.Join(middle, "")+string(ca)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lineLost := bundle("line-lost.pem", append(lines[:1:1], lines[2:]...)...)
	endLost := bundle("end-lost.pem", lines[:len(lines)-2]...)
	for _, tt := range []struct{ file, want string }{
		{notPEM, "--tls-client-ca " + notPEM + " holds no PEM certificate"},
		{missing, "--tls-client-ca: open " + missing},
		{lineLost, "--tls-client-ca " + lineLost + ": its certificate 2 does not parse"},
		{endLost, "--tls-client-ca " + endLost + ": of the 3 certificates it begins, 2 read as PEM"},
	} {
		cfg := DefaultConfig()
		cfg.DataDir, cfg.Listen, cfg.TLSClientCA = t.TempDir(), "127.0.0.1:0", tt.file
		m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		err := m.Open(context.Background())
		m.Close()
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Fatalf("Open: %v, want %q", err, tt.want)
		}
		checkNothingCreated(t, cfg.DataDir)
	}
}

// TestCACertUnusable: a --ca-cert that holds no certificate, or holds one
// that does not read, is refused with its name and what is wrong, before
// anything is sent; AppendCertsFromPEM left the damaged certificate out
// without a word, and the server it signed was then "unknown".
func TestCACertUnusable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request sent: %s %s", r.Method, r.URL)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer srv.Close()
	m := startServer(t)
	ca, err := os.ReadFile(newTLSFixture(t).caFile)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lines := strings.SplitAfter(string(ca), "\n") // BEGIN, base64 lines, END, ""
	notPEM := write("ca.pem", "not a certificate\n")
	keyOnly := write("key.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
	lineLost := write("line-lost.pem", string(ca)+strings.Join(append(lines[:1:1], lines[2:]...), "")+string(ca))
	endLost := write("end-lost.pem", string(ca)+strings.Join(lines[:len(lines)-2], "")+string(ca))
	for _, tt := range []struct{ file, want string }{
		{notPEM, "--ca-cert " + notPEM + " holds no PEM certificate"},
		{keyOnly, "--ca-cert " + keyOnly + " holds no PEM certificate"},
		{lineLost, "--ca-cert " + lineLost + ": its certificate 2 does not parse"},
		{endLost, "--ca-cert " + endLost + ": of the 3 certificates it begins, 2 read as PEM"},
	} {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			err := runCLIErrWithin(t, 20*time.Second, "whoami", "--server", srv.URL, "--ca-cert", tt.file, "--credentials", m.AdminKeyFile)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("whoami --ca-cert: %v; want an error saying %q", err, tt.want)
			}
		})
	}
}

// TestTLSCertUnusable: a --tls-cert or --tls-key that cannot be read or
// holds no certificate or key stops the server with what is wrong, before
// it creates a database or keys, and leaves its address free.
func TestTLSCertUnusable(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tt := range []struct{ name, cert, key string }{
		{"missing", missing, missing},
		{"not PEM", notPEM, notPEM},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DataDir, cfg.Listen, cfg.TLSCert, cfg.TLSKey = t.TempDir(), "127.0.0.1:0", tt.cert, tt.key
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := m.Open(context.Background())
			m.Close()
			if err == nil || !strings.HasPrefix(err.Error(), "TLS certificate: ") {
				t.Fatalf("Open: %v, want a TLS certificate error", err)
			}
			checkNothingCreated(t, cfg.DataDir)
			checkReleased(t, m)
		})
	}
}

// TestCloseReleasesListener: a server opened and closed without running
// (a test, a start that stops before serving) frees its addresses.
func TestCloseReleasesListener(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.MetricsListen = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := m.Open(context.Background()); err != nil {
		m.Close()
		t.Fatal(err)
	}
	m.Close()
	checkReleased(t, m)
}

// checkReleased fails t unless the addresses m listened on can be
// listened on again.
func checkReleased(t *testing.T, m *Main) {
	t.Helper()
	for _, l := range []net.Listener{m.listener, m.metricsListener} {
		if l == nil {
			continue
		}
		again, err := net.Listen("tcp", l.Addr().String())
		if err != nil {
			t.Errorf("%s is still listened on after Close: %v", l.Addr(), err)
			continue
		}
		again.Close()
	}
}

// TestNotListeningWhileStoreOpens: while the store is being opened (a
// migration, a database slow to answer), the server's address is not
// listened on, so a load balancer's TCP check does not send it requests
// that would wait; it is tried first, and bound once the store is ready.
func TestNotListeningWhileStoreOpens(t *testing.T) {
	// A "database" that takes connections and never answers.
	db, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	connected := make(chan net.Conn, 1)
	go func() {
		if c, err := db.Accept(); err == nil {
			connected <- c
		}
	}()
	addr := reservePort(t)

	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen = t.TempDir(), addr
	cfg.DB = "postgres://keyward@" + db.Addr().String() + "/keyward?sslmode=disable&connect_timeout=30"
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	opened := make(chan error, 1)
	go func() { opened <- m.Open(ctx) }()
	select {
	case c := <-connected:
		defer c.Close()
	case err := <-opened:
		t.Fatalf("Open returned before it reached the database: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("Open did not reach the database")
	}
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("%s is listened on while the store is opened", addr)
	}
	cancel()
	<-opened
	m.Close()
}

// TestListenAndMetricsSameAddress: --listen and --metrics-listen on one
// address (or overlapping ones) are found before the store is opened, as
// an address another process holds is: each was free on its own when
// tried, so the second bind failed only after the database, master key
// and signing keys were made, with words blaming another process.
func TestListenAndMetricsSameAddress(t *testing.T) {
	addr := reservePort(t)
	_, port, _ := net.SplitHostPort(addr)
	for _, tt := range []struct{ name, listen, metrics string }{
		{"the same", addr, addr},
		{"all interfaces and loopback", ":" + port, addr},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DataDir, cfg.Listen, cfg.MetricsListen = t.TempDir(), tt.listen, tt.metrics
			cfg.Issuer = "http://" + addr
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := m.Open(context.Background())
			m.Close()
			want := "--metrics-listen " + tt.metrics + ": the address is --listen's (" + tt.listen + ") too: give the metrics listener an address of its own"
			if err == nil || err.Error() != want {
				t.Fatalf("Open: %v, want %q", err, want)
			}
			checkNothingCreated(t, cfg.DataDir)
			checkReleased(t, m)
		})
	}
}

// import refuses a device or a directory, before reading it or creating
// the data directory: /dev/zero was read until memory ran out. A pipe is
// read as a file is.
func TestImportRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, path, want string
	}{
		{"device", "/dev/zero", "/dev/zero is not a file 'keyward export' writes: it is a character device"},
		{"directory", dir, dir + " is not a file 'keyward export' writes: it is a directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := os.Stat(tt.path); err != nil {
				t.Skipf("%s: %v", tt.path, err)
			}
			dataDir := filepath.Join(t.TempDir(), "data")
			err := runCLIErrWithin(t, 20*time.Second, "import", tt.path, "--data-dir", dataDir)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to start %q", err, tt.want)
			}
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the data directory was created for a file import refuses: %v", err)
			}
		})
	}
}

// readExport stops reading a file at the first byte that no JSON has (a
// few KiB on, or at the end of its first MiB), and exportfile.Parse says what
// that byte is: a sparse file (truncate -s 1T) after an export's '{' was
// read until memory ran out.
func TestReadExportStopsAtNonJSON(t *testing.T) {
	const readAhead = 64 << 10 // what reading may go past the byte
	spaces := strings.Repeat(" ", 3<<20)
	for _, tt := range []struct {
		name, start string
		size        int64 // made sparse to this size, if not 0
		at          int   // the first byte that cannot be JSON
		want        string
	}{
		{"zeros after an object's start", "{", 1 << 40, 1, "it has a zero byte at byte 2"},
		{"zeros in a string", "\ufeff{\"format\":\"keyward", 1 << 40, 21, "it has a zero byte at byte 22"},
		{"zeros after white space", "{\n" + spaces, 1 << 40, 2 + len(spaces), fmt.Sprintf("it has a zero byte at byte %d", 3+len(spaces))},
		{"zeros after a value", `{"format":"keyward/v2"}`, 1 << 40, 23, "it has a zero byte at byte 24"},
		{"a control character", "{\"format\":\"\x01" + strings.Repeat("x", 8<<20), 0, 11, `not JSON: invalid character '\x01' in string literal (at byte 12)`},
		{"a control character past the first MiB", "{\"format\":\"" + spaces + "\x1f" + strings.Repeat("x", 8<<20), 0, 11 + len(spaces),
			fmt.Sprintf(`not JSON: invalid character '\x1f' in string literal (at byte %d)`, 12+len(spaces))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "export.json")
			mustWriteFile(t, file, []byte(tt.start))
			if tt.size > 0 {
				if err := os.Truncate(file, tt.size); err != nil {
					t.Skipf("no sparse file of %d bytes here: %v", tt.size, err)
				}
			}
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			done := make(chan struct{})
			var b []byte
			go func() {
				defer close(done)
				b, err = readExport(f, file)
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("readExport still reading after 20 s")
			}
			if err != nil {
				t.Fatal(err)
			}
			read, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				t.Fatal(err)
			}
			if limit := int64(max(tt.at, exportPeek) + readAhead); read > limit || int64(len(b)) > limit {
				t.Errorf("read %d bytes (kept %d), want at most %d", read, len(b), limit)
			}
			if _, err := exportfile.Parse(b); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("exportfile.Parse: %v, want it to start %q", err, tt.want)
			}
		})
	}
}

// readExport reads a valid export whole, from a file or a pipe, whatever
// its size around the first MiB it looks at and the 32 KiB it then reads
// at a time; and a byte no JSON has at any place around them is named at
// its offset, with nothing before it lost and less than 32 KiB after it
// kept.
func TestReadExportBoundaries(t *testing.T) {
	const chunk = 32 << 10
	export := bigExport(t, 1)
	var places []int
	for _, at := range []int{exportPeek, exportPeek + chunk, exportPeek + 2*chunk, exportPeek + 2*chunk + 512} {
		places = append(places, at-1, at, at+1)
	}
	read := func(t *testing.T, file []byte, pipe bool) []byte {
		t.Helper()
		var f *os.File
		if pipe {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				// Short writes: the pipe's reads end anywhere.
				for b := file; len(b) > 0; b = b[min(len(b), 1000):] {
					if _, err := w.Write(b[:min(len(b), 1000)]); err != nil {
						break
					}
				}
				w.Close()
			}()
			f = r
		} else {
			name := filepath.Join(t.TempDir(), "export.json")
			mustWriteFile(t, name, file)
			var err error
			if f, err = os.Open(name); err != nil {
				t.Fatal(err)
			}
		}
		defer f.Close()
		b, err := readExport(f, "export")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, pipe := range []bool{false, true} {
		for _, at := range places {
			t.Run(fmt.Sprintf("pipe %v, %d bytes", pipe, at), func(t *testing.T) {
				// A byte order mark, and white space of every kind JSON
				// has on both sides of the object, the file at bytes.
				ws := strings.Repeat(" \t\r\n", at/4+1)
				before := ws[:(at-3-len(export))/2]
				file := []byte("\ufeff" + before + string(export) + ws[:at-3-len(before)-len(export)])
				if len(file) != at {
					t.Fatalf("made %d bytes, want %d", len(file), at)
				}
				b := read(t, file, pipe)
				if !bytes.Equal(b, file) {
					t.Fatalf("read %d bytes, not the %d of the file", len(b), len(file))
				}
				if d, err := exportfile.Parse(b); err != nil || len(d.Accounts) != 1 {
					t.Fatalf("exportfile.Parse = %d accounts, %v; want 1", len(d.Accounts), err)
				}
			})
			t.Run(fmt.Sprintf("pipe %v, a zero byte at %d", pipe, at), func(t *testing.T) {
				file := []byte("\ufeff{" + strings.Repeat("\n", at-4) + "\x00" + strings.Repeat("x", 3*chunk))
				b := read(t, file, pipe)
				if len(b) <= at || !bytes.Equal(b, file[:len(b)]) || len(b) > max(exportPeek, at+chunk) {
					t.Fatalf("read %d bytes, want a start of the file through byte %d and less than %d after it", len(b), at, chunk)
				}
				want := fmt.Sprintf("it has a zero byte at byte %d,", at+1)
				if _, err := exportfile.Parse(b); err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Fatalf("exportfile.Parse: %v, want it to start %q", err, want)
				}
			})
		}
	}
}

// import refuses a large file that does not start as an export does
// (zeros, another character), or does but is no JSON after its start
// (zeros), without reading the rest or creating the data directory. A sparse file of 1
// TiB (truncate -s 1T) crashed it: "fatal error: runtime: out of
// memory", allocating a buffer of the file's size. White space, which
// JSON allows before a value, is read on: an export after more than a
// MiB of it was refused.
func TestImportRefusesLargeNonExport(t *testing.T) {
	const huge = 1 << 40
	for _, tt := range []struct {
		name  string
		start string
		size  int64
		want  string
	}{
		{"sparse zeros", "", huge, "it starts with zero bytes (at byte 1)"},
		{"zeros after a byte order mark and white space", "\ufeff \n", huge, "it starts with zero bytes (at byte 6)"},
		{"white space", strings.Repeat(" ", 2<<20), 2 << 20, "the file is empty"},
		{"another character", "[", huge, `it starts with "[" (at byte 1)`},
		{"zeros after an export's start", "\ufeff{\n  \"format\": \"keyward", huge, "it has a zero byte at byte 26"},
		{"zeros after white space", "{" + strings.Repeat("\n ", 1<<20), huge, "it has a zero byte at byte 2097154"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "export.json")
			mustWriteFile(t, file, []byte(tt.start))
			if err := os.Truncate(file, tt.size); err != nil {
				t.Skipf("no sparse file of %d bytes here: %v", tt.size, err)
			}
			dataDir := filepath.Join(t.TempDir(), "data")
			err := runCLIErrWithin(t, 20*time.Second, "import", file, "--data-dir", dataDir)
			want := file + " is not a file 'keyward export' writes: " + tt.want
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("error %v, want it to start %q", err, want)
			}
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the data directory was created for a file import refuses: %v", err)
			}
		})
	}
	// An export larger than what is looked at first is read whole.
	data := bigExport(t, 2000)
	if len(data) <= 1<<20 {
		t.Fatalf("the export is %d bytes, want more than 1 MiB", len(data))
	}
	file := filepath.Join(t.TempDir(), "export.json")
	for _, start := range []string{"\ufeff\n", "\ufeff" + strings.Repeat(" \n", 1<<20)} {
		mustWriteFile(t, file, append([]byte(start), data...))
		b, err := readExportFile(file)
		if err != nil {
			t.Fatalf("after %d bytes of white space: %v", len(start)-3, err)
		}
		if d, err := exportfile.Parse(b); err != nil || len(d.Accounts) != 2000 {
			t.Fatalf("after %d bytes of white space: exportfile.Parse = %d accounts, %v; want 2000", len(start)-3, len(d.Accounts), err)
		}
	}
}

// TestConnProblemTLSAnswer: a plain-HTTP request that a TLS server
// answered in full (Go's 400 "Client sent an HTTP request to an HTTPS
// server", before the connection was reset) is told by its status, not
// the server's words with their line break.
func TestConnProblemTLSAnswer(t *testing.T) {
	re := &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400, Status: "400 Bad Request"}, Body: []byte("Client sent an HTTP request to an HTTPS server.\n")}
	got := connProblem(speaksTLSError{err: re})
	if want := "it answered HTTP 400; the server speaks TLS: use an https:// URL"; got != want {
		t.Errorf("connProblem = %q, want %q", got, want)
	}
}

// TestPlainToTLSProxied: a request a proxy carries (HTTP_PROXY) is not
// followed by a TLS probe of its host: the CLI would dial, past the
// proxy, a host it may only reach through it, and the failure is the
// proxy's to tell. Without a proxy the same port is found to speak TLS.
func TestPlainToTLSProxied(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	base := "http://" + tlsSrv.Listener.Addr().String()
	failed := &url.Error{Op: "Post", URL: base + "/oauth2/token", Err: io.ErrUnexpectedEOF}
	var st speaksTLSError
	if err := (*tlsProbes)(nil).plainToTLS(context.Background(), base, failed); !errors.As(err, &st) {
		t.Fatalf("without a proxy plainToTLS = %v, want the server found to speak TLS", err)
	}
	old := proxyFor
	t.Cleanup(func() { proxyFor = old })
	proxyFor = func(*http.Request) (*url.URL, error) { return url.Parse("http://proxy.example:3128") }
	if err := (*tlsProbes)(nil).plainToTLS(context.Background(), base, failed); err != error(failed) {
		t.Errorf("through a proxy plainToTLS = %v, want the request's error as it was, with no probe", err)
	}
}

// TestProbeTLSCanceled: the TLS probe ends with the command's context
// (Ctrl-C), not only after tlsProbeTimeout, against a port that accepts
// a connection and never answers the handshake.
func TestProbeTLSCanceled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if probeTLS(ctx, ln.Addr().String(), "127.0.0.1") {
		t.Error("probeTLS = true for a port that never answers, want false")
	}
	if d := time.Since(start); d > tlsProbeTimeout/2 {
		t.Errorf("probeTLS took %v after the context ended at 100ms, want it to stop then", d)
	}
}

// TestPlainToTLSOnce: the TLS probe runs only when it can tell something:
// not after a complete HTTP answer other than Go's 400 of a TLS port (a
// plain-HTTP proxy's HTML 502, say), and once per command: a second
// failure (audit list --follow's retry) answers what the first found.
func TestPlainToTLSOnce(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	base := "http://" + tlsSrv.Listener.Addr().String()
	answered := func(status int, body string) error {
		return &url.Error{Op: "Post", URL: base + "/oauth2/token", Err: &oauth2.RetrieveError{
			Response: &http.Response{StatusCode: status, Status: http.StatusText(status)}, Body: []byte(body)}}
	}
	reset := &url.Error{Op: "Post", URL: base + "/oauth2/token", Err: io.ErrUnexpectedEOF}
	var st speaksTLSError
	for _, tc := range []struct {
		name  string
		err   error
		probe bool
	}{
		{"an HTML 502", answered(http.StatusBadGateway, "<html><body>Bad Gateway</body></html>"), false},
		{"a 404", answered(http.StatusNotFound, "not found"), false},
		{"Go's 400 of a TLS port", answered(http.StatusBadRequest, "Client sent an HTTP request to an HTTPS server.\n"), true},
		{"a reset", reset, true},
	} {
		got := (*tlsProbes)(nil).plainToTLS(context.Background(), base, tc.err)
		if errors.As(got, &st) != tc.probe {
			t.Errorf("after %s plainToTLS = %v, want probed %v", tc.name, got, tc.probe)
		}
	}

	var p tlsProbes
	if err := p.plainToTLS(context.Background(), base, reset); !errors.As(err, &st) {
		t.Fatalf("first plainToTLS = %v, want the server found to speak TLS", err)
	}
	tlsSrv.Close() // a second probe would find nothing listening
	if err := p.plainToTLS(context.Background(), base, reset); !errors.As(err, &st) {
		t.Errorf("second plainToTLS = %v, want the first probe's finding, with no second probe", err)
	}
}

// TestConnProblemDialTimeout: a connection not made in time (a host that
// drops the SYN) is told as such, with the dial limit; it read "no answer
// within 60s", as if a server had taken the request and not answered.
func TestConnProblemDialTimeout(t *testing.T) {
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 443}, Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"admin request", &url.Error{Op: "Get", URL: "https://10.0.0.1/v1/apis", Err: dialErr}},
		{"token request", &url.Error{Op: "Get", URL: "https://10.0.0.1/v1/apis", Err: &url.Error{Op: "Post", URL: "https://10.0.0.1/oauth2/token", Err: dialErr}}},
	} {
		got := connProblem(tc.err)
		if want := fmt.Sprintf("could not connect within %v", dialTimeout); !strings.HasPrefix(got, want) {
			t.Errorf("%s: connProblem = %q, want it to begin %q", tc.name, got, want)
		}
	}
}
