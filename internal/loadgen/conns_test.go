package loadgen

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echo answers with the request's method, path, auth and body, and closes
// the connection when the body says "close".
func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if string(body) == "close" {
		w.Header().Set("Connection", "close")
	}
	status := http.StatusOK
	if r.URL.Path == "/missing" {
		status = http.StatusNotFound
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "%s %s %s %s %s", r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), body)
}

func TestConns(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tlsOn), func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(echo))
			var dials atomic.Int32
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					dials.Add(1)
				}
			}
			base := ""
			var c *Conns
			var err error
			if tlsOn {
				srv.EnableHTTP2 = true // Conns must still get HTTP/1.1
				srv.StartTLS()
				base = srv.URL
				cfg := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
				cfg.NextProtos = []string{"h2", "http/1.1"} // as an http.Transport leaves it
				c, err = NewConns(base, 2, cfg)
			} else {
				srv.Start()
				base = srv.URL
				c, err = NewConns(base, 2, nil)
			}
			defer srv.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			host := strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://")
			ctx := context.Background()
			req := NewPost(host, "/token", "Basic abc", []byte("a=1&b=2"))
			for i := range 5 {
				for w := range 2 {
					status, body, err := c.Do(ctx, w, req)
					if err != nil || status != 200 || string(body) != "POST /token Basic abc application/x-www-form-urlencoded a=1&b=2" {
						t.Fatalf("round %d worker %d: %d %q %v", i, w, status, body, err)
					}
				}
			}
			if status, body, err := c.Do(ctx, 1, NewGet(host, "/healthz")); err != nil || status != 200 || string(body) != "GET /healthz   " {
				t.Fatalf("GET: %d %q %v", status, body, err)
			}
			if n := dials.Load(); n != 2 {
				t.Errorf("%d connections for 2 workers, want one each, kept alive", n)
			}
			status, body, err := c.Do(ctx, 0, NewPost(host, "/missing", "", nil))
			if err != nil || status != 404 || string(body) != "POST /missing  application/x-www-form-urlencoded " {
				t.Errorf("missing: %d %q %v", status, body, err)
			}
			// A server that closes the connection: the next request redials.
			if status, _, err := c.Do(ctx, 0, NewPost(host, "/token", "", []byte("close"))); err != nil || status != 200 {
				t.Fatalf("close: %d %v", status, err)
			}
			if status, _, err := c.Do(ctx, 0, req); err != nil || status != 200 {
				t.Fatalf("after close: %d %v", status, err)
			}
			if n := dials.Load(); n != 3 {
				t.Errorf("%d connections, want 3 after the server closed one", n)
			}
		})
	}
}

func TestConnsErrors(t *testing.T) {
	if _, err := NewConns("ftp://example.com", 1, nil); err == nil {
		t.Error("ftp URL accepted")
	}
	// Nothing listens: a transport error, not a panic or a hang.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := NewConns("http://"+addr, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Do(context.Background(), 0, NewPost(addr, "/", "", nil)); err == nil {
		t.Error("no error from a closed port")
	}
	// A server that never answers: the context's deadline ends the wait.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	c, _ = NewConns(hang.URL, 1, nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := c.Do(ctx, 0, NewPost(strings.TrimPrefix(hang.URL, "http://"), "/", "", nil)); err == nil {
		t.Error("no error from a server that never answers")
	}
}
