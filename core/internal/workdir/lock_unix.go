//go:build unix

package workdir

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lock takes the lock on dir that its owner holds for its life.
func lock(dir string) (*os.File, error) {
	f, err := tryLock(dir)
	if err == nil && f == nil {
		err = fmt.Errorf("lock %s: held by another process", dir)
	}
	return f, err
}

// tryLock takes dir's lock if no live process holds it; nil, nil if one
// does.
func tryLock(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}
