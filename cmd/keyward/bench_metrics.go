package main

import (
	"context"
	"fmt"
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
	case "client_credentials_secret", "client_credentials_private_key_jwt", "jwt_bearer":
		return "token"
	case "introspect_opaque", "introspect_jwt":
		return "introspect"
	}
	return ""
}

// readServerHistogram reads endpoint's histogram from the started server's
// metrics. An endpoint that served nothing yet has an empty histogram.
func (b *bench) readServerHistogram(ctx context.Context, endpoint string) (serverHistogram, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.metricsURL, nil)
	if err != nil {
		return serverHistogram{}, err
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return serverHistogram{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return serverHistogram{}, fmt.Errorf("server metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return serverHistogram{}, fmt.Errorf("server metrics: %w", err)
	}
	var h serverHistogram
	for _, m := range families["keyward_request_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() != "endpoint" || l.GetValue() != endpoint {
				continue
			}
			for _, bk := range m.GetHistogram().GetBucket() {
				h.bounds = append(h.bounds, bk.GetUpperBound())
				h.counts = append(h.counts, bk.GetCumulativeCount())
			}
			h.total = m.GetHistogram().GetSampleCount()
		}
	}
	return h, nil
}

// p99Bound is the smallest bucket bound under which the server answered
// 99 % of the requests counted between before and after, or 0 when none
// were or the 99th percentile is past the last bound.
func p99Bound(before, after serverHistogram) time.Duration {
	n := after.total - before.total
	if n == 0 {
		return 0
	}
	for i, bound := range after.bounds {
		c := after.counts[i]
		if i < len(before.counts) {
			c -= before.counts[i]
		}
		if float64(c) >= 0.99*float64(n) {
			return time.Duration(bound * float64(time.Second))
		}
	}
	return 0
}
