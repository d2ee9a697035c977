package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// benchReport is what `keyward bench` prints.
type benchReport struct {
	Machine string `json:"machine"`
	// ES256PerCore is how many ES256 signatures one goroutine of the load
	// generator made per second just before the run: a yardstick for
	// comparing figures from different machines.
	ES256PerCore float64 `json:"es256_signatures_per_second_one_core"`
	Store        string  `json:"store,omitempty"`
	Concurrency  int     `json:"concurrency"`
	Rate         float64 `json:"rate_per_second,omitempty"`
	Duration     string  `json:"duration_per_scenario"`
	Warmup       string  `json:"warmup_per_scenario"`
	Accounts     int     `json:"filled_accounts,omitempty"`
	SigningAlg   string  `json:"signing_alg,omitempty"`
	// IntrospectionAudit says how the started server audits introspections
	// that find their token active; empty with --target, where bench cannot
	// know.
	IntrospectionAudit string           `json:"introspection_audit,omitempty"`
	Scenarios          []scenarioResult `json:"scenarios"`
	ServerPeakRSSBytes int64            `json:"server_peak_rss_bytes,omitempty"`
	// Interrupted says the run was stopped before every scenario ran in
	// full; the last scenario's note says how far it got.
	Interrupted bool `json:"interrupted,omitempty"`
}

func (r benchReport) write(w io.Writer, format string) error {
	if format == "json" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	fmt.Fprint(w, r.Machine)
	if r.Store != "" {
		fmt.Fprintf(w, "; %s", r.Store)
	}
	if r.SigningAlg != "" {
		fmt.Fprintf(w, "; %s access tokens", r.SigningAlg)
	}
	if r.IntrospectionAudit != "" {
		fmt.Fprintf(w, "; %s", r.IntrospectionAudit)
	}
	fmt.Fprintf(w, "; %d concurrent clients", r.Concurrency)
	if r.Rate > 0 {
		fmt.Fprintf(w, " at %.0f requests/s", r.Rate)
	}
	fmt.Fprintf(w, ", %s per scenario", r.Duration)
	if r.Warmup != "" && r.Warmup != "0s" {
		fmt.Fprintf(w, " after a %s warm-up", r.Warmup)
	}
	if r.Accounts > 0 {
		fmt.Fprintf(w, "; %d accounts in the store", r.Accounts)
	}
	fmt.Fprintln(w)
	if r.ES256PerCore > 0 {
		fmt.Fprintf(w, "machine yardstick: one core makes %.0f ES256 signatures/s\n", r.ES256PerCore)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\treq/s\tp50\tp90\tp99\tmax\terrors\tserver p99\tserver CPU s/1k\tserver RSS MiB\tloadgen CPU s\t")
	for _, s := range r.Scenarios {
		cpu, sp99, rss := "-", "-", "-"
		if s.ServerCPUPer1k > 0 {
			cpu = fmt.Sprintf("%.3f", s.ServerCPUPer1k)
		}
		if s.ServerP99Bound > 0 {
			sp99 = "≤ " + s.ServerP99Bound.String()
		} else if s.ServerP99Over > 0 {
			sp99 = "> " + s.ServerP99Over.String()
		}
		if s.ServerPeakRSSBytes > 0 {
			rss = fmt.Sprintf("%.0f", float64(s.ServerPeakRSSBytes)/(1<<20))
		}
		lat := []string{"-", "-", "-", "-"} // no request, no latency
		if s.Requests > 0 {
			lat = []string{ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max)}
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t\n", s.Name, s.PerSecond, lat[0], lat[1], lat[2], lat[3],
			errorsString(s.Name, s.Errors, s.ByStatus, s.Inactive), sp99, cpu, rss, s.LoadgenCPU)
	}
	tw.Flush()
	if r.ServerPeakRSSBytes > 0 {
		fmt.Fprintf(w, "server peak RSS: %.0f MiB\n", float64(r.ServerPeakRSSBytes)/(1<<20))
	}
	for _, s := range r.Scenarios {
		if s.Note != "" {
			fmt.Fprintf(w, "%s: %s\n", s.Name, s.Note)
		}
	}
	if r.Interrupted {
		fmt.Fprintln(w, "interrupted: the scenarios after the last one above did not run")
	}
	return nil
}

func ms(d time.Duration) string {
	if d > 0 && d < 10*time.Microsecond {
		// A cache hit of the verify library: 0.00ms would say it took nothing.
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	}
	if d < time.Millisecond {
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// errorsString is the errors column of scenario: n errors, by HTTP status
// (0: by the transport, no answer; for verify_*, which send no request,
// tokens the verify library refused), and inactive, introspections
// answered 200 with the token not active.
func errorsString(scenario string, n int, by map[int]int, inactive int) string {
	if n == 0 {
		return "0"
	}
	var parts []string
	for status, c := range by {
		label := fmt.Sprint(status)
		if status == 0 {
			label = "transport"
			if strings.HasPrefix(scenario, "verify_") {
				label = "unverified"
			}
		}
		parts = append(parts, fmt.Sprintf("%s:%d", label, c))
	}
	if inactive > 0 {
		parts = append(parts, fmt.Sprintf("inactive:%d", inactive))
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d (%s)", n, strings.Join(parts, " "))
}

// progressWriter returns a function that rewrites one progress line on w
// when w is a terminal, and does nothing otherwise.
func progressWriter(w io.Writer) func(string) {
	f, ok := w.(*os.File)
	if !ok {
		return func(string) {}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return func(string) {}
	}
	return func(s string) { fmt.Fprintf(f, "\r\033[K%s", s) }
}

func runtimeCPUs() int { return runtime.NumCPU() }

// introspectionAuditMode describes --introspection-audit-interval d for
// the report.
func introspectionAuditMode(d time.Duration) string {
	if d == 0 {
		return "each introspection audited before its answer"
	}
	return "active introspections audited as summaries every " + d.String()
}
