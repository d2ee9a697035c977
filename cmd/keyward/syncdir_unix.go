//go:build unix

package main

import "os"

// syncDirectory fsyncs the directory dir, which makes the names created
// in it, and renamed into it, durable.
func syncDirectory(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
