package gitrepo

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/go-git/go-git/v5/plumbing"
)

// ctxCheckEvery is how many commits a walk reads between looks at its context.
const ctxCheckEvery = 64

// IsAncestor reports whether the commit a names is an ancestor of the one b
// names, or the same commit. Answers are cached (they never change); the
// cache is bounded. A revision not in the repository is an error wrapping
// ErrUnknownRevision.
func (r *Repo) IsAncestor(ctx context.Context, a, b string) (bool, error) {
	if err := r.mu.LockContext(ctx); err != nil {
		return false, err
	}
	defer r.mu.Unlock()
	ha, err := r.resolve(a)
	if err != nil {
		return false, err
	}
	hb, err := r.resolve(b)
	if err != nil {
		return false, err
	}
	if ha == hb {
		return true, nil
	}
	key := [2]plumbing.Hash{ha, hb}
	if ok, cached := r.ancestry.get(key); cached {
		return ok, nil
	}
	ok, err := r.reaches(ctx, hb, ha)
	if err != nil {
		return false, err
	}
	r.ancestry.put(key, ok)
	return ok, nil
}

// Includes reports whether the commit served is the commit min or descends
// from it, for Charter-Min-Revision. Both must look like commit hashes (min
// may be abbreviated): a branch name or an expression ("main", "HEAD~1")
// is never taken for a revision. A min the repository does not hold (not
// fetched yet, or no commit at all) is false without an error.
func (r *Repo) Includes(ctx context.Context, served, min string) (bool, error) {
	if served == min {
		return true, nil
	}
	if !looksLikeHash(min) || !looksLikeHash(served) {
		return false, nil
	}
	ok, err := r.IsAncestor(ctx, min, served)
	if errors.Is(err, ErrUnknownRevision) {
		return false, nil
	}
	return ok, err
}

// looksLikeHash reports whether s looks like a full or abbreviated commit
// hash: 4 to 64 lower-case hex digits.
func looksLikeHash(s string) bool {
	if len(s) < 4 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// reaches walks the parents of from, breadth first, and reports whether it
// meets target; r.mu is held.
func (r *Repo) reaches(ctx context.Context, from, target plumbing.Hash) (bool, error) {
	seen := map[plumbing.Hash]bool{from: true}
	queue := []plumbing.Hash{from}
	for n := 0; len(queue) > 0; n++ {
		if n%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return false, err
			}
		}
		h := queue[0]
		queue = queue[1:]
		c, err := r.repo.CommitObject(h)
		if err != nil {
			return false, fmt.Errorf("read commit %s: %w", h, err)
		}
		for _, p := range c.ParentHashes {
			if p == target {
				return true, nil
			}
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return false, nil
}

// FirstParents yields the commit from names and its first parents, newest
// first, at most limit commits. When commits remain after limit, the last
// pair yielded is (nil, an error wrapping ErrLimitReached); any other error
// ends the walk the same way. limit must be positive.
func (r *Repo) FirstParents(ctx context.Context, from string, limit int) iter.Seq2[*Commit, error] {
	return func(yield func(*Commit, error) bool) {
		if limit <= 0 {
			yield(nil, fmt.Errorf("first-parent walk: limit %d is not positive", limit))
			return
		}
		r.mu.Lock()
		h, err := r.resolve(from)
		r.mu.Unlock()
		if err != nil {
			yield(nil, err)
			return
		}
		for n := 0; ; n++ {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			if n == limit {
				yield(nil, fmt.Errorf("first-parent walk from %s: %w after %d commits", from, ErrLimitReached, limit))
				return
			}
			r.mu.Lock()
			c, err := r.repo.CommitObject(h)
			r.mu.Unlock()
			if err != nil {
				yield(nil, fmt.Errorf("read commit %s: %w", h, err))
				return
			}
			if !yield(toCommit(c), nil) || len(c.ParentHashes) == 0 {
				return
			}
			h = c.ParentHashes[0]
		}
	}
}

// lru is a map of bounded size that forgets the least recently used entry.
// It is not safe for concurrent use.
type lru[K comparable, V any] struct {
	max   int
	order *list.List // of *lruEntry, most recent first
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, order: list.New(), items: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[K, V]) put(k K, v V) {
	if e, ok := c.items[k]; ok {
		e.Value.(*lruEntry[K, V]).val = v
		c.order.MoveToFront(e)
		return
	}
	c.items[k] = c.order.PushFront(&lruEntry[K, V]{k, v})
	if c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*lruEntry[K, V]).key)
	}
}

func (c *lru[K, V]) len() int { return c.order.Len() }
