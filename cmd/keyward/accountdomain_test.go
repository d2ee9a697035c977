package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/sakey"
	"github.com/keyward/keyward/internal/testkeyward"
)

// seedAccounts bootstraps the store of cfg as the first start of a
// release that took cfg.AccountDomain did: an administrator account, with
// its email under that domain, and its key.
func seedAccounts(t *testing.T, cfg Config) {
	t.Helper()
	ctx := context.Background()
	st, err := openStore(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := admin.NewService(st, admin.Config{Issuer: "http://127.0.0.1:8080", AccountDomain: cfg.AccountDomain,
		DefaultTokenLifetime: cfg.DefaultTokenTTL, MaxTokenLifetime: cfg.MaxTokenTTL})
	if _, created, err := svc.Bootstrap(ctx, func(sakey.KeyFile) error { return nil }); err != nil || !created {
		t.Fatalf("bootstrap: created %v, %v", created, err)
	}
}

// accountDomainWarnings returns the account_domain and problem of each
// warning about the account domain in logs, a JSON log.
func accountDomainWarnings(t *testing.T, logs string) [][2]string {
	t.Helper()
	var got [][2]string
	for line := range strings.Lines(logs) {
		var rec struct {
			Level, Msg    string
			AccountDomain string `json:"account_domain"`
			Problem       string `json:"problem"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if strings.Contains(rec.Msg, accountDomainWarning) {
			if rec.Level != "WARN" {
				t.Errorf("logged at %s: %s", rec.Level, line)
			}
			got = append(got, [2]string{rec.AccountDomain, rec.Problem})
		}
	}
	return got
}

// accountDomainWarning is in the message of the warning at a start with
// an existing store, after the setting's name.
const accountDomainWarning = " makes account emails the admin API refuses elsewhere"

// TestAccountDomain: a server refuses to start a new store (no accounts
// yet) with an --account-domain that validate.AccountDomain refuses, as
// the first start would make the administrator's email under it, before
// it makes anything (no database, account, key file or master key),
// saying why.
// A store that already holds accounts made with such a value, by a
// release that took it, starts, and the log names the value and why it
// is wrong in one warning. A good value starts either store in silence.
func TestAccountDomain(t *testing.T) {
	long := strings.Repeat(strings.Repeat("a", 60)+".", 3) + "example.com" // 194 bytes, a domain name
	for _, tt := range []struct {
		name, domain, problem string // problem: "" for a good domain
	}{
		{"good", "iam.example.com", ""},
		{"trailing dot", "iam.example.com.", `"iam.example.com." is not a domain name such as example.com.`},
		{"empty label", "iam..x", `"iam..x" is not a domain name`},
		{"leading hyphen", "-iam.example.com", `"-iam.example.com" is not a domain name`},
		{"numeric top-level", "iam.example.123", `"iam.example.123" is not a domain name`},
		{"upper case", "IAM.example.com", `The account domain "IAM.example.com" has upper-case letters; write it in lower case.`},
		{"too long", long, "The account domain is 194 bytes long; at most 192 are allowed"},
		{"control character", "iam.\x01example.com", `"iam.\x01example.com" is not a domain name such as example.com.`},
		{"C1 control character", "iam.\u009bexample.com", `"iam.\u009bexample.com" is not a domain name such as example.com.`},
	} {
		cfg := DefaultConfig()
		cfg.Listen, cfg.AccountDomain = "127.0.0.1:0", tt.domain
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: Validate refuses %q, which an older release took: %v", tt.name, tt.domain, err)
		}
		start := func(t *testing.T, dir string) (string, error) {
			var logs testkeyward.SyncBuffer
			c := cfg
			c.DataDir = dir
			m := &Main{Config: c, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
			err := m.Open(context.Background())
			m.Close()
			return logs.String(), err
		}

		t.Run(tt.name+"/new store", func(t *testing.T) {
			dir := t.TempDir()
			logs, err := start(t, dir)
			if tt.problem == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if w := accountDomainWarnings(t, logs); len(w) > 0 {
					t.Fatalf("warned %q of a good domain", w)
				}
				return
			}
			if _, ok := errors.AsType[usageError](err); !ok || !strings.Contains(err.Error(), "--account-domain: "+tt.problem) {
				t.Fatalf("Open: %v; want a usage error naming --account-domain and saying %q", err, tt.problem)
			}
			for _, f := range []string{"admin-key.json", "master.key", "keyward.db"} {
				if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s: %v; want none made", f, err)
				}
			}
			c := cfg
			c.DataDir = dir
			st, err := openStore(context.Background(), c, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if n, err := st.CountAccounts(context.Background()); n != 0 || err != nil {
				t.Fatalf("the refused start left %d accounts (%v)", n, err)
			}
		})

		t.Run(tt.name+"/existing store", func(t *testing.T) {
			dir := t.TempDir()
			c := cfg
			c.DataDir = dir
			seedAccounts(t, c)
			logs, err := start(t, dir)
			if err != nil {
				t.Fatalf("Open: %v; want the store's server to start", err)
			}
			got := accountDomainWarnings(t, logs)
			if tt.problem == "" {
				if len(got) > 0 {
					t.Fatalf("warned %q of a good domain", got)
				}
				return
			}
			if len(got) != 1 || got[0][0] != tt.domain || !strings.Contains(got[0][1], tt.problem) {
				t.Fatalf("warnings %q; want one naming %q and saying %q", got, tt.domain, tt.problem)
			}
		})
	}
}

// The warning at a start with an existing store is one line of the text
// log too, as operators read it.
func TestAccountDomainWarningLine(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.AccountDomain = "127.0.0.1:0", t.TempDir(), "iam.example.com."
	seedAccounts(t, cfg)
	var logs testkeyward.SyncBuffer
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	defer m.Close()
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "--account-domain") {
			lines = append(lines, line)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "account_domain=iam.example.com. ") ||
		!strings.Contains(lines[0], "fix=") {
		t.Fatalf("log lines %q; want one warning naming the value and the fix", lines)
	}
}

// TestAccountDomainWarningNamesTheSource: the warning names the setting
// as the refusal of a new store does, by where its value came from, as
// Config.flag names it; it said --account-domain whatever the source.
func TestAccountDomainWarningNamesTheSource(t *testing.T) {
	for _, tt := range []struct{ name, from string }{ // from: "" on the command line
		{"flag", ""},
		{"environment", "KEYWARD_ACCOUNT_DOMAIN"},
		{"config file", "account-domain in /etc/keyward/keyward.yaml"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen, cfg.DataDir, cfg.AccountDomain = "127.0.0.1:0", t.TempDir(), "iam.example.com."
			seedAccounts(t, cfg)
			want := "--account-domain"
			if tt.from != "" {
				cfg.from, want = map[string]string{"account-domain": tt.from}, tt.from
			}
			var logs testkeyward.SyncBuffer
			m := &Main{Config: cfg, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
			defer m.Close()
			if err := m.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			var msgs []string
			for line := range strings.Lines(logs.String()) {
				var rec struct{ Msg string }
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				if strings.Contains(rec.Msg, accountDomainWarning) {
					msgs = append(msgs, rec.Msg)
				}
			}
			if len(msgs) != 1 || !strings.HasPrefix(msgs[0], want+accountDomainWarning) {
				t.Fatalf("warnings %q; want one starting %q", msgs, want+accountDomainWarning)
			}
		})
	}
}
