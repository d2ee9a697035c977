package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKeyFileErrorsWithoutPackage: the CLI's refusal of a key file is
// told without the client package's "client: " prefix, which means
// nothing to an operator ("key.json: client: the key file is empty").
// The client package's own errors keep it (client_test.go).
func TestKeyFileErrorsWithoutPackage(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		f := filepath.Join(dir, name)
		mustWriteFile(t, f, []byte(content))
		return f
	}
	files := []struct {
		path, want string
	}{
		{file("notjson.json", "x"), ": the key file is not a JSON key file: "},
		{file("empty.json", " \n"), ": the key file is empty"},
		{file("user.json", `{"type":"authorized_user"}`), `: the file is a Google credential of type "authorized_user"`},
		{file("notype.json", `{"client_email":"a@b"}`), `: the file is not a service-account key file: it has no "type"`},
		{file("lacks.json", `{"type":"service_account"}`), ": the key file lacks client_email, token_uri or private_key"},
		{file("badpem.json", `{"type":"service_account","client_email":"a@b","token_uri":"http://127.0.0.1:1/token","private_key":"nope"}`), ": key file: "},
	}
	for _, f := range files {
		for _, args := range [][]string{
			{"token", "--key-file", f.path, "--scopes", "a"},
			{"sa", "list", "--credentials", f.path},
		} {
			t.Run(args[0]+" "+filepath.Base(f.path), func(t *testing.T) {
				err := runCLIErrWithin(t, 20*time.Second, args...)
				if want := f.path + f.want; err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Errorf("%v, want it to start %q", err, want)
				}
				if err != nil && strings.Contains(err.Error(), "client: ") {
					t.Errorf("%q names the client package", err)
				}
			})
		}
	}
}

// TestTokenRedirectWithoutPackage: a token endpoint's redirect, which the
// client package refuses, is told without its "client: " prefix.
func TestTokenRedirectWithoutPackage(t *testing.T) {
	srv := httptest.NewServer(http.RedirectHandler("http://elsewhere.invalid/token", http.StatusTemporaryRedirect))
	defer srv.Close()
	keyFile := writeECKeyFile(t, srv.URL+"/token")
	err := runCLIErrWithin(t, 20*time.Second, "token", "--key-file", keyFile, "--scopes", "a")
	want := "cannot get a token from " + srv.URL + "/token: the token endpoint " + srv.URL + "/token redirected to http://elsewhere.invalid/token;"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("%v, want it to start %q", err, want)
	}
}

// TestTokenMissingKeyFile: a key file that does not exist is named with
// what named it, --key-file or KEYWARD_CREDENTIALS, and with the command
// that makes one there, not as open(2)'s bare error.
func TestTokenMissingKeyFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.json")
	hint := "; to make a key file there, run: keyward keys create SA_EMAIL --out " + shellArg(missing)
	if err := runCLIErrWithin(t, 20*time.Second, "token", "--key-file", missing, "--scopes", "a"); err == nil || err.Error() != "--key-file "+missing+" does not exist"+hint {
		t.Errorf("token --key-file %s: %v, want it to say --key-file names no file and how to make one", missing, err)
	}
	t.Setenv("KEYWARD_CREDENTIALS", missing)
	if err := runCLIErrWithin(t, 20*time.Second, "token", "--scopes", "a"); err == nil || err.Error() != "KEYWARD_CREDENTIALS "+missing+" does not exist"+hint {
		t.Errorf("token with KEYWARD_CREDENTIALS=%s: %v, want it to say KEYWARD_CREDENTIALS names no file and how to make one", missing, err)
	}
}

// TestKeyFilePlainHTTPTokenURI: a key file whose token_uri is plain
// http:// to a host that is not loopback is refused by 'keyward token'
// and the admin commands before anything is sent, saying what to do in
// the CLI's terms (--server, a new key file), not the client package's
// (TokenURL); one whose token_uri has a password is refused without
// showing it. The admin commands with --server send their requests there
// and go on.
func TestKeyFilePlainHTTPTokenURI(t *testing.T) {
	plain := writeECKeyFile(t, "http://keyward.invalid/token")
	withPassword := writeECKeyFile(t, "https://admin:hunter2@keyward.invalid/token")
	refusal := `the key file's token_uri "http://keyward.invalid/token" is plain http:// to a host that is not loopback`
	for _, tt := range []struct {
		name    string
		args    []string
		want    []string
		notWant []string
	}{
		{"token", []string{"token", "--key-file", plain, "--scopes", "a"},
			[]string{plain + ": " + refusal, "get a key file of the server's https:// issuer"}, []string{"TokenURL", "client: "}},
		{"admin command", []string{"sa", "list", "--credentials", plain},
			[]string{plain + ": " + refusal, "--server"}, []string{"TokenURL", "client: "}},
		{"admin command with --server", []string{"sa", "list", "--credentials", plain, "--server", "http://127.0.0.1:1"},
			[]string{"127.0.0.1:1"}, []string{"plain http://"}},
		{"token, a password", []string{"token", "--key-file", withPassword, "--scopes", "a"},
			[]string{withPassword + `: the key file's token_uri "https://admin:xxxxx@keyward.invalid/token" has a user name or password`}, []string{"hunter2", "client: "}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := runCLIErrWithin(t, 20*time.Second, tt.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("%q says %q", err, w)
				}
			}
		})
	}
}
