//go:build !windows

package main

import (
	"errors"
	"syscall"
)

// isAddrInUse reports whether err, a listen's, says another socket holds
// the address.
func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// isAddrNotAvail reports whether err, a listen's, says no interface of
// this machine has the address.
func isAddrNotAvail(err error) bool { return errors.Is(err, syscall.EADDRNOTAVAIL) }
