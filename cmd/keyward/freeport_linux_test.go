package main

import (
	"net"
	"strconv"
	"syscall"
	"testing"
)

// reservePort returns the address of a port of 127.0.0.1 held for t until
// it ends by a socket bound to it with SO_REUSEADDR that does not listen.
// The kernel gives the port to no other socket meanwhile (neither an
// ephemeral bind nor a connect picks a bound port), yet connections to it
// are refused, and net.Listen, which sets SO_REUSEADDR too, can bind and
// listen on it: Linux lets such sockets share a port while none of them
// listens. A port found by listening and closing could be taken by
// another process before the test uses it.
func reservePort(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}
