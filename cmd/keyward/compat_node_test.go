package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNodeOAuthClients runs Node.js's OAuth libraries, unchanged, against
// a real server: openid-client discovers it (RFC 8414), gets tokens with
// client_secret_basic, client_secret_post and private_key_jwt (the service
// account's key file), sees a wrong secret refused, introspects and
// revokes; jose verifies the RFC 9068 access token against the JWKS, as a
// Node API would. The libraries are those of testdata/node/package-lock.json,
// installed by `npm ci --prefix cmd/keyward/testdata/node` (.ci/run does).
func TestNodeOAuthClients(t *testing.T) {
	node := nodeWith(t, "openid-client")
	m := startServer(t)
	c := oauthClientFixture(t, m)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"clients.mjs"}, c.args(m)...)...)
	cmd.Dir = filepath.Join("testdata", "node")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node clients.mjs: %v\n%s", err, stderr.String())
	}
	var got oauthClientResults
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("clients.mjs printed %q: %v", stdout, err)
	}
	got.check(t, m, c.ID, map[string]oauthToken{"client_secret_basic": got.Basic, "client_secret_post": got.Post, "private_key_jwt": got.PrivateKey})
}

// nodeWith returns the path of node, with module installed in
// testdata/node/node_modules; else the test skips, or fails if
// KEYWARD_TEST_NODE says they must be there (.ci/run sets it).
func nodeWith(t *testing.T, module string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join("testdata", "node", "node_modules", module))
	}
	if err != nil {
		if os.Getenv("KEYWARD_TEST_NODE") != "" {
			t.Fatalf("KEYWARD_TEST_NODE is set but node or testdata/node/node_modules/%s is missing: %v", module, err)
		}
		t.Skipf("node or Node's %s is not installed: npm ci --prefix cmd/keyward/testdata/node (.ci/run does)", module)
	}
	return node
}
