// Package examples_test runs the examples end to end: a real Keyward, the
// orders API built and started as a process, and the nightly job built
// and run against it.
package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/testkeyward"
)

func build(t *testing.T, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// syncBuffer is a bytes.Buffer a process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the examples")
	}
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	kf, err := k.Srv.Admin.CreateKey(context.Background(), testkeyward.Sys, "job@shop.iam.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.json")
	b, _ := json.Marshal(kf)
	os.WriteFile(keyFile, b, 0o600)

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	api := exec.Command(build(t, "./orders-api"), "-issuer", k.URL, "-audience", "https://orders.internal", "-listen", addr)
	var apiLog syncBuffer // what it logs: its refusals
	api.Stdout, api.Stderr = &apiLog, &apiLog
	if err := api.Start(); err != nil {
		t.Fatal(err)
	}
	// Reaped whatever happens: killed, if still running, and waited for
	// when the test ends, early (a t.Fatal) or not.
	var exitErr error
	exited := make(chan struct{})
	go func() { exitErr = api.Wait(); close(exited) }()
	t.Cleanup(func() {
		api.Process.Kill() // an error once it has exited: nothing to do
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/v1/orders"); err == nil {
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Fatalf("the API without a token: %s, want 401", resp.Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the API did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err := exec.Command(build(t, "./nightly-job"), "-key-file", keyFile, "-api", "http://"+addr).CombinedOutput()
	if err != nil {
		t.Fatalf("nightly-job: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"caller":"job@shop.iam.test"`) {
		t.Fatalf("nightly-job printed %s", out)
	}
	// The job's token lacks orders.write: the API refuses a write.
	ts, err := client.TokenSource(context.Background(), b, "orders.read")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := oauth2.NewClient(context.Background(), ts).Post("http://"+addr+"/v1/orders", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("write with a read token: %s %s, want 403 insufficient_scope", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	// The API logs why it refused, for its operators. (The line may reach
	// apiLog after the answer: exec copies the API's stderr through a
	// pipe.)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := apiLog.String()
		if strings.Contains(got, "insufficient_scope: the token lacks the scope orders.write") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API logged %q, want the refusal of the write and its reason", got)
		}
	}
	// An account allowed orders.write creates an order.
	if _, err := k.Srv.Admin.CreateAccount(context.Background(), testkeyward.Sys, admin.AccountInput{Name: "writer", Project: "shop", Scopes: []string{"orders.write"}}); err != nil {
		t.Fatal(err)
	}
	wkf, err := k.Srv.Admin.CreateKey(context.Background(), testkeyward.Sys, "writer@shop.iam.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	wb, _ := json.Marshal(wkf)
	wts, err := client.TokenSource(context.Background(), wb, "orders.write")
	if err != nil {
		t.Fatal(err)
	}
	resp, err = (&http.Client{Transport: &oauth2.Transport{Source: wts}}).Post("http://"+addr+"/v1/orders", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]string
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created["created_by"] != "writer@shop.iam.test" {
		t.Fatalf("write with a write token: %s %v, want 201 created by writer@shop.iam.test", resp.Status, created)
	}
	// Stopped as a container runtime or systemd stops it, the API shuts
	// down gracefully and exits 0, not killed by the signal.
	if err := api.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("the API after SIGTERM: %v, want a graceful exit", exitErr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the API still runs 15 s after SIGTERM")
	}
}
