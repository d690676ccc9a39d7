//go:build unix

package git

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockClone takes an exclusive lock on the clone at dir (the file
// dir.lock), so that two processes never write one clone. It fails at once
// when another process holds it.
func lockClone(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the clone: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("the clone %s is in use by another process: give each one its own --cache-dir", dir)
		}
		return nil, fmt.Errorf("lock the clone: %w", err)
	}
	return f, nil
}
