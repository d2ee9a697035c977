package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// serverHistogram is the started server's own request-duration histogram
// for one endpoint: how long its handlers took, from the request's arrival
// in the handler to the answer, without the time a request waits in the
// kernel or for the load generator to read the answer.
type serverHistogram struct {
	bounds []float64 // upper bounds in seconds, ascending
	counts []uint64  // cumulative
	total  uint64
}

// serverEndpoint is the endpoint whose latency a scenario drives, or "".
func serverEndpoint(scenario string) string {
	switch scenario {
	case "client_credentials_secret", "client_credentials_private_key_jwt", "client_credentials_dpop", "jwt_bearer":
		return "token"
	case "introspect_opaque", "introspect_jwt":
		return "introspect"
	}
	return ""
}

// serverMetrics is what bench reads from a server's Prometheus metrics.
type serverMetrics struct {
	hist serverHistogram // of the endpoint asked for
	// cpu is process_cpu_seconds_total and rss process_resident_memory_bytes;
	// hasProcess says they were there.
	cpu, rss   float64
	hasProcess bool
}

// readServerMetrics reads the server's metrics: endpoint's request-duration
// histogram (empty for "" or an endpoint that served nothing yet) and its
// process's CPU time and resident memory.
func (b *bench) readServerMetrics(ctx context.Context, endpoint string) (serverMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.metricsURL, nil)
	if err != nil {
		return serverMetrics{}, err
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return serverMetrics{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return serverMetrics{}, fmt.Errorf("server metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return serverMetrics{}, fmt.Errorf("server metrics: %w", err)
	}
	var m serverMetrics
	cpu, rss := families["process_cpu_seconds_total"].GetMetric(), families["process_resident_memory_bytes"].GetMetric()
	if len(cpu) == 1 && len(rss) == 1 {
		m.cpu, m.rss, m.hasProcess = cpu[0].GetCounter().GetValue(), rss[0].GetGauge().GetValue(), true
	}
	for _, mt := range families["keyward_request_duration_seconds"].GetMetric() {
		for _, l := range mt.GetLabel() {
			if l.GetName() != "endpoint" || l.GetValue() != endpoint {
				continue
			}
			for _, bk := range mt.GetHistogram().GetBucket() {
				m.hist.bounds = append(m.hist.bounds, bk.GetUpperBound())
				m.hist.counts = append(m.hist.counts, bk.GetCumulativeCount())
			}
			m.hist.total = mt.GetHistogram().GetSampleCount()
		}
	}
	return m, nil
}

// rssSampleEvery is how often bench reads a --target server's resident
// memory while a scenario runs: its metrics give the current figure, not
// the peak.
const rssSampleEvery = 250 * time.Millisecond

// sampleRSS reads the server's resident memory every rssSampleEvery until
// the returned function is called, which returns the highest reading.
func (b *bench) sampleRSS(ctx context.Context) (stop func() float64) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan float64, 1)
	go func() {
		highest := 0.0
		t := time.NewTicker(rssSampleEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				done <- highest
				return
			case <-t.C:
				if m, err := b.readServerMetrics(ctx, ""); err == nil {
					highest = max(highest, m.rss)
				}
			}
		}
	}()
	return func() float64 { cancel(); return <-done }
}

// p99Bound is the smallest bucket bound under which the server answered
// 99 % of the requests counted between before and after. When the 99th
// percentile is past the last finite bound (in the +Inf bucket, which
// every exposition has), the upper bound is unknown: it returns 0 and that
// last finite bound as over. Both are 0 when no request was counted.
func p99Bound(before, after serverHistogram) (upper, over time.Duration) {
	n := after.total - before.total
	if n == 0 {
		return 0, 0
	}
	last := 0.0 // the last finite bound
	for i, bound := range after.bounds {
		if math.IsInf(bound, +1) {
			break
		}
		c := after.counts[i]
		if i < len(before.counts) {
			c -= before.counts[i]
		}
		if float64(c) >= 0.99*float64(n) {
			return seconds(bound), 0
		}
		last = bound
	}
	return 0, seconds(last)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
