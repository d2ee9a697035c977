package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// --if-match makes a change only to the version of the account, API,
// organization, key or secret that 'get' showed (for placing, moving or
// removing a project, of the organization), with its ETag (in -o json and in the
// table): after someone else's change it is refused with a message that
// says nothing was done and how to see the resource as it is now, and
// with the new ETag, quoted or not, it is made.
func TestIfMatch(t *testing.T) {
	m := startServer(t)
	admin := []string{"--credentials", m.AdminKeyFile}
	cli := func(args ...string) string { t.Helper(); return runCLI(t, append(args, admin...)...) }
	cli("api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read")
	cli("api", "create", "billing", "--identifier", "https://billing.internal", "--scopes", "billing.read")
	cli("org", "create", "example.com")
	sa := func(name string) string {
		var a struct{ Email string }
		if err := json.Unmarshal([]byte(cli("sa", "create", name, "--project", "proj", "--scopes", "orders.read", "-o", "json")), &a); err != nil {
			t.Fatal(err)
		}
		return a.Email
	}
	upd, dis, en, del := sa("to-update"), sa("to-disable"), sa("to-enable"), sa("to-delete")
	cli("sa", "disable", en)
	keyed, secreted := sa("keyed"), sa("secreted")
	key := func() string {
		var kf struct {
			ID string `json:"private_key_id"`
		}
		if err := json.Unmarshal([]byte(cli("keys", "create", keyed, "--out", "-")), &kf); err != nil {
			t.Fatal(err)
		}
		return kf.ID
	}
	secret := func() string {
		var s struct {
			ID string `json:"secret_id"`
		}
		if err := json.Unmarshal([]byte(cli("secrets", "create", secreted, "-o", "json")), &s); err != nil {
			t.Fatal(err)
		}
		return s.ID
	}
	keyToEnable, keyToDisable, keyToDelete := key(), key(), key()
	cli("keys", "disable", keyed, keyToDisable) // the other change enables it again
	// An account has two active secrets at most, created or enabled:
	// secToDisable and secToDelete start disabled, and the other changes
	// below enable them one at a time, never a third active one.
	secToEnable, secToDisable := secret(), secret()
	cli("secrets", "disable", secreted, secToDisable)
	secToDelete := secret()
	cli("secrets", "disable", secreted, secToDelete)
	cli("org", "create", "other.org")
	cli("org", "create", "gone.example")
	cli("org", "add-project", "example.com", "moving")
	cli("org", "add-project", "other.org", "leaving")

	for _, tc := range []struct {
		name   string
		get    []string // shows the resource and its ETag
		bump   []string // someone else's change
		change []string // made with --if-match
		after  string   // what the changed resource's 'get' says, "" if it is gone
		// untagged: the change prints no etag (the resource changed is
		// not the one whose ETag it was made on).
		untagged bool
	}{
		{"sa update", []string{"sa", "get", upd}, []string{"sa", "update", upd, "--display-name", "x"},
			[]string{"sa", "update", upd, "--description", "mine"}, "mine", false},
		{"sa disable", []string{"sa", "get", dis}, []string{"sa", "update", dis, "--description", "x"},
			[]string{"sa", "disable", dis}, `"disabled": true`, false},
		{"sa enable", []string{"sa", "get", en}, []string{"sa", "update", en, "--description", "x"},
			[]string{"sa", "enable", en}, `"disabled": false`, false},
		{"sa delete", []string{"sa", "get", del}, []string{"sa", "update", del, "--description", "x"},
			[]string{"sa", "delete", del}, "", false},
		{"api update", []string{"api", "get", "orders"}, []string{"api", "update", "orders", "--description", "x"},
			[]string{"api", "update", "orders", "--token-format", "opaque"}, `"opaque"`, false},
		{"api delete", []string{"api", "get", "billing"}, []string{"api", "update", "billing", "--description", "x"},
			[]string{"api", "delete", "billing"}, "", false},
		{"org policy", []string{"org", "get", "example.com"}, []string{"org", "add-project", "example.com", "proj"},
			[]string{"org", "policy", "example.com", "--block-scopes", "orders.read"}, `"orders.read"`, false},
		{"org delete", []string{"org", "get", "gone.example"}, []string{"org", "add-project", "gone.example", "gone"},
			[]string{"org", "delete", "gone.example"}, "", false},
		{"keys enable", []string{"keys", "get", keyed, keyToEnable}, []string{"keys", "disable", keyed, keyToEnable},
			[]string{"keys", "enable", keyed, keyToEnable}, `"disabled": false`, false},
		{"keys disable", []string{"keys", "get", keyed, keyToDisable}, []string{"keys", "enable", keyed, keyToDisable},
			[]string{"keys", "disable", keyed, keyToDisable}, `"disabled": true`, false},
		{"keys delete", []string{"keys", "get", keyed, keyToDelete}, []string{"keys", "disable", keyed, keyToDelete},
			[]string{"keys", "delete", keyed, keyToDelete}, "", false},
		{"secrets enable", []string{"secrets", "get", secreted, secToEnable}, []string{"secrets", "disable", secreted, secToEnable},
			[]string{"secrets", "enable", secreted, secToEnable}, `"disabled": false`, false},
		{"secrets disable", []string{"secrets", "get", secreted, secToDisable}, []string{"secrets", "enable", secreted, secToDisable},
			[]string{"secrets", "disable", secreted, secToDisable}, `"disabled": true`, false},
		{"secrets delete", []string{"secrets", "get", secreted, secToDelete}, []string{"secrets", "enable", secreted, secToDelete},
			[]string{"secrets", "delete", secreted, secToDelete}, "", false},
		// A move's ETag is of the organization the project moves to.
		{"org add-project", []string{"org", "get", "other.org"}, []string{"org", "policy", "other.org", "--block-scopes", "x.y"},
			[]string{"org", "add-project", "other.org", "moving"}, `"project": "moving"`, true},
		{"org remove-project", []string{"org", "get", "other.org"}, []string{"org", "policy", "other.org", "--block-scopes", "y.z"},
			[]string{"org", "remove-project", "other.org", "leaving"}, `"deleted"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			etag := func() string {
				t.Helper()
				var v struct {
					ETag string `json:"etag"`
				}
				out := cli(append(tc.get, "-o", "json")...)
				if err := json.Unmarshal([]byte(out), &v); err != nil || !strings.HasPrefix(v.ETag, `"`) {
					t.Fatalf("%s -o json printed no etag: %v\n%s", strings.Join(tc.get, " "), err, out)
				}
				if table := cli(tc.get...); !strings.Contains(table, "ETag:") || !strings.Contains(table, v.ETag+"\n") {
					t.Fatalf("%s does not show the ETag %s:\n%s", strings.Join(tc.get, " "), v.ETag, table)
				}
				return v.ETag
			}
			old := etag()
			cli(tc.bump...)
			now := etag()
			err := runCLIErr(t, append(append(tc.change, "--if-match", old), admin...)...)
			reread := "run: keyward " + strings.Join(tc.get, " ")
			if err == nil || !strings.Contains(err.Error(), "precondition_failed") || !strings.Contains(err.Error(), "Nothing was done") ||
				!strings.Contains(err.Error(), reread) {
				t.Fatalf("%s with a stale --if-match: %v, want a 412 that says nothing was done and to %s", tc.name, err, reread)
			}
			if got := etag(); got != now {
				t.Fatalf("the refused change changed the ETag from %s to %s", now, got)
			}
			// The shell takes the quotes off: a bare tag works too.
			out := cli(append(tc.change, "--if-match", strings.Trim(now, `"`), "-o", "json")...)
			if tc.after == "" {
				if err := runCLIErr(t, append(tc.get, admin...)...); err == nil || !strings.Contains(err.Error(), "not_found") {
					t.Fatalf("%s after the delete: %v, want not_found", strings.Join(tc.get, " "), err)
				}
				return
			}
			if !strings.Contains(out, tc.after) || strings.Contains(out, `"etag": "`) == tc.untagged {
				t.Fatalf("%s printed %s, want %s and, unless untagged (%v), the new etag", tc.name, out, tc.after, tc.untagged)
			}
		})
	}
}
