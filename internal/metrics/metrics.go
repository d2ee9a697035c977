// Package metrics exposes Keyward's Prometheus metrics. Handlers report
// through small observer interfaces and never import Prometheus; label
// values come from closed sets (grant types, methods, error codes), never
// from a caller's identifiers, secrets or tokens.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	batchSize prometheus.Histogram
	batchTime prometheus.Histogram
	failures  prometheus.Counter
	throttled *prometheus.CounterVec
	badCerts  prometheus.Counter
	summaries *prometheus.CounterVec
	// adminRequests and adminLatency are the admin API's, by route
	// pattern, never by path.
	adminRequests *prometheus.CounterVec
	adminLatency  *prometheus.HistogramVec
}

// latencyBuckets are the request histograms' bounds: finer around 10 ms,
// the latency target of docs/PERFORMANCE.md, so that a p99 read from the
// buckets says which side of it a server is on, and by how much.
var latencyBuckets = []float64{.0005, .001, .002, .003, .005, .0075, .01, .015, .02, .03, .05, .1, .25, .5, 1, 2.5}

// New registers the collectors. signingKeyAge reports the age of the
// current signing key in seconds.
func New(signingKeyAge func() float64) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_requests_total",
			Help: "OAuth endpoint requests by endpoint, grant type, client authentication method, outcome and error code.",
		}, []string{"endpoint", "grant", "auth_method", "outcome", "error"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyward_request_duration_seconds",
			Help:    "OAuth endpoint latency, including the durable audit write.",
			Buckets: latencyBuckets,
		}, []string{"endpoint"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyward_audit_batch_size",
			Help:    "Writes committed per group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		batchTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyward_store_commit_duration_seconds",
			Help:    "Duration of a group-commit transaction, fsync included.",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .02, .05, .1, .5, 1},
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_store_commit_failures_total",
			Help: "Group-commit transactions that failed or timed out (the histograms observe only those that commit).",
		}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_auth_throttled_total",
			Help: "Client authentications, and admin API requests without a valid admin token, refused with 429 after repeated failures, by endpoint: token, introspect, revoke or admin.",
		}, []string{"endpoint"}),
		badCerts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_forwarded_cert_unreadable_total",
			Help: "Requests whose client-certificate header, from a trusted proxy, does not parse (the log warns of them at most once a minute).",
		}),
		summaries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_audit_summary_writes_total",
			Help: "Writes of audit summaries (of introspections that found their token active) by outcome.",
		}, []string{"outcome"}),
		adminRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_admin_requests_total",
			Help: "Admin API requests by route pattern (unmatched for a path no route matches), method and HTTP status code.",
		}, []string{"route", "method", "code"}),
		adminLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyward_admin_request_duration_seconds",
			Help:    "Admin API latency by route pattern and method, authentication and the durable audit write included (a long poll of GET /v1/audit, its wait too).",
			Buckets: latencyBuckets,
		}, []string{"route", "method"}),
	}
	m.summaries.WithLabelValues("success")
	m.summaries.WithLabelValues("failure")
	for _, e := range throttledEndpoints {
		m.throttled.WithLabelValues(e)
	}
	m.reg.MustRegister(m.requests, m.latency, m.batchSize, m.batchTime, m.failures, m.throttled, m.badCerts, m.summaries,
		m.adminRequests, m.adminLatency,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyward_signing_key_age_seconds",
			Help: "How long the current token-signing key has been signing.",
		}, signingKeyAge),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveRequest records one OAuth endpoint request.
func (m *Metrics) ObserveRequest(endpoint, grant, authMethod, outcome, errorCode string, d time.Duration) {
	m.requests.WithLabelValues(endpoint, grant, authMethod, outcome, errorCode).Inc()
	m.latency.WithLabelValues(endpoint).Observe(d.Seconds())
}

// ObserveBatch records one group-commit transaction: its size and
// duration when it committed, a failure when err is not nil.
func (m *Metrics) ObserveBatch(size int, d time.Duration, err error) {
	if err != nil {
		m.failures.Inc()
		return
	}
	m.batchSize.Observe(float64(size))
	m.batchTime.Observe(d.Seconds())
}

// ObserveAdminRequest records one admin API request: route is the path
// of the route pattern that served it, or "unmatched" for the requests
// no route matches, whatever their path; a method not one of net/http's
// is counted as "other".
func (m *Metrics) ObserveAdminRequest(route, method string, status int, d time.Duration) {
	method = knownMethod(method)
	m.adminRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.adminLatency.WithLabelValues(route, method).Observe(d.Seconds())
}

// knownMethod keeps the method label to a closed set: a request no route
// matches may have any method.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// throttledEndpoints are the values of keyward_auth_throttled_total's
// endpoint label, each exported from the start at 0: the endpoints whose
// throttle answers 429.
var throttledEndpoints = []string{"token", "introspect", "revoke", "admin"}

// Throttled records a throttled client authentication or admin API
// request at endpoint: token, introspect, revoke or admin.
func (m *Metrics) Throttled(endpoint string) { m.throttled.WithLabelValues(endpoint).Inc() }

// UnreadableCertificate records a client-certificate header from a
// trusted proxy that does not parse.
func (m *Metrics) UnreadableCertificate() { m.badCerts.Inc() }

// ObserveSummaryWrite records one write of audit summaries.
func (m *Metrics) ObserveSummaryWrite(err error) {
	if err != nil {
		m.summaries.WithLabelValues("failure").Inc()
		return
	}
	m.summaries.WithLabelValues("success").Inc()
}

// HeldSummaries reports, from held, the audit summaries waiting to be
// written.
func (m *Metrics) HeldSummaries(held func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "keyward_audit_summaries_held",
		Help: "Audit summaries waiting to be written.",
	}, held))
}

// ChangeNotifications reports, from listening, whether this replica
// hears the other replicas' changes (PostgreSQL's LISTEN): 1 or 0.
func (m *Metrics) ChangeNotifications(listening func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "keyward_change_notifications_listening",
		Help: "1 while this replica listens for the other replicas' changes (PostgreSQL LISTEN), 0 while it has lost that connection and its caches fall back to --cache-ttl. Only with --db.",
	}, listening))
}

// AdminSignInExpiry reports, from until, the Unix time until which an
// administrator can still get tokens: +Inf when a way in never expires, 0
// when none is usable.
func (m *Metrics) AdminSignInExpiry(until func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "keyward_admin_signin_expiry_timestamp_seconds",
		Help: "Unix time until which an administrator (an enabled account holding keyward.admin) can still get tokens: +Inf when a way in never expires, 0 when none is usable.",
	}, until))
}

// BuildInfo exports keyward_build_info, 1 with the labels version,
// revision and goversion: which binary serves, for dashboards and alerts
// to join on, as Prometheus's own *_build_info metrics do.
func (m *Metrics) BuildInfo(version, revision, goVersion string) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "keyward_build_info",
		Help:        "Always 1: its labels are the version and VCS revision of the keyward binary serving, and the Go version it was built with.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion},
	}, func() float64 { return 1 }))
}

// Nop is an observer that records nothing.
type Nop struct{}

// ObserveRequest implements the request observer.
func (Nop) ObserveRequest(string, string, string, string, string, time.Duration) {}

// Throttled implements the request observer.
func (Nop) Throttled(string) {}

// ObserveAdminRequest implements the admin API's observer.
func (Nop) ObserveAdminRequest(string, string, int, time.Duration) {}
