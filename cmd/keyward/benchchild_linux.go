package main

import "syscall"

// childProcAttr keeps the started server out of bench's process group, so
// that a Ctrl-C at the terminal reaches bench alone, which then reads the
// server's last figures before stopping it; and has the kernel stop the
// server if bench dies without doing so (SIGKILL).
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
