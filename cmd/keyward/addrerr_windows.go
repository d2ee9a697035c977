package main

import (
	"errors"

	"golang.org/x/sys/windows"
)

// isAddrInUse reports whether err, a listen's, says another socket holds
// the address: Winsock's WSAEADDRINUSE, which syscall.EADDRINUSE (a
// number Go invented for Windows) is not.
func isAddrInUse(err error) bool { return errors.Is(err, windows.WSAEADDRINUSE) }

// isAddrNotAvail reports whether err, a listen's, says no interface of
// this machine has the address: Winsock's WSAEADDRNOTAVAIL.
func isAddrNotAvail(err error) bool { return errors.Is(err, windows.WSAEADDRNOTAVAIL) }
