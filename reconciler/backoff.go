package reconciler

import "time"

// Retry delays after a failed fetch or build (SPEC 6: exponential, capped
// at 5 minutes).
const (
	BackoffMin = time.Second
	BackoffMax = 5 * time.Minute
)

// Jitter fractions: a retry waits up to backoffJitter less than its
// nominal delay (so it never exceeds BackoffMax); the interval after a
// success is spread by ±intervalJitter, so that many sidecars do not fetch
// in step.
const (
	backoffJitter  = 0.2
	intervalJitter = 0.1
)

// backoff counts consecutive failures and says how long to wait after
// each: BackoffMin, doubling, at most BackoffMax, jittered. It is used by
// the loop goroutine only.
type backoff struct {
	failures int
}

// next returns the delay after one more failure; r is a random number in
// [0, 1).
func (b *backoff) next(r float64) time.Duration {
	d := BackoffMin
	for i := 0; i < b.failures && d < BackoffMax; i++ {
		d *= 2
	}
	d = min(d, BackoffMax)
	b.failures++
	return d - time.Duration(float64(d)*backoffJitter*r)
}

// reset forgets the failures, after a success.
func (b *backoff) reset() { b.failures = 0 }

// jittered returns the interval spread by ±intervalJitter; r is a random
// number in [0, 1).
func jittered(interval time.Duration, r float64) time.Duration {
	return interval + time.Duration(float64(interval)*intervalJitter*(2*r-1))
}
