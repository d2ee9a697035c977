package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Conns sends requests over one keep-alive HTTP/1.1 connection per worker.
// Requests are bytes prepared by NewPost, written in one call; answers are
// read with net/http's own response parser. It leaves out what a general
// client needs and a load generator does not (a connection pool, two
// goroutines per connection, per-request header maps), which on a machine
// shared with the server cost as much CPU as the server spent answering.
// A worker's connection is used by that worker alone, so Conns needs no
// locks.
type Conns struct {
	addr  string
	tls   *tls.Config // nil for http
	conns []*conn
}

type conn struct {
	c   net.Conn
	br  *bufio.Reader
	buf bytes.Buffer
}

// NewConns prepares connections to base (an http or https URL) for workers
// workers. tlsConfig is used for https; nil means the system's roots.
func NewConns(base string, workers int, tlsConfig *tls.Config) (*Conns, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	c := &Conns{addr: u.Host, conns: make([]*conn, workers)}
	switch u.Scheme {
	case "http":
		if u.Port() == "" {
			c.addr = net.JoinHostPort(u.Hostname(), "80")
		}
	case "https":
		if u.Port() == "" {
			c.addr = net.JoinHostPort(u.Hostname(), "443")
		}
		if tlsConfig == nil {
			tlsConfig = &tls.Config{}
		}
		c.tls = tlsConfig.Clone()
		c.tls.NextProtos = []string{"http/1.1"} // never h2: Conns speaks HTTP/1.1
		if c.tls.ServerName == "" {
			c.tls.ServerName = u.Hostname()
		}
	default:
		return nil, fmt.Errorf("loadgen: unsupported URL scheme %q", u.Scheme)
	}
	return c, nil
}

// NewPost encodes a POST of a form to path with an optional Authorization
// header value and other header lines ("Name: value"), ready for Do.
func NewPost(host, path, authorization string, form []byte, headers ...string) []byte {
	n := 192 + len(path) + len(authorization) + len(form)
	for _, h := range headers {
		n += len(h) + 2
	}
	b := make([]byte, 0, n)
	b = append(b, "POST "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nContent-Type: application/x-www-form-urlencoded\r\n"...)
	if authorization != "" {
		b = append(b, "Authorization: "...)
		b = append(b, authorization...)
		b = append(b, "\r\n"...)
	}
	for _, h := range headers {
		b = append(b, h...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(form)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, form...)
}

// NewGet encodes a GET of path, ready for Do.
func NewGet(host, path string) []byte {
	return []byte("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
}

// Do sends req on worker's connection, dialing it first if needed, and
// returns the response's status and body. The body is valid until the
// worker's next Do. On any error the connection is closed and redialed on
// the next call.
func (c *Conns) Do(ctx context.Context, worker int, req []byte) (int, []byte, error) {
	cn := c.conns[worker]
	if cn == nil {
		var err error
		if cn, err = c.dial(ctx); err != nil {
			return 0, nil, err
		}
		c.conns[worker] = cn
	}
	if d, ok := ctx.Deadline(); ok {
		cn.c.SetDeadline(d)
	} else {
		cn.c.SetDeadline(time.Time{})
	}
	status, body, keep, err := cn.roundTrip(req)
	if err != nil || !keep {
		cn.c.Close()
		c.conns[worker] = nil
	}
	return status, body, err
}

func (c *Conns) dial(ctx context.Context) (*conn, error) {
	var (
		nc  net.Conn
		err error
	)
	if c.tls != nil {
		nc, err = (&tls.Dialer{Config: c.tls}).DialContext(ctx, "tcp", c.addr)
	} else {
		nc, err = (&net.Dialer{}).DialContext(ctx, "tcp", c.addr)
	}
	if err != nil {
		return nil, err
	}
	return &conn{c: nc, br: bufio.NewReaderSize(nc, 8192)}, nil
}

func (cn *conn) roundTrip(req []byte) (status int, body []byte, keep bool, err error) {
	if _, err := cn.c.Write(req); err != nil {
		return 0, nil, false, err
	}
	resp, err := http.ReadResponse(cn.br, nil)
	if err != nil {
		return 0, nil, false, err
	}
	cn.buf.Reset()
	_, err = cn.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, nil, false, err
	}
	return resp.StatusCode, cn.buf.Bytes(), !resp.Close, nil
}

// Close closes every connection.
func (c *Conns) Close() {
	for i, cn := range c.conns {
		if cn != nil {
			cn.c.Close()
			c.conns[i] = nil
		}
	}
}
