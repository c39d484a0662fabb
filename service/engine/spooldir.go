package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// ClaimSpoolDir gives this process a spool directory of its own under
// parent, for a mediagw whose spool is not kept beside a ledger file that
// only one process opens (--ledger off, or Redis, where several replicas
// may share one machine's temporary directory). Each process's directory
// holds a lock file that it keeps locked while it runs; directories whose
// lock nobody holds belong to processes that are gone (killed, crashed),
// and their files are removed here. release unlocks and removes this
// process's directory.
func ClaimSpoolDir(parent string) (dir string, release func(), err error) {
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", nil, fmt.Errorf("spool directory: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(parent, "p*"))
	for _, d := range old {
		// A directory made in the last minute may be one whose process has
		// not locked it yet.
		if fi, err := os.Stat(d); err != nil || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		if f, ok := lockDir(d); ok {
			_ = os.RemoveAll(d)
			_ = f.Close()
		}
	}
	// Several mediagws may run in one process (tests): each gets its own.
	dir, err = os.MkdirTemp(parent, "p"+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", nil, fmt.Errorf("spool directory: %w", err)
	}
	f, ok := lockDir(dir)
	if !ok {
		return "", nil, fmt.Errorf("spool directory %s is locked by another process", dir)
	}
	return dir, func() {
		_ = os.RemoveAll(dir)
		_ = f.Close()
	}, nil
}

// lockDir takes the lock of a spool directory without waiting; false
// while its process runs.
func lockDir(dir string) (*os.File, bool) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, false
	}
	return f, true
}
