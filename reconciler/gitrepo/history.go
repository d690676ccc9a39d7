package gitrepo

import (
	"cmp"
	"container/heap"
	"container/list"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

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

// Range returns the commits reachable from the commit tip names and not from
// the one base names, as git rev-list base..tip lists them: first-parent
// and merged-in commits alike, newest first by committer time. An empty
// base stands for no commit: every commit reachable from tip. A base or tip
// not in the repository is an error wrapping ErrUnknownRevision.
//
// The walk goes back from both commits at once, newest committer time
// first, until every commit still to visit is reachable from base, then
// follows base's side down to the oldest committer time listed, so that
// commits of equal time are told apart exactly. It reads at most limit
// commits, and returns an error wrapping ErrLimitReached when it would need
// more. Committer times that run against the graph (clock skew) can make it
// list a commit that base reaches only through an older-dated path: it may
// list too many, never too few.
func (r *Repo) Range(ctx context.Context, base, tip string, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("range walk: limit %d is not positive", limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	w := &rangeWalk{r: r, limit: limit, nodes: map[plumbing.Hash]*rangeNode{}}
	ht, err := r.resolve(tip)
	if err != nil {
		return nil, err
	}
	if base != "" {
		hb, err := r.resolve(base)
		if err != nil {
			return nil, err
		}
		if err := w.mark(hb, fromBase); err != nil {
			return nil, err
		}
	}
	if err := w.mark(ht, fromTip); err != nil {
		return nil, err
	}
	for n := 0; w.interesting > 0; n++ {
		if n%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		node := heap.Pop(&w.queue).(*rangeNode)
		if node.flags == fromTip {
			w.interesting--
		}
		for _, p := range node.parents {
			if err := w.mark(p, node.flags); err != nil {
				return nil, err
			}
		}
	}
	// Every commit still queued is reachable from base. A path from one of
	// them to a commit listed so far passes through commits no older than
	// it (when committer times follow the graph), so visiting the queue
	// down to the oldest listed time finds every such path: commits of
	// equal time (a rebase, a script) are not listed by mistake.
	var oldest time.Time
	for _, node := range w.nodes {
		if node.flags == fromTip && (oldest.IsZero() || node.when.Before(oldest)) {
			oldest = node.when
		}
	}
	for n := 0; w.queue.Len() > 0 && !w.queue[0].when.Before(oldest); n++ {
		if n%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		node := heap.Pop(&w.queue).(*rangeNode)
		for _, p := range node.parents {
			if err := w.mark(p, node.flags); err != nil {
				return nil, err
			}
		}
	}
	var out []*rangeNode
	for _, node := range w.nodes {
		if node.flags == fromTip {
			out = append(out, node)
		}
	}
	slices.SortFunc(out, func(a, b *rangeNode) int {
		if c := b.when.Compare(a.when); c != 0 {
			return c
		}
		return cmp.Compare(a.hash.String(), b.hash.String())
	})
	hashes := make([]string, len(out))
	for i, node := range out {
		hashes[i] = node.hash.String()
	}
	return hashes, nil
}

// Flags of a commit in a range walk: reachable from the tip, from the base.
const (
	fromTip  uint8 = 1
	fromBase uint8 = 2
)

// rangeWalk is the state of one Range call.
type rangeWalk struct {
	r     *Repo
	limit int
	nodes map[plumbing.Hash]*rangeNode
	queue rangeQueue
	// interesting counts the queued commits reachable from the tip only:
	// while there are none, nothing left to visit can be in the range.
	interesting int
}

type rangeNode struct {
	hash    plumbing.Hash
	when    time.Time
	parents []plumbing.Hash
	flags   uint8
	index   int // in the queue; -1 when not queued
}

// mark adds flags to the commit h, reading it the first time, and queues
// it to pass the flags on to its parents when they are new to it.
func (w *rangeWalk) mark(h plumbing.Hash, flags uint8) error {
	node, ok := w.nodes[h]
	if !ok {
		if len(w.nodes) == w.limit {
			return fmt.Errorf("range walk: %w after %d commits", ErrLimitReached, w.limit)
		}
		c, err := w.r.repo.CommitObject(h)
		if err != nil {
			return fmt.Errorf("read commit %s: %w", h, err)
		}
		node = &rangeNode{hash: h, when: c.Committer.When, parents: c.ParentHashes, index: -1}
		w.nodes[h] = node
	}
	old := node.flags
	if old|flags == old {
		return nil
	}
	node.flags |= flags
	gainedBase := old&fromBase == 0 && flags&fromBase != 0
	if node.index >= 0 { // queued: its parents get the new flags when it is visited
		if old == fromTip && gainedBase {
			w.interesting--
		}
		heap.Fix(&w.queue, node.index) // the order looks at the flags
		return nil
	}
	// Visited before (or new): visit it (again) when the base reaches it
	// now, since its parents were marked the tip's only. The tip reaching
	// a commit the base reaches changes nothing below it.
	if old == 0 || gainedBase {
		heap.Push(&w.queue, node)
		if node.flags == fromTip {
			w.interesting++
		}
	}
	return nil
}

// rangeQueue is a heap of commits, the newest committer time first.
type rangeQueue []*rangeNode

func (q rangeQueue) Len() int { return len(q) }
func (q rangeQueue) Less(i, j int) bool {
	if !q[i].when.Equal(q[j].when) {
		return q[i].when.After(q[j].when)
	}
	return q[i].flags&fromBase > q[j].flags&fromBase // the base's first: the walk ends sooner
}
func (q rangeQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *rangeQueue) Push(x any) {
	node := x.(*rangeNode)
	node.index = len(*q)
	*q = append(*q, node)
}

func (q *rangeQueue) Pop() any {
	old := *q
	node := old[len(old)-1]
	old[len(old)-1] = nil
	node.index = -1
	*q = old[:len(old)-1]
	return node
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
