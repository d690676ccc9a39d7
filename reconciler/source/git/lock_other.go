//go:build !unix

package git

import (
	"fmt"
	"os"
)

// lockClone opens dir.lock; without flock, it does not keep another
// process out.
func lockClone(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the clone: %w", err)
	}
	return f, nil
}
