package api

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// endpoint is a route that answers questions, the "endpoint" label of the
// check metrics.
type endpoint uint8

const (
	epCheck       endpoint = iota // GET .../permissions/{action}
	epPermissions                 // GET .../permissions
	epRoles                       // GET .../roles
	epAssignable                  // GET .../assignable/{roleId}
	epResources                   // GET /v1/users/{userId}/resources
	epBatch                       // POST /v1/check
	epExplain                     // POST /v1/explain
	numEndpoints
)

var endpointNames = [numEndpoints]string{"check", "permissions", "roles", "assignable", "resources", "check_batch", "explain"}

func (e endpoint) String() string { return endpointNames[e] }

// decision is the "decision" label of charter_check_requests_total.
type decision uint8

const (
	decAllow decision = iota
	decDeny
	decError
	numDecisions
)

var decisionNames = [numDecisions]string{"allow", "deny", "error"}

func allowDeny(ok bool) decision {
	if ok {
		return decAllow
	}
	return decDeny
}

// durationBuckets suit decisions of microseconds, up to requests that wait
// for a minimum revision (2s by default).
var durationBuckets = []float64{
	0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
}

// metrics are the check metrics of SPEC 7, with every label child resolved
// once so that counting a request looks nothing up.
type metrics struct {
	requests [numEndpoints][numDecisions]prometheus.Counter
	duration [numEndpoints]prometheus.Observer

	requestsVec *prometheus.CounterVec
	durationVec *prometheus.HistogramVec

	// reconcile counts POST /v1/reconcile by result: accepted (it queued a
	// reconcile), coalesced (one was queued already), rate_limited (429).
	reconcileAccepted, reconcileCoalesced, reconcileLimited prometheus.Counter
	// minRev counts requests with Charter-Min-Revision by result:
	// satisfied at once, after a wait, or not in time (409).
	minRevSatisfied, minRevWaited, minRevTimeout prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "charter_check_requests_total",
		Help: "Authorization requests answered, by endpoint and decision (allow, deny, error). " +
			"A batch request (check_batch) counts each of its checks; listings count allow when they list anything.",
	}, []string{"endpoint", "decision"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "charter_check_duration_seconds",
		Help:    "Time to answer an authorization request, by endpoint.",
		Buckets: durationBuckets,
	}, []string{"endpoint"})
	if reg != nil {
		requests = register(reg, requests)
		duration = register(reg, duration)
	}
	reconciles := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "charter_reconcile_requests_total",
		Help: "POST /v1/reconcile requests authorized, by result: accepted (queued a reconcile), coalesced (one was queued already) or rate_limited (answered 429).",
	}, []string{"result"})
	minRevs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "charter_min_revision_requests_total",
		Help: "Requests with Charter-Min-Revision, by result: satisfied at once, waited (satisfied after waiting) or timeout (answered 409).",
	}, []string{"result"})
	if reg != nil {
		reconciles = register(reg, reconciles)
		minRevs = register(reg, minRevs)
	}
	m := &metrics{requestsVec: requests, durationVec: duration,
		reconcileAccepted:  reconciles.WithLabelValues("accepted"),
		reconcileCoalesced: reconciles.WithLabelValues("coalesced"),
		reconcileLimited:   reconciles.WithLabelValues("rate_limited"),
		minRevSatisfied:    minRevs.WithLabelValues("satisfied"),
		minRevWaited:       minRevs.WithLabelValues("waited"),
		minRevTimeout:      minRevs.WithLabelValues("timeout"),
	}
	for e := range numEndpoints {
		for d := range numDecisions {
			m.requests[e][d] = requests.WithLabelValues(endpointNames[e], decisionNames[d])
		}
		m.duration[e] = duration.WithLabelValues(endpointNames[e])
	}
	return m
}

// register registers c, or returns the equal collector registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if old, ok := are.ExistingCollector.(C); ok {
			return old
		}
	}
	panic("api: registering metrics: " + err.Error())
}

// observe counts one request of ep with decision d and its duration.
func (m *metrics) observe(ep endpoint, d decision, start time.Time) {
	m.requests[ep][d].Inc()
	m.duration[ep].Observe(time.Since(start).Seconds())
}
