//go:build unix

package filemode

import (
	"os"
	"syscall"
)

// Tighten opens the file at path, without following a symbolic link
// unless o.FollowLinks, and checks it through that descriptor: when it is
// a regular file that group or others may access and this process's user
// owns it, it takes that access away through the same descriptor (unless
// o.CheckOnly). err is why path could not be opened or checked; a failed
// change is Result.ChmodErr. A FIFO is opened without waiting for a
// writer, and left as it is.
func Tighten(path string, o Options) (Result, error) {
	flag := os.O_RDONLY | syscall.O_NONBLOCK
	if !o.FollowLinks {
		flag |= syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Result{}, err
	}
	r := Result{Regular: fi.Mode().IsRegular(), Mode: fi.Mode().Perm()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		r.Owner = st.Uid
		r.Own = st.Uid == uint32(os.Geteuid())
	}
	if !r.Loose() || !r.Own || o.CheckOnly {
		return r, nil
	}
	if r.ChmodErr = f.Chmod(r.Tight()); r.ChmodErr == nil {
		r.Tightened = true
	}
	return r, nil
}
