//go:build unix

package main

import "syscall"

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit, so
// thousands of WebSockets fit, and returns the soft limit in force.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= lim.Max {
		return uint64(lim.Cur), nil
	}
	cur := lim.Cur
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return uint64(cur), err
	}
	return uint64(lim.Cur), nil
}
