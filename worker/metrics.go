package worker

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"

	"github.com/scimsync/scimsync/pacing"
	"github.com/scimsync/scimsync/scim"
)

// Metrics are the worker's Prometheus metrics: the Temporal SDK's own (workflow and
// activity task latencies, failures, poller state, ...) and scimsync's:
//
//	scimsync_scim_requests_total{provider,method,status}      SCIM requests sent
//	scimsync_scim_request_seconds{provider,method}            their latency
//	scimsync_objects_total{provider,kind,action}              objects by outcome
//	scimsync_outbox_changes / scimsync_outbox_oldest_seconds  change-feed lag
//	scimsync_pacing_allowed_requests_per_second{provider}     the rate a provider is paced at (0: no limit)
//	scimsync_pacing_paused_seconds{provider}                  how long its pause still lasts (0: none)
//	scimsync_pacing_wait_seconds_total{provider}              time requests waited for the pacer
//	scimsync_pacing_throttles_total{provider}                 429s (and 503s with Retry-After) answered
//	scimsync_pacing_in_flight{provider}                       requests in flight
//
// Labels carry provider names, HTTP methods and statuses only: never ids or personal data.
type Metrics struct {
	// Registry holds every metric; Handler serves it.
	Registry *prometheus.Registry
	// SDK is the Temporal client's metrics handler.
	SDK client.MetricsHandler

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	objects  *prometheus.CounterVec
}

// NewMetrics creates the registry and the metrics.
func NewMetrics() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	meter := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)).Meter("temporal-sdk")
	m := &Metrics{
		Registry: reg,
		SDK:      temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{Meter: meter}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimsync_scim_requests_total", Help: "SCIM requests sent, by provider, method and HTTP status (0: no answer).",
		}, []string{"provider", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "scimsync_scim_request_seconds", Help: "Latency of SCIM requests.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"provider", "method"}),
		objects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimsync_objects_total", Help: "Objects synced, by provider, kind and action (created, updated, unchanged, skipped, failed, deprovisioned, held: a direct deprovision held past the threshold).",
		}, []string{"provider", "kind", "action"}),
	}
	reg.MustRegister(m.requests, m.latency, m.objects)
	return m, nil
}

// ObserveRequest records one SCIM request; it fits activities.Activities.OnRequest.
func (m *Metrics) ObserveRequest(provider string, info scim.RequestInfo) {
	if info.DryRun {
		return
	}
	m.requests.WithLabelValues(provider, info.Method, strconv.Itoa(info.Status)).Inc()
	m.latency.WithLabelValues(provider, info.Method).Observe(info.Duration.Seconds())
}

// ObserveObjects counts objects by outcome; it fits activities.Activities.OnObjects.
func (m *Metrics) ObserveObjects(provider, kind, action string, n int) {
	if n > 0 {
		m.objects.WithLabelValues(provider, kind, action).Add(float64(n))
	}
}

// WatchOutbox exports the change feed's lag, read from lag at scrape time.
func (m *Metrics) WatchOutbox(lag func(ctx context.Context) (int, time.Duration, error)) {
	read := func() (float64, float64) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, oldest, err := lag(ctx)
		if err != nil {
			return -1, -1
		}
		return float64(n), oldest.Seconds()
	}
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scimsync_outbox_changes", Help: "Directory changes waiting in the outbox (-1: unknown)."},
			func() float64 { n, _ := read(); return n }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scimsync_outbox_oldest_seconds", Help: "Age of the oldest waiting change (-1: unknown)."},
			func() float64 { _, s := read(); return s }),
	)
}

// WatchParked exports the changes the relay parked (Temporal refused them permanently; see
// starter outbox), read from lag at scrape time.
func (m *Metrics) WatchParked(lag func(ctx context.Context) (int, time.Duration, error)) {
	read := func() (float64, float64) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, oldest, err := lag(ctx)
		if err != nil {
			return -1, -1
		}
		return float64(n), oldest.Seconds()
	}
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scimsync_outbox_parked_changes",
			Help: "Directory changes Temporal refused permanently, parked until an operator retries or drops them (-1: unknown)."},
			func() float64 { n, _ := read(); return n }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scimsync_outbox_parked_oldest_seconds",
			Help: "How long the longest parked change has been parked (-1: unknown)."},
			func() float64 { _, s := read(); return s }),
	)
}

// WatchPacing exports the pacing of every provider this worker has sent requests to, as
// its limiters know it, read at scrape time.
func (m *Metrics) WatchPacing(r *pacing.Registry) {
	m.Registry.MustRegister(pacingCollector{r})
}

var (
	pacingAllowed = prometheus.NewDesc("scimsync_pacing_allowed_requests_per_second",
		"The rate requests to the provider are paced at, by every worker together (0: no limit).", []string{"provider"}, nil)
	pacingPaused = prometheus.NewDesc("scimsync_pacing_paused_seconds",
		"How long the provider's pause (a Retry-After of the target) still lasts; 0 when not paused.", []string{"provider"}, nil)
	pacingWait = prometheus.NewDesc("scimsync_pacing_wait_seconds_total",
		"Time this worker's requests waited for the provider's pacer.", []string{"provider"}, nil)
	pacingThrottles = prometheus.NewDesc("scimsync_pacing_throttles_total",
		"429s (and 503s with Retry-After) the provider answered this worker.", []string{"provider"}, nil)
	pacingInFlight = prometheus.NewDesc("scimsync_pacing_in_flight",
		"This worker's requests in flight to the provider.", []string{"provider"}, nil)
)

// pacingCollector reads the registry's figures at scrape time.
type pacingCollector struct{ r *pacing.Registry }

func (c pacingCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{pacingAllowed, pacingPaused, pacingWait, pacingThrottles, pacingInFlight} {
		ch <- d
	}
}

func (c pacingCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, s := range c.r.Stats() {
		paused := 0.0
		if s.PausedUntil.After(now) {
			paused = s.PausedUntil.Sub(now).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(pacingAllowed, prometheus.GaugeValue, s.Rate, s.Provider)
		ch <- prometheus.MustNewConstMetric(pacingPaused, prometheus.GaugeValue, paused, s.Provider)
		ch <- prometheus.MustNewConstMetric(pacingWait, prometheus.CounterValue, s.Waited.Seconds(), s.Provider)
		ch <- prometheus.MustNewConstMetric(pacingThrottles, prometheus.CounterValue, float64(s.Throttles), s.Provider)
		ch <- prometheus.MustNewConstMetric(pacingInFlight, prometheus.GaugeValue, float64(s.InFlight), s.Provider)
	}
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
