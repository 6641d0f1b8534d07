// Package workdir gives a process a private directory under a work
// directory that others may share — core replicas on one host, a single box
// beside a test — and removes what processes that died left there.
//
// A download removes its own temp files when it ends, but a process killed
// mid-download (kill -9, an OOM kill, a power cut) never gets to: the chaos
// suite found its files outliving it. So every process works inside a
// directory of its own that it holds an flock(2) on for its life. The kernel
// drops that lock with the process however it dies, so a directory whose
// lock anyone can take is a dead process's, and the next process to start
// (or the retention sweeper, hourly) removes it — at once, where an age rule
// would have to wait out the longest download. A live process's directory is
// never touched, however old. flock is local: a work directory on NFS is not
// supported (nor useful: these are scratch files).
package workdir

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Prefix begins the name of every process's directory.
const Prefix = "ytcaption-proc-"

// staging begins the name a directory has until its owner holds the lock:
// a sweeper ignores it, so it never sees a directory not yet locked. One
// left by a crash between the two steps is removed when older than a minute.
const staging = "." + Prefix

// Dir is a process's private directory.
type Dir struct {
	Path string
	lock *os.File // the directory itself, open and flocked
}

// Claim removes what dead processes left under parent (made if missing),
// then makes and locks a directory there for this process. swept is how
// many dead processes' directories went.
func Claim(parent string) (d *Dir, swept int, err error) {
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, 0, err
	}
	swept = Sweep(parent)
	tmp, err := os.MkdirTemp(parent, staging)
	if err != nil {
		return nil, swept, err
	}
	f, err := lock(tmp)
	if err != nil {
		os.Remove(tmp)
		return nil, swept, err
	}
	// A rename keeps the inode, and so the lock.
	path := filepath.Join(parent, Prefix+strings.TrimPrefix(filepath.Base(tmp), staging))
	if err := os.Rename(tmp, path); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, swept, err
	}
	return &Dir{Path: path, lock: f}, swept, nil
}

// Release removes the directory and everything in it, and drops the lock.
func (d *Dir) Release() error {
	err := os.RemoveAll(d.Path)
	d.lock.Close()
	return err
}

// Sweep removes parent's process directories whose owners are gone, and
// returns how many it removed.
func Sweep(parent string) int {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, Prefix) && !strings.HasPrefix(name, staging) {
			continue
		}
		if strings.HasPrefix(name, staging) {
			if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < time.Minute {
				continue
			}
		}
		path := filepath.Join(parent, name)
		f, err := tryLock(path)
		if err != nil || f == nil {
			continue // its owner lives, or it went meanwhile
		}
		if os.RemoveAll(path) == nil {
			n++
		}
		f.Close()
	}
	return n
}
