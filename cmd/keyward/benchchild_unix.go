//go:build unix && !linux

package main

import "syscall"

// childProcAttr keeps the started server out of bench's process group, so
// that a Ctrl-C at the terminal reaches bench alone, which then reads the
// server's last figures before stopping it.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
