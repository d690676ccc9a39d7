package reconciler

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Results of a reconcile of a new revision, the values of the result label
// (SPEC 7). ResultInternal is Charter's addition: a valid revision whose
// snapshot could not be built, a fault of Charter and not of the revision.
const (
	ResultSuccess    = "success"
	ResultInvalid    = "invalid"
	ResultRejected   = "rejected"
	ResultFetchError = "fetch_error"
	ResultInternal   = "internal"
)

// Phases of a reconcile, the values of the phase label.
const (
	PhaseFetch    = "fetch"
	PhaseLoad     = "load"
	PhaseValidate = "validate"
	PhaseDiff     = "diff"
	PhaseApply    = "apply"
)

// Metrics are the reconciler's Prometheus metrics (SPEC section 7).
type Metrics struct {
	reconciles *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	info       *prometheus.GaugeVec
	loadedAt   prometheus.Gauge
	objects    *prometheus.GaugeVec
	// lastSuccess is when a fetch last succeeded, changed or not.
	lastSuccess prometheus.Gauge
}

// NewMetrics registers the reconciler's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "charter_reconcile_total",
			Help: "Reconciles of a new revision by result: success, invalid, rejected, fetch_error, internal.",
		}, []string{"result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "charter_reconcile_duration_seconds",
			Help:    "Time spent in each phase of a reconcile: fetch, load (parsing and schema validation), validate (the change rules), diff, apply.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"phase"}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "charter_snapshot_info",
			Help: "The revision of the served snapshot (value 1).",
		}, []string{"revision"}),
		loadedAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "charter_snapshot_loaded_timestamp_seconds",
			Help: "When the served snapshot was loaded, in seconds since the Unix epoch.",
		}),
		objects: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "charter_snapshot_objects",
			Help: "Entities in the served snapshot by kind.",
		}, []string{"kind"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "charter_source_last_success_timestamp_seconds",
			Help: "When a fetch of the policy source last succeeded, whether or not the revision changed, in seconds since the Unix epoch.",
		}),
	}
	for _, r := range []string{ResultSuccess, ResultInvalid, ResultRejected, ResultFetchError, ResultInternal} {
		m.reconciles.WithLabelValues(r)
	}
	reg.MustRegister(m.reconciles, m.duration, m.info, m.loadedAt, m.objects, m.lastSuccess)
	return m
}
