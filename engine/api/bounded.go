package api

import (
	"math"
	"sync"
	"time"
)

// DefaultReconcileRate and DefaultReconcileBurst bound POST /v1/reconcile
// when Options.ReconcileRate is zero: a token bucket of 5 requests refilled
// at 1 per second. A request over the limit is answered 429 rate_limited.
const (
	DefaultReconcileRate  = 1.0
	DefaultReconcileBurst = 5
)

// minRevisionFetchInterval is the least time between two fetches that
// Charter-Min-Revision requests ask for: however many clients name a
// revision that is not served, the source is fetched at most once a second
// on their behalf.
const minRevisionFetchInterval = time.Second

// ancestryCacheSize bounds the memoised ancestry answers of
// Charter-Min-Revision, one per (served, wanted) pair.
const ancestryCacheSize = 1024

// tokenBucket is a rate limiter: up to burst requests at once, refilled at
// rate per second.
type tokenBucket struct {
	rate, burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int) *tokenBucket {
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// take takes a token at now; when there is none, it reports false and how
// long until there is one, in whole seconds (at least 1), for Retry-After.
func (b *tokenBucket) take(now time.Time) (bool, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := (1 - b.tokens) / b.rate
	return false, max(1, int(math.Ceil(wait)))
}

// ancestryKey is a (served, wanted) pair of Charter-Min-Revision.
type ancestryKey struct{ served, min string }

// ancestryCache memoises whether served includes min. The history of a
// commit never changes, so an answer stays true; the cache is bounded by
// dropping an arbitrary half of it when it is full.
type ancestryCache struct {
	mu sync.Mutex
	m  map[ancestryKey]bool
}

func (c *ancestryCache) get(k ancestryKey) (ok, found bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ok, found = c.m[k]
	return ok, found
}

func (c *ancestryCache) put(k ancestryKey, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[ancestryKey]bool)
	}
	if len(c.m) >= ancestryCacheSize {
		n := 0
		for old := range c.m { // map order: an arbitrary half
			delete(c.m, old)
			if n++; n >= ancestryCacheSize/2 {
				break
			}
		}
	}
	c.m[k] = ok
}
