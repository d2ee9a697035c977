package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestListJSONEmpty: the list commands that gather every page of an
// answer print an empty list as [] with -o json, as the others do, and
// only the list: sa list printed null for no account, and a
// "next_page_token" that was always empty, as every page had been read;
// users list printed null for no user.
func TestListJSONEmpty(t *testing.T) {
	m := startServer(t)
	flags := []string{"--credentials", m.AdminKeyFile, "-o", "json"}
	runCLI(t, append([]string{"org", "create", "example.com"}, flags...)...)
	tests := []struct {
		args []string
		want map[string]any
	}{
		{[]string{"sa", "list", "--project", "none"}, map[string]any{"service_accounts": []any{}}},
		{[]string{"users", "list", "--org", "example.com"}, map[string]any{"users": []any{}}},
	}
	for _, tt := range tests {
		t.Run(tt.args[0], func(t *testing.T) {
			out := runCLI(t, append(tt.args, flags...)...)
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("printed %s, want %v", out, tt.want)
			}
		})
	}
	// Not empty: every account, and no next_page_token.
	var all map[string]any
	if err := json.Unmarshal([]byte(runCLI(t, append([]string{"sa", "list"}, flags...)...)), &all); err != nil {
		t.Fatal(err)
	}
	if accts, _ := all["service_accounts"].([]any); len(accts) != 1 || len(all) != 1 {
		t.Errorf("sa list -o json printed %v, want the administrator account alone, under service_accounts alone", all)
	}
}

// TestListTableEmpty: a list command with nothing to list prints, in
// table mode, its header alone, an empty table: audit list printed
// nothing at all, which reads as a command that did not run.
func TestListTableEmpty(t *testing.T) {
	m := startServer(t)
	flags := []string{"--credentials", m.AdminKeyFile}
	tests := []struct {
		args []string
		want string // the header
	}{
		{[]string{"sa", "list", "--project", "none"}, "EMAIL  CLIENT ID  DISABLED  SCOPES"},
		{[]string{"org", "list"}, "DOMAIN  BLOCKED SCOPES"},
		{[]string{"audit", "list", "--action", "no.such"}, "SEQ  TIME                 ACTION            OUTCOME  ACCOUNT                ACTOR                  SOURCE           DETAILS"},
		{[]string{"audit", "list", "--newest", "--action", "no.such"}, "SEQ  TIME                 ACTION            OUTCOME  ACCOUNT                ACTOR                  SOURCE           DETAILS"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if out := runCLI(t, append(tt.args, flags...)...); out != tt.want+"\n" {
				t.Errorf("printed %q, want the header alone, %q", out, tt.want+"\n")
			}
		})
	}
}
