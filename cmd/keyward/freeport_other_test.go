//go:build !linux

package main

import (
	"net"
	"testing"
)

// reservePort returns the address of a free port of 127.0.0.1, found by
// listening and closing: elsewhere than on Linux another process may take
// it before the test uses it.
func reservePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
