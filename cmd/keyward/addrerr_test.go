package main

import (
	"errors"
	"net"
	"strings"
	"testing"
)

// TestListenErrorAdvice: a listen's failures for an address in use, or
// not this machine's, are told apart on this OS, and listenError gives
// its advice for each. On Windows, syscall.EADDRINUSE is not the error a
// listen fails with (Winsock's WSAEADDRINUSE), and the advice was never
// given there.
func TestListenErrorAdvice(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	tests := []struct {
		name           string
		addr           string
		inUse, notHere bool
		advice         string
	}{
		{"in use", held.Addr().String(), true, false, "the address is in use"},
		{"not this machine's", "192.0.2.1:0", false, true, "no interface of this machine has that address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := net.Listen("tcp", tt.addr)
			if err == nil {
				l.Close()
				t.Skipf("listening on %s succeeded here", tt.addr)
			}
			if got := isAddrInUse(err); got != tt.inUse {
				t.Errorf("isAddrInUse(%v) = %v, want %v", err, got, tt.inUse)
			}
			if got := isAddrNotAvail(err); got != tt.notHere {
				t.Errorf("isAddrNotAvail(%v) = %v, want %v", err, got, tt.notHere)
			}
			if got := listenError("--listen", tt.addr, err).Error(); !strings.Contains(got, tt.advice) {
				t.Errorf("listenError = %q, want %q", got, tt.advice)
			}
		})
	}
	if other := errors.New("permission denied"); isAddrInUse(other) || isAddrNotAvail(other) {
		t.Error("another error was taken for an address in use or not this machine's")
	}
}
