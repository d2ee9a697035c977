package metrics

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// A group-commit transaction that fails or times out counts in
// keyward_store_commit_failures_total; the batch histograms observe only
// the ones that commit, as before.
func TestObserveBatch(t *testing.T) {
	m := New(func() float64 { return 0 })
	m.ObserveBatch(3, time.Millisecond, nil)
	m.ObserveBatch(5, 20*time.Second, errors.New("context deadline exceeded"))
	m.ObserveBatch(1, time.Millisecond, errors.New("disk full"))
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		"\nkeyward_store_commit_failures_total 2\n",
		"\nkeyward_audit_batch_size_count 1\n",
		"\nkeyward_store_commit_duration_seconds_count 1\n",
	} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("metrics lack %q", strings.TrimSpace(want))
		}
	}
}

// everyMetric returns Metrics with every collector the server can
// register, each vector with a series, so that a Gather holds every
// family.
func everyMetric(t *testing.T) *Metrics {
	t.Helper()
	m := New(func() float64 { return 0 })
	m.HeldSummaries(func() float64 { return 0 })
	m.ChangeNotifications(func() float64 { return 1 })
	m.AdminSignInExpiry(func() float64 { return 0 })
	m.BuildInfo("v0", "", "go")
	m.ObserveRequest("token", "client_credentials", "client_secret_basic", "success", "", time.Millisecond)
	m.ObserveAdminRequest("/v1/service-accounts", "GET", 200, time.Millisecond)
	m.ObserveBatch(1, time.Millisecond, nil)
	return m
}

// Every family the server can export passes promlint (client_golang's
// testutil.GatherAndLint, without the diff package that would be a new
// dependency): base units in names (_seconds, _bytes), _total on counters
// and only on them, snake case, help text. A metric added without a
// series in everyMetric fails here too, so none escapes the lint.
func TestMetricsLint(t *testing.T) {
	m := everyMetric(t)
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	gathered := map[string]bool{}
	for _, f := range families {
		gathered[f.GetName()] = true
	}
	for name := range registeredNames(t, m) {
		if !gathered[name] {
			t.Errorf("%s has no series: observe it in everyMetric", name)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// registeredNames returns the keyward_ names m registers, from the
// descriptions, not a Gather: a vector without a series yet is not
// gathered.
func registeredNames(t *testing.T, m *Metrics) map[string]bool {
	t.Helper()
	registered := map[string]bool{}
	ch := make(chan *prometheus.Desc)
	go func() {
		m.reg.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		if name := descName(t, d); strings.HasPrefix(name, "keyward_") {
			registered[name] = true
		}
	}
	return registered
}

// Every keyward_ metric the server can register is named in the metrics
// reference, docs/DEPLOYMENT.md's "Metrics and logs", and every keyward_
// metric any document names is one the server registers: a metric added
// without a word for operators, or one renamed while its old name stays
// in an alert rule of the docs, fails here.
func TestMetricsDocumented(t *testing.T) {
	registered := registeredNames(t, everyMetric(t))

	deployment, err := os.ReadFile(filepath.Join("..", "..", "docs", "DEPLOYMENT.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(deployment), "\n## Metrics and logs\n")
	if !ok {
		t.Fatal(`docs/DEPLOYMENT.md has no "## Metrics and logs" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	inReference := map[string]bool{}
	for _, name := range metricNames(section) {
		inReference[name] = true
	}
	for name := range registered {
		if !inReference[name] {
			t.Errorf("%s is registered but docs/DEPLOYMENT.md's \"Metrics and logs\" does not name it", name)
		}
	}

	docs, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs/*.md: %v", err)
	}
	for _, doc := range append(docs, filepath.Join("..", "..", "README.md")) {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range metricNames(string(text)) {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && registered[b] {
					base = b
				}
			}
			if !registered[base] {
				t.Errorf("%s names %s, which the server does not register", filepath.Base(doc), name)
			}
		}
	}
}

// docs/DEPLOYMENT.md's table of metrics gives every keyward_ family the
// server exports, with its type and label names, and no other: an
// operator writes a query from it (keyward_requests_total{error="…"}),
// so a label renamed, added or dropped, or a metric whose type changes,
// fails here until the table says so.
func TestMetricsTable(t *testing.T) {
	families, err := everyMetric(t).reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ typ, labels string }
	exported := map[string]row{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "keyward_") {
			continue
		}
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		slices.Sort(labels)
		exported[f.GetName()] = row{strings.ToLower(f.GetType().String()), strings.Join(labels, ",")}
	}

	deployment, err := os.ReadFile(filepath.Join("..", "..", "docs", "DEPLOYMENT.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(deployment), "\n## Metrics and logs\n")
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[string]row{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `keyward_") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Errorf("table row %q has fewer than 3 cells", line)
			continue
		}
		var labels []string
		for _, m := range backquotedRE.FindAllStringSubmatch(cells[3], -1) {
			labels = append(labels, m[1])
		}
		slices.Sort(labels)
		documented[strings.Trim(strings.TrimSpace(cells[1]), "`")] = row{strings.TrimSpace(cells[2]), strings.Join(labels, ",")}
	}
	for name, got := range exported {
		want, ok := documented[name]
		switch {
		case !ok:
			t.Errorf("%s (%s, labels %q) is not in docs/DEPLOYMENT.md's table of metrics", name, got.typ, got.labels)
		case want != got:
			t.Errorf("%s is a %s with labels %q; docs/DEPLOYMENT.md's table says a %s with labels %q", name, got.typ, got.labels, want.typ, want.labels)
		}
	}
	for name := range documented {
		if _, ok := exported[name]; !ok {
			t.Errorf("docs/DEPLOYMENT.md's table of metrics has %s, which the server does not export", name)
		}
	}
}

// backquotedRE matches a word in backquotes.
var backquotedRE = regexp.MustCompile("`([^`]+)`")

// metricNamesRE matches a keyward_ name wherever text gives it: in
// backquotes, as in `keyward_requests_total` or
// `keyward_build_info{version="…"}`, and in code blocks, such as an alert
// rule's expr, which an operator copies as it is.
var metricNamesRE = regexp.MustCompile(`\b(keyward_[a-z0-9_]+)`)

// metricNames returns the keyward_ names text gives; a prefix (a name
// ending in _, such as a channel's) is not a metric.
func metricNames(text string) []string {
	var out []string
	for _, m := range metricNamesRE.FindAllStringSubmatch(text, -1) {
		if !strings.HasSuffix(m[1], "_") {
			out = append(out, m[1])
		}
	}
	return out
}

// descName is the fully-qualified name in d's description.
func descName(t *testing.T, d *prometheus.Desc) string {
	_, rest, ok := strings.Cut(d.String(), `fqName: "`)
	name, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 {
		t.Fatalf("no name in %s", d)
	}
	return name
}
