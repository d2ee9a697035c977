//go:build !unix

package main

import "syscall"

// childProcAttr: the started server runs with the default attributes.
func childProcAttr() *syscall.SysProcAttr { return nil }
