package gitrepo

import "context"

// repoLock serializes the go-git calls of a Repo. Unlike sync.Mutex, a
// caller may give up waiting when its context ends (LockContext), so that a
// question about history does not wait out a long fetch. Lock and Unlock
// are kept for the short calls.
type repoLock chan struct{}

func newRepoLock() repoLock { return make(repoLock, 1) }

// Lock waits for the lock.
func (l repoLock) Lock() { l <- struct{}{} }

// LockContext waits for the lock or for ctx, whichever comes first; it
// returns ctx's error when ctx ends first, without the lock.
func (l repoLock) LockContext(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Unlock releases the lock.
func (l repoLock) Unlock() { <-l }
