package testkeyward

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// StalledBody sends srv a request of method to path with header lines
// (each ending in CRLF) and a body of which it sends only the first
// half, and then stalls. It returns the answer, with its body read, and
// how long after the request the server closed the connection. It fails
// the test if neither comes within wait.
func StalledBody(t testing.TB, addr, method, path, header, body string, wait time.Duration) (*http.Response, string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	conn.SetDeadline(start.Add(wait))
	if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: keyward.test\r\n%sContent-Length: %d\r\n\r\n%s", method, path, header, len(body), body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer after %v: %v", time.Since(start), err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("answer's body: %v", err)
	}
	if _, err := br.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection was still open after %v", wait)
	} else if err != io.EOF {
		t.Fatalf("after the answer: %v, want the connection closed", err)
	}
	return resp, string(b), time.Since(start)
}
