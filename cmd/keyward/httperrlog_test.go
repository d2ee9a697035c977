package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testkeyward"
)

// A TLS connection closed before its handshake (a load balancer's TCP
// health check) is logged at debug, not warn; a handshake that fails for
// another reason is still a warning.
func TestHTTPErrorLogQuietHandshakes(t *testing.T) {
	for _, tt := range []struct {
		name  string
		level slog.Level
		send  string // bytes sent before closing
		want  string // the level of the handshake's line, "" for none
	}{
		{"closed at once, info", slog.LevelInfo, "", ""},
		{"closed at once, debug", slog.LevelDebug, "", "level=DEBUG"},
		{"plain HTTP to the TLS port", slog.LevelInfo, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "level=WARN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out testkeyward.SyncBuffer
			srv := httptest.NewUnstartedServer(http.NotFoundHandler())
			srv.Config.ErrorLog = httpErrorLog(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tt.level}))
			srv.StartTLS()
			defer srv.Close()
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			if tt.send != "" {
				c.Write([]byte(tt.send))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				c.Read(make([]byte, 512)) // the server's answer, once it has logged
			}
			c.Close()
			// The server logs once it sees the close; give it the time.
			deadline := time.Now().Add(5 * time.Second)
			for tt.want != "" && !strings.Contains(out.String(), "TLS handshake error") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if tt.want == "" {
				time.Sleep(200 * time.Millisecond)
			}
			got := out.String()
			switch {
			case tt.want == "" && got != "":
				t.Fatalf("logged %q, want nothing", got)
			case tt.want != "" && (!strings.Contains(got, "TLS handshake error") || !strings.Contains(got, tt.want)):
				t.Fatalf("logged %q, want the handshake error at %s", got, tt.want)
			}
		})
	}
}
