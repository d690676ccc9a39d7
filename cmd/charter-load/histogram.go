package main

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: every power-of-two range of values
// is split into 1<<subBits linear buckets, so a recorded value is reported
// at most 1/128 (0.8%) above its true value.
const (
	subBits    = 7
	subBuckets = 1 << subBits
	// Values below subBuckets get one exact bucket each; every further
	// power of two gets subBuckets buckets, up to the 64-bit limit.
	numBuckets = subBuckets + (64-subBits)*subBuckets
)

// histogram is an HDR-style log-linear histogram of durations in
// nanoseconds. The zero value is not usable; call newHistogram. It is not
// safe for concurrent use: each worker keeps its own and they are merged.
type histogram struct {
	counts []uint64
	count  uint64
	sum    float64
	min    int64
	max    int64
}

func newHistogram() *histogram {
	return &histogram{counts: make([]uint64, numBuckets), min: math.MaxInt64}
}

// bucketOf maps a non-negative value to its bucket index.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [subBuckets, 2*subBuckets)
	return subBuckets + shift*subBuckets + int(v>>uint(shift)) - subBuckets
}

// bucketHigh is the largest value that falls in bucket i.
func bucketHigh(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	shift := uint((i - subBuckets) / subBuckets)
	m := uint64(i-subBuckets)%subBuckets + subBuckets
	return (m+1)<<shift - 1
}

// record adds one duration; negative durations count as zero.
func (h *histogram) record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(uint64(v))]++
	h.count++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// merge adds every value recorded in o.
func (h *histogram) merge(o *histogram) {
	if o.count == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.count += o.count
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q (0 < q <= 1) by nearest rank:
// the upper edge of the bucket holding the ceil(q*count)-th smallest value,
// never above the largest value recorded. It is 0 when nothing was recorded.
func (h *histogram) quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.count)))
	rank = min(max(rank, 1), h.count)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			high := bucketHigh(i)
			if high > uint64(h.max) {
				return time.Duration(h.max)
			}
			return time.Duration(high)
		}
	}
	return time.Duration(h.max)
}

func (h *histogram) mean() time.Duration {
	if h.count == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.count))
}

func (h *histogram) minimum() time.Duration {
	if h.count == 0 {
		return 0
	}
	return time.Duration(h.min)
}

func (h *histogram) maximum() time.Duration { return time.Duration(h.max) }
