package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
)

// TestAuditLongPoll: a follower's long poll is answered even when it waits
// longer than the server's WriteTimeout, and at once when the server shuts
// down.
func TestAuditLongPoll(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewUnstartedServer(f.srv)
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	poll := func(wait string) (time.Duration, error) {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/audit?after=1000000&wait="+wait, nil)
		req.Header.Set("Authorization", auth)
		start := time.Now()
		resp, err := srv.Client().Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var page struct {
			Events []any `json:"events"`
		}
		b, err := io.ReadAll(resp.Body)
		if err == nil && (resp.StatusCode != 200 || json.Unmarshal(b, &page) != nil || len(page.Events) != 0) {
			t.Errorf("wait=%s: %s %s, want 200 and no events", wait, resp.Status, b)
		}
		return time.Since(start), err
	}

	t.Run("longer than the write timeout", func(t *testing.T) {
		took, err := poll("1s")
		if err != nil {
			t.Fatalf("a 1s wait on a server with a 300ms write timeout: %v", err)
		}
		if took < time.Second {
			t.Fatalf("answered after %s, before the wait was over", took)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		type result struct {
			took time.Duration
			err  error
		}
		done := make(chan result, 1)
		go func() {
			took, err := poll("50s")
			done <- result{took, err}
		}()
		time.Sleep(300 * time.Millisecond) // let it start waiting
		f.srv.StopLongPolls()
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatal(r.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a long poll in progress did not end when the server began to shut down")
		}
		// Later polls do not wait either.
		if took, err := poll("50s"); err != nil || took > 5*time.Second {
			t.Fatalf("a poll after shutdown began: %v after %s", err, took)
		}
	})
}
