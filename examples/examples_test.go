// Package examples_test runs the examples end to end: a real Keyward, the
// orders API built and started as a process, and the nightly job built
// and run against it.
package examples_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
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
