package main

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyward/keyward/internal/testkeyward"
)

// cutProxy forwards TCP connections to a PostgreSQL server until it is
// cut: its connections are then closed, and new ones closed as soon as
// accepted, until it is mended.
type cutProxy struct {
	dsn   string
	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func newCutProxy(t *testing.T, dsn string) *cutProxy {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(cfg.Host, "/") {
		t.Skip("the server is reached by a Unix socket")
	}
	upstream := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Skip("the DSN is not a URL naming its host")
	}
	u.Host = ln.Addr().String()
	p := &cutProxy{dsn: u.String()}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) mend() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// startBehindCutProxy starts a server, changed by mods, that reaches the
// PostgreSQL store through a cutProxy, and returns both.
func startBehindCutProxy(t *testing.T, mods ...func(*Main)) (*Main, *cutProxy) {
	t.Helper()
	var p *cutProxy
	m := startServer(t, append([]func(*Main){onOneStore(t), func(m *Main) {
		p = newCutProxy(t, m.Config.DB)
		m.Config.DB = p.dsn
	}}, mods...)...)
	return m, p
}

// While the database cannot be reached, /readyz answers 503 and token
// requests 503 temporarily_unavailable, with no token; once it is back,
// both recover without a restart.
func TestDatabaseOutage(t *testing.T) {
	a, p := startBehindCutProxy(t)
	acct, secret := testkeyward.OrdersJob(t, a.Server.Admin, changeActor)
	token := func() (int, map[string]any) {
		return postAs(t, a, acct.ID, secret, "/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}})
	}
	ready := func() int {
		resp, err := http.Get(a.URL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s, body := token(); s != 200 {
		t.Fatalf("token before the outage: %d %v", s, body)
	}
	if s := ready(); s != 200 {
		t.Fatalf("/readyz before the outage: %d", s)
	}
	p.cut()
	if s, body := token(); s != 503 || body["error"] != "temporarily_unavailable" || body["access_token"] != nil {
		t.Errorf("token during the outage: %d %v, want 503 temporarily_unavailable", s, body)
	}
	if s := ready(); s != 503 {
		t.Errorf("/readyz during the outage: %d, want 503", s)
	}
	p.mend()
	for start := time.Now(); ready() != 200; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("/readyz not 200 10 s after the database is back")
		}
	}
	if s, body := token(); s != 200 {
		t.Errorf("token after the outage: %d %v", s, body)
	}
}

// keyward_change_notifications_listening is 1 while the replica listens
// for the others' changes, 0 while it cannot, and 1 again once it
// reconnects.
func TestChangeNotificationsGauge(t *testing.T) {
	m, p := startBehindCutProxy(t, func(m *Main) { m.Config.MetricsListen = "127.0.0.1:0" })
	gauge := func() string {
		t.Helper()
		return metricValue(t, m, "keyward_change_notifications_listening")
	}
	waitFor := func(want string) {
		t.Helper()
		for start := time.Now(); gauge() != want; time.Sleep(5 * time.Millisecond) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("keyward_change_notifications_listening = %s after 10 s, want %s", gauge(), want)
			}
		}
	}
	waitFor("1")
	p.cut()
	waitFor("0")
	p.mend()
	waitFor("1")
}
