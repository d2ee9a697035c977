package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/dpop"
	"github.com/keyward/keyward/internal/loadgen"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/procstat"
	"github.com/keyward/keyward/internal/sakey"
	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
)

// dpopScenario is client credentials with a DPoP proof (RFC 9449).
const dpopScenario = "client_credentials_dpop"

// allScenarios are the scenarios of `keyward bench`, in order.
var allScenarios = []string{
	"client_credentials_secret", "client_credentials_private_key_jwt", dpopScenario, "jwt_bearer",
	"introspect_opaque", "introspect_jwt", "healthz", "verify_cold", "verify_warm",
}

type benchFlags struct {
	target        string
	targetMetrics string
	credentials   string
	db            string
	duration      time.Duration
	concurrency   int
	rate          float64
	warmup        time.Duration
	scenarios     []string
	accounts      int
	signingAlg    string
	// introspectionAudit is the started server's --introspection-audit-interval.
	introspectionAudit time.Duration
	caCert             string
	output             string
	// assertionJTI gives each jwt_bearer assertion a jti of its own, for
	// a server started with --require-assertion-jti.
	assertionJTI bool
}

func newBenchCommand() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Time token issuance, introspection and verification under load",
		Long: `Start a Keyward server (a child process on a temporary SQLite store, or
PostgreSQL with --db) or use --target, create fixture accounts, keys and
secrets, then drive each scenario for --duration at --concurrency, after an
uncounted --warmup, and report requests/s, latency percentiles, errors by
status ("transport": no answer; "unverified": a token verify_* refused;
"inactive": an introspection answered with the token not active), the
server's CPU seconds per 1,000 requests, its peak memory (per scenario and
for the whole run), and the load generator's own CPU (until its last
answer).
It also reports the server's own p99 ("server p99"): the bucket of its
request-duration histogram under which its handlers answered 99 % of the
scenario's requests — the latency without the time a request waits in the
kernel or for the load generator, which share the machine with it
("> 2.5s" when it is past the histogram's last bound).
With --target, the server's figures come from its metrics listener, when
--target-metrics names it (its peak memory is then the highest of readings
every 250ms); point --target at that one replica, not a load balancer.
If most of a scenario's requests get no answer at all (the server died,
went away or hung), the run stops there, reports what it has and exits 1.

By default each client sends its next request as soon as the last is
answered, which measures the most the server can do; at that saturation,
latency is what the queue of waiting clients makes it. With --rate the
clients send that many requests per second in all, evenly spaced, as a
fleet of independent callers does, and a request that falls due while its
client still waits on a slow answer counts its latency from when it was
due, so that wait is measured, not omitted. Use it for the latency at a
given load. No request is sent after --duration, but those unanswered
then are waited for (as long again, at least 2s, at most 10s) and
counted, and with --rate so are those that fell due before it; those
still unanswered (or due and unsent) after that are cut off, and the
scenario's note (and cut_off in -o json) says how many. An interrupted
run (Ctrl-C) reports what it measured and fails; one killed outright
stops its server with it, and the next run removes the temporary store
it left (directory or PostgreSQL schema).

` + strings.Join(wrapText("Scenarios: "+strings.Join(allScenarios, ", ")+".", 76), "\n") + `

The started server audits active introspections as summaries, as
'keyward serve' does by default; --introspection-audit-interval 0 makes it
write each one durably before its answer, and the report's first line says
which.

healthz is the floor the rest stand on: GET /healthz does no
authentication and touches no storage, so it measures what HTTP on this
machine costs the server and the load generator.

verify_cold and verify_warm call the verify library in bench's own
process, with one caller per core (at most --concurrency): a verification
only computes, so more callers would add no throughput, only time spent
waiting for a core, which their latency figures would then report.

Client-side signing is kept out of the measurement: JWT-bearer assertions
(RS256, without jti, as Google's libraries send them) are signed before the
run and cycled — the server verifies every one anyway; with --assertion-jti,
which a server started with --require-assertion-jti needs, each has a jti
of its own and is sent once, so enough for the whole run are signed before
it, which takes a while (RS256 signing is slow) — and private_key_jwt
client assertions (ES256, each with its own jti) are signed before the run,
as are client_credentials_dpop's DPoP proofs (ES256; a proof is good for a
minute, so that scenario needs --warmup + --duration within 45s, and one
45s old by its turn is signed again then, as the scenario's note counts).
Likewise an assertion, good for an hour, that is 55m old by its turn (a
long run) is signed again then. That signing is done before its request's
clock starts (with --rate, once the request has fallen due, so that the
credential does not age while its client waits): it is in the load
generator's CPU, not in a latency, unless the client had fallen behind
and the request's latency counts from when it was due.
Each client sends its requests, encoded before the run where they can be,
over a keep-alive connection of its own, so the load generator takes little
of the CPU it shares with the server. Before the table, a yardstick: how
many ES256 signatures one core of this machine makes per second, to compare
figures from different machines. Load stays on loopback unless --target
names another server.`,
		Example: `  keyward bench --duration 10s --concurrency 64
  keyward bench --scenarios client_credentials_secret,introspect_opaque -o json
  keyward bench --scenarios client_credentials_secret --rate 5000
  keyward bench --accounts 1000000 --scenarios client_credentials_secret
  keyward bench --target https://keyward.staging --credentials admin-key.json
  keyward bench --target http://10.0.0.5:8080 --credentials admin-key.json \
    --target-metrics http://10.0.0.5:9090/metrics`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.target, "target", "", "benchmark this running server instead of starting one, as the administrator of --credentials")
	fl.StringVar(&f.credentials, "credentials", "", "administrator key file for --target (default: $KEYWARD_CREDENTIALS, else ./keyward-data/admin-key.json)")
	fl.StringVar(&f.targetMetrics, "target-metrics", "", "the --target server's Prometheus metrics URL (its --metrics-listen, e.g. http://10.0.0.5:9090/metrics), for its CPU, memory and own p99")
	fl.StringVar(&f.caCert, "ca-cert", "", "PEM file of the CA that signed --target's TLS certificate (default: $KEYWARD_CA_CERT, else the system's)")
	fl.StringVar(&f.db, "db", "", "run the started server on this PostgreSQL database, in a schema of its own dropped afterwards, instead of a temporary SQLite one")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "how long to drive each scenario, from "+minBenchDuration.String()+" to 1h")
	fl.IntVar(&f.concurrency, "concurrency", 64, "concurrent clients, from 1 to 10000")
	fl.DurationVar(&f.warmup, "warmup", time.Second, "before measuring each scenario, run it this long without counting (connections open, caches filled), 0 (none) or from "+minBenchDuration.String()+" to 10m")
	fl.Float64Var(&f.rate, "rate", 0, "requests per second to send in each scenario, spread over the clients, at most 10000000 (0: each client sends as soon as it is answered)")
	fl.StringSliceVar(&f.scenarios, "scenarios", allScenarios, "scenarios to run, comma-separated")
	fl.IntVar(&f.accounts, "accounts", 0, fmt.Sprintf("first fill the store with this many service accounts, at most %d (started server only); the first %d get a client secret, and client_credentials_secret spreads its requests over them", maxFillAccounts, fillSecrets))
	fl.StringVar(&f.signingAlg, "signing-alg", "", "access-token signing algorithm of the started server: "+strings.Join(signer.Algorithms, ", ")+" (default: the server's, ES256)")
	fl.BoolVar(&f.assertionJTI, "assertion-jti", false, "give each jwt_bearer assertion its own jti and send it once, for a server started with --require-assertion-jti (default: no jti, as Google's libraries send them, and the assertions are cycled)")
	fl.DurationVar(&f.introspectionAudit, "introspection-audit-interval", DefaultConfig().IntrospectionAudit, "the started server's --introspection-audit-interval: how often introspections that find their token active are audited as summaries, at most 10m (0: each one durably before its answer)")
	addOutputFlag(fl, &f.output)
	return cmd
}

func runBench(cmd *cobra.Command, f benchFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if f.duration < minBenchDuration || f.duration > time.Hour {
		return usageError{fmt.Errorf("--duration must be from %s to 1h", minBenchDuration)}
	}
	if f.concurrency < 1 || f.concurrency > 10_000 {
		return usageError{errors.New("--concurrency must be from 1 to 10000")}
	}
	if f.warmup != 0 && (f.warmup < minBenchDuration || f.warmup > 10*time.Minute) {
		return usageError{fmt.Errorf("--warmup must be 0 (none) or from %s to 10m", minBenchDuration)}
	}
	if !(f.rate >= 0 && f.rate <= 10_000_000) { // also refuses NaN
		return usageError{errors.New("--rate must be from 0 to 10000000 requests per second")}
	}
	if len(f.scenarios) == 0 {
		return usageError{fmt.Errorf("--scenarios is empty; name one or more of %s", strings.Join(allScenarios, ", "))}
	}
	for _, s := range f.scenarios {
		if !slices.Contains(allScenarios, s) {
			return usageError{fmt.Errorf("unknown scenario %q; the scenarios are %s", s, strings.Join(allScenarios, ", "))}
		}
	}
	if slices.Contains(f.scenarios, dpopScenario) && f.warmup+f.duration > maxDPoPRun {
		if cmd.Flags().Changed("scenarios") {
			return usageError{fmt.Errorf("%s signs its DPoP proofs before the run, and a proof is good for %s: keep --warmup + --duration within %s, or leave the scenario out", dpopScenario, dpop.DefaultMaxAge, maxDPoPRun)}
		}
		f.scenarios = slices.DeleteFunc(slices.Clone(f.scenarios), func(s string) bool { return s == dpopScenario })
		fmt.Fprintf(cmd.ErrOrStderr(), "leaving out %s: its DPoP proofs, signed before the run, are good for %s, so --warmup + --duration must be within %s\n", dpopScenario, dpop.DefaultMaxAge, maxDPoPRun)
	}
	if f.target != "" {
		if err := checkServerURL("--target", f.target); err != nil {
			return usageError{err}
		}
	}
	if f.targetMetrics != "" {
		u, err := url.Parse(f.targetMetrics)
		if f.target == "" {
			return usageError{errors.New("--target-metrics needs --target: a server bench starts is measured without it")}
		}
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageError{fmt.Errorf("--target-metrics %q is not an http:// or https:// URL", f.targetMetrics)}
		}
	}
	if f.accounts < 0 || f.accounts > maxFillAccounts { // also with --target, where it would be ignored
		return usageError{fmt.Errorf("--accounts must be from 0 to %d", maxFillAccounts)}
	}
	if f.target == "" && (f.credentials != "" || f.caCert != "") {
		// Ignored, a bench meant for a running server would measure a
		// server of its own instead.
		return usageError{errors.New("--credentials and --ca-cert apply to --target: name the running server to benchmark with --target, or leave them out to start one")}
	}
	if f.target != "" && (f.accounts > 0 || f.db != "" || f.signingAlg != "" || cmd.Flags().Changed("introspection-audit-interval")) {
		return usageError{errors.New("--accounts, --db, --signing-alg and --introspection-audit-interval apply to a server bench starts, not to --target")}
	}
	if err := checkIntrospectionAudit("--introspection-audit-interval", f.introspectionAudit); err != nil {
		return usageError{err}
	}
	if f.signingAlg != "" && !slices.Contains(signer.Algorithms, f.signingAlg) {
		return usageError{fmt.Errorf("--signing-alg %q is not one of %s", f.signingAlg, strings.Join(signer.Algorithms, ", "))}
	}
	ctx := cmd.Context()
	progress := progressWriter(cmd.ErrOrStderr())

	b := &bench{f: f, out: cmd.ErrOrStderr(), progress: progress}
	if f.target == "" {
		err := b.startServer(ctx)
		defer b.stopServer() // also what a failed start left: its directory, its schema
		if err != nil {
			return err
		}
	} else {
		if !isLoopbackURL(f.target) {
			fmt.Fprintf(b.out, "load goes to %s, which is not loopback\n", f.target)
		}
		b.base, b.adminKey = strings.TrimRight(f.target, "/"), f.credentials
	}
	// Also after a setup that failed part way: what it created goes.
	defer b.cleanup(context.WithoutCancel(ctx))
	if err := b.setup(ctx); err != nil {
		return err
	}
	if f.targetMetrics != "" {
		b.metricsURL = f.targetMetrics
		m, err := b.readServerMetrics(ctx, "")
		if err != nil {
			return fmt.Errorf("--target-metrics: %w", err)
		}
		if !m.hasProcess {
			return fmt.Errorf("--target-metrics: %s has no process_cpu_seconds_total or process_resident_memory_bytes; is it the metrics listener of a Keyward server?", f.targetMetrics)
		}
	}

	report := benchReport{
		Machine:      fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()),
		ES256PerCore: calibrate(),
		Store:        b.storeName,
		Concurrency:  f.concurrency,
		Rate:         f.rate,
		Duration:     f.duration.String(),
		Warmup:       f.warmup.String(),
		Accounts:     b.accountCount,
		SigningAlg:   b.signingAlg,
	}
	if f.target == "" {
		report.IntrospectionAudit = introspectionAuditMode(f.introspectionAudit)
	}
	var lost error // the server stopped answering
	for _, name := range f.scenarios {
		r, err := b.run(ctx, name)
		if ctx.Err() != nil {
			// Interrupted (Ctrl-C, SIGTERM): report what was measured, say
			// so, and fail.
			if err == nil && r.Requests > 0 {
				r.Note = strings.TrimPrefix(r.Note+"; interrupted after "+r.Elapsed.Round(100*time.Millisecond).String()+" of "+f.duration.String(), "; ")
				report.Scenarios = append(report.Scenarios, r)
			}
			report.Interrupted = true
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if !strings.HasPrefix(name, "verify_") && unreachable(r.Result) {
			// The figures measure failing connections, not the server;
			// the scenarios after this one would fail to even set up.
			r.Note = strings.TrimPrefix(r.Note+"; most requests got no answer: the server stopped answering", "; ")
			report.Scenarios = append(report.Scenarios, r)
			n, of := unanswered(r.Result)
			lost = fmt.Errorf("%s: %d of %d requests got no answer from %s (connection refused or broken, or none by the cutoff): the server stopped answering, so these figures measure nothing",
				name, n, of, b.base)
			break
		}
		report.Scenarios = append(report.Scenarios, r)
	}
	if b.child != nil {
		// Each scenario's run starts the peak over (resetPeakRSS): the
		// run's is the largest of the one since and those before.
		report.ServerPeakRSSBytes = max(b.peakRSS, procstat.PeakRSS(b.child.Process.Pid))
	}
	for _, s := range report.Scenarios {
		report.ServerPeakRSSBytes = max(report.ServerPeakRSSBytes, s.ServerPeakRSSBytes)
	}
	if report.Interrupted && len(report.Scenarios) == 0 {
		return errors.New("interrupted before any scenario was measured")
	}
	if err := report.write(cmd.OutOrStdout(), f.output); err != nil {
		return err
	}
	if report.Interrupted {
		return errors.New("interrupted; the report covers what was measured until then")
	}
	return lost
}

// unreachable says whether most of a scenario's requests got no answer at
// all (loadgen's status 0, or sent and cut off unanswered): the server
// died, went away or hung during the run. Those due with --rate and never
// sent are not counted: a server that answers, only slower than the rate,
// leaves many of them without having stopped answering.
func unreachable(r loadgen.Result) bool {
	n, of := unanswered(r)
	return n > 0 && 2*n > of
}

// unanswered counts, as unreachable does, the requests of r that got no
// answer, of those sent.
func unanswered(r loadgen.Result) (n, of int) {
	sent := r.CutOff - r.Unsent
	return r.ByStatus[0] + sent, r.Requests + sent
}

// bench holds a run's server, fixtures and HTTP client.
type bench struct {
	f        benchFlags
	out      io.Writer
	progress func(string)

	base     string // server URL
	adminKey string
	dataDir  string
	// releaseDir ends the mark that dataDir is in use (markRunDir).
	releaseDir func()
	child      *exec.Cmd
	exited     chan struct{} // closed when child has exited
	storeName  string
	master     []byte
	// dropSchema drops the PostgreSQL schema of a --db run.
	dropSchema func(context.Context) error

	http         *http.Client   // for setup
	conns        *loadgen.Conns // for the measured requests
	tls          *tls.Config    // for https targets; nil: the system's roots
	host         string         // the Host header of measured requests
	admin        *adminClient
	prefix       string
	accountCount int
	fixtures     fixtures
	// peakRSS is the started server's peak resident set before the last
	// reset of it (resetPeakRSS).
	peakRSS int64
	// lastRate is the client-credentials rate measured, to size the
	// pre-signed assertions of private_key_jwt and proofs of DPoP.
	lastRate float64
	// signingAlg is the alg of the server's access tokens, read off one.
	signingAlg string
	// metricsURL is the started server's Prometheus endpoint, for the
	// latency it measures itself; "" with --target.
	metricsURL string
	// refusal is the first error answer of the measured run of the
	// scenario being run, for its note: the errors column counts its
	// statuses, this says why.
	refusal atomic.Pointer[refusal]
	// resigned counts the credentials (DPoP proofs, assertions) of the
	// scenario's measured run that had grown too old by their turn and were
	// signed again then, before their requests' clocks started.
	resigned atomic.Int64
}

func isLoopbackURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && oauth2.IsLoopbackHost(u.Hostname())
}

// startServer runs `keyward serve` as a child process, so its CPU and
// memory can be measured apart from the load generator's.
func (b *bench) startServer(ctx context.Context) error {
	// Data directories of runs killed before they could remove them go first.
	removeAbandonedRunDirs(filepath.Join(os.TempDir(), "keyward-bench-*"))
	dir, err := os.MkdirTemp("", "keyward-bench-")
	if err != nil {
		return err
	}
	b.dataDir = dir
	if b.releaseDir, err = markRunDir(dir); err != nil {
		return fmt.Errorf("marking the data directory in use: %w", err)
	}
	b.master = make([]byte, 32)
	rand.Read(b.master)
	masterFile := filepath.Join(dir, "master.key")
	if err := os.WriteFile(masterFile, fmt.Appendf(nil, "%x\n", b.master), 0o600); err != nil {
		return err
	}
	cfg := DefaultConfig()
	cfg.DataDir = dir
	if b.f.db != "" {
		// A schema of its own: the run starts on an empty store, with this
		// run's master key, and leaves nothing behind.
		dsn, drop, err := postgres.TempSchema(ctx, b.f.db, "keyward_bench_")
		if err != nil {
			return fmt.Errorf("--db: %w", err)
		}
		b.dropSchema, cfg.DB = drop, dsn
	}
	b.storeName = storeName(cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	metricsAddr := ml.Addr().String()
	ml.Close()
	if b.f.accounts > 0 {
		if err := b.fill(ctx, cfg, "http://"+addr); err != nil {
			return err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"serve", "--data-dir", dir, "--listen", addr, "--master-key-file", masterFile, "--log-level", "warn",
		"--metrics-listen", metricsAddr}
	if cfg.DB != "" {
		args = append(args, "--db", cfg.DB)
	}
	if b.f.signingAlg != "" {
		args = append(args, "--signing-alg", b.f.signingAlg)
	}
	// Always, even at serve's default: the interval the report states is
	// then the one on the child's command line, the only source of its
	// settings (childEnviron passes it none from the environment).
	args = append(args, "--introspection-audit-interval", b.f.introspectionAudit.String())
	// Not tied to ctx, nor in bench's process group: on an interrupt,
	// stopServer shuts it down gracefully after the last figures are read.
	b.child = exec.Command(exe, args...)
	b.child.Env = childEnviron(os.Environ())
	b.child.SysProcAttr = childProcAttr()
	var stderr bytes.Buffer
	b.child.Stderr = &stderr
	if err := b.child.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { b.child.Wait(); close(exited) }()
	b.exited = exited
	b.base, b.metricsURL = "http://"+addr, "http://"+metricsAddr+"/metrics"
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(b.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.child.Process.Kill()
			<-exited
			return fmt.Errorf("the server did not become ready within 30s: %s", strings.TrimSpace(stderr.String()))
		}
		select {
		case <-exited: // stderr is complete once Wait has returned
			return fmt.Errorf("the server did not start: %s", strings.TrimSpace(stderr.String()))
		case <-time.After(10 * time.Millisecond): // the wait is part of every run: poll often
		}
	}
	b.adminKey = filepath.Join(dir, "admin-key.json")
	if !fileExists(b.adminKey) {
		return errors.New("the database already had accounts, so no administrator key was written: use an empty database, or --target with --credentials")
	}
	return nil
}

func (b *bench) stopServer() {
	if b.exited != nil {
		b.child.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.exited:
		case <-time.After(10 * time.Second):
			b.child.Process.Kill()
			<-b.exited
		}
	}
	if b.dataDir != "" {
		removeRunDir(b.dataDir)
		if b.releaseDir != nil {
			b.releaseDir()
		}
	}
	if b.dropSchema != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.dropSchema(ctx); err != nil {
			fmt.Fprintf(b.out, "could not drop the benchmark's PostgreSQL schema: %v\n", err)
		}
	}
}

// fill bulk-loads accounts straight into the store before the server
// starts; the first fillSecrets get a client secret.
func (b *bench) fill(ctx context.Context, cfg Config, issuer string) error {
	st, err := openStore(ctx, cfg, nil) // the benchmark's own new store: nothing to warn about
	if err != nil {
		return err
	}
	defer st.Close()
	// The store will not be empty when the server starts, so bootstrap the
	// administrator here, as the server would.
	svc := admin.NewService(st, admin.Config{Issuer: issuer, AccountDomain: cfg.AccountDomain, DefaultTokenLifetime: cfg.DefaultTokenTTL,
		MaxTokenLifetime: cfg.MaxTokenTTL})
	keyPath := filepath.Join(cfg.DataDir, "admin-key.json")
	if _, created, err := svc.Bootstrap(ctx, func(kf sakey.KeyFile) error { return writeKeyFile(keyPath, kf) }); err != nil {
		return err
	} else if !created {
		return errors.New("--accounts needs an empty database")
	}
	pepper, err := signer.LoadPepper(ctx, st, b.master, time.Now())
	if err != nil {
		return err
	}
	// The fill accounts hold the scope of the API the scenarios use: the
	// API comes first, as no API may be created with scopes already held.
	identifier, scope := benchAPI(fillPrefix)
	if _, err := svc.CreateAPI(ctx, admin.Actor{ID: "bench"}, admin.APIInput{Name: fillPrefix, Identifier: identifier, Scopes: []string{scope}}); err != nil {
		return err
	}
	now := time.Now()
	start := time.Now()
	const batch = 10_000
	for done := 0; done < b.f.accounts; done += batch {
		n := min(batch, b.f.accounts-done)
		accts := make([]storage.Account, n)
		for i := range accts {
			accts[i] = storage.Account{ID: fillAccountID(done + i), Email: fmt.Sprintf("fill-%d@%s.%s", done+i, fillPrefix, cfg.AccountDomain),
				Name: fmt.Sprintf("fill-%d", done+i), Project: fillPrefix, Scopes: []string{scope}, TokenLifetime: time.Hour,
				AuthMethods: storage.DefaultAuthMethods, CreatedAt: now, UpdatedAt: now}
		}
		ev := storage.AuditEvent{Time: now, Action: "account.bulk_create", Outcome: storage.OutcomeSuccess, Actor: "bench",
			Data: map[string]string{"count": strconv.Itoa(n)}}
		if err := st.CreateAccounts(ctx, accts, ev); err != nil {
			return err
		}
		b.progress(fmt.Sprintf("filling the store: %d of %d accounts (%s)", done+n, b.f.accounts, time.Since(start).Round(time.Second)))
	}
	for i := range min(fillSecrets, b.f.accounts) {
		id := fillAccountID(i)
		secret := benchSecret(i)
		sec := storage.Secret{ID: fmt.Sprintf("fill%012d", i), AccountID: id, Hash: clientauth.HashSecret(pepper, secret), Hint: "kw_…", CreatedAt: now}
		if err := st.CreateSecret(ctx, sec, nil, storage.AuditEvent{Time: now, Action: "secret.create", Outcome: storage.OutcomeSuccess, Actor: "bench", AccountID: id}); err != nil {
			return err
		}
	}
	b.accountCount = b.f.accounts
	b.progress("")
	fmt.Fprintf(b.out, "filled the store with %d accounts in %s\n", b.f.accounts, time.Since(start).Round(time.Second))
	return nil
}

// minBenchDuration is the shortest --duration: a shorter run measures too
// few requests for its percentiles to mean anything (at 1ns, none at all).
// It is the shortest --warmup but 0 too: a shorter one warms next to
// nothing (at 1ns, it sends nothing).
const minBenchDuration = 100 * time.Millisecond

// maxFillAccounts bounds --accounts: filling takes about 20 s a million.
const maxFillAccounts = 10_000_000

// fillSecrets is how many of the fill accounts get a client secret, over
// which client_credentials_secret spreads its requests: signing in as a
// thousand accounts already shows what many cost (more cache entries, more
// last-use times to flush), and their hashes take time to write.
const fillSecrets = 1000

// fillPrefix names the fixtures of a filled store: the API the fill
// accounts hold the scope of must be the one the scenarios use.
const fillPrefix = "bench"

// benchAPI returns the identifier and scope of the fixture API of prefix.
func benchAPI(prefix string) (identifier, scope string) {
	return "https://" + prefix + ".keyward.test", prefix + ".read"
}

// fillAccountID is the ID of fill account i.
func fillAccountID(i int) string { return fmt.Sprintf("9%020d", i) }

// benchSecret is the secret of fill account i: the bench writes the hashes
// itself, so it knows them.
func benchSecret(i int) string { return fmt.Sprintf("kw_bench_fill_secret_%06d", i) }

// setup creates the fixtures through the admin API.
func (b *bench) setup(ctx context.Context) error {
	// KEYWARD_CA_CERT is for --target alone: the server bench starts
	// needs no CA, and a bad path there would fail the run.
	caCert := b.f.caCert
	if b.f.target != "" {
		caCert = firstNonEmpty(caCert, os.Getenv("KEYWARD_CA_CERT"))
	}
	rt, err := httpTransport(caCert)
	if err != nil {
		return err
	}
	transport := rt.(*http.Transport)
	transport.MaxIdleConns, transport.MaxIdleConnsPerHost, transport.IdleConnTimeout = 4*b.f.concurrency, 4*b.f.concurrency, time.Minute
	b.tls = transport.TLSClientConfig
	b.http = &http.Client{Transport: transport, Timeout: 30 * time.Second}
	u, err := url.Parse(b.base)
	if err != nil {
		return fmt.Errorf("server URL %q: %w", b.base, err)
	}
	b.host = u.Host
	fl := clientFlags{credentials: b.adminKey, server: b.base, caCert: caCert, noEnvCA: true, output: "json"}
	cmd := &cobra.Command{}
	cmd.SetContext(ctx)
	cmd.SetOut(io.Discard)
	c, err := fl.client(cmd)
	if err != nil {
		return err
	}
	b.admin = c
	b.prefix = "bench" + strings.ToLower(rand.Text()[:6])
	if b.f.accounts > 0 {
		b.prefix = fillPrefix
	}
	if err := b.createFixtures(ctx); err != nil {
		return err
	}
	tok, err := b.token(ctx, b.fixtures.scope)
	if err != nil {
		return err
	}
	algs := make([]jose.SignatureAlgorithm, len(signer.Algorithms))
	for i, a := range signer.Algorithms {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	parsed, err := jwt.ParseSigned(tok, algs)
	if err != nil {
		return fmt.Errorf("the fixture token is not a JWT: %w", err)
	}
	b.signingAlg = parsed.Headers[0].Algorithm
	return nil
}

// fixtures are what the scenarios use.
type fixtures struct {
	clientID, clientEmail, secret string
	introID, introSecret          string
	keyFile                       []byte
	esKey                         *ecdsa.PrivateKey
	esKeyID                       string
	jwtAPI, opaqueAPI             string // identifiers
	scope, opaqueScope            string
	accounts                      []string // created, to delete with --target
}

func (b *bench) createFixtures(ctx context.Context) error {
	p, fx := b.prefix, &b.fixtures
	fx.jwtAPI, fx.scope = benchAPI(p)
	fx.opaqueAPI, fx.opaqueScope = benchAPI(p + "-opaque")
	do := func(method, path string, in, out any) error {
		c := *b.admin // its own: do keeps the last answer's ETag
		return c.do(ctx, method, path, in, out)
	}
	// In three rounds, each of requests that do not need each other's
	// answers, sent at once.
	var apis []func() error
	if b.accountCount == 0 { // else made with the fill accounts, which hold its scope
		apis = append(apis, func() error {
			return do("POST", "/v1/apis", admin.APIInput{Name: p, Identifier: fx.jwtAPI, Scopes: []string{fx.scope}}, nil)
		})
	}
	apis = append(apis, func() error {
		return do("POST", "/v1/apis", admin.APIInput{Name: p + "-opaque", Identifier: fx.opaqueAPI, Scopes: []string{fx.opaqueScope}, TokenFormat: "opaque"}, nil)
	})
	if err := concurrently(apis...); err != nil {
		return err
	}
	var acct, intro admin.AccountView
	err := concurrently(func() error {
		return do("POST", "/v1/service-accounts", admin.AccountInput{Name: p + "-client", Project: p, Scopes: []string{fx.scope, fx.opaqueScope}}, &acct)
	}, func() error {
		return do("POST", "/v1/service-accounts", admin.AccountInput{Name: p + "-api", Project: p}, &intro)
	})
	for _, a := range []admin.AccountView{acct, intro} {
		if a.ClientID != "" { // created, to delete with --target
			fx.accounts = append(fx.accounts, a.ClientID)
		}
	}
	if err != nil {
		return err
	}
	fx.clientID, fx.clientEmail, fx.introID = acct.ClientID, acct.Email, intro.ClientID
	fx.esKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&fx.esKey.PublicKey)
	ids := []string{intro.ClientID}
	var (
		s1, s2 admin.SecretView
		kf     jsonRaw
		kv     admin.KeyView
	)
	if err := concurrently(
		func() error { return do("PATCH", "/v1/apis/"+p, admin.APIUpdate{Introspectors: &ids}, nil) },
		func() error { return do("PATCH", "/v1/apis/"+p+"-opaque", admin.APIUpdate{Introspectors: &ids}, nil) },
		func() error {
			return do("POST", "/v1/service-accounts/"+acct.ClientID+"/secrets", admin.KeyRequest{}, &s1)
		},
		func() error {
			return do("POST", "/v1/service-accounts/"+intro.ClientID+"/secrets", admin.KeyRequest{}, &s2)
		},
		func() error {
			return do("POST", "/v1/service-accounts/"+acct.ClientID+"/keys", admin.KeyRequest{}, &kf)
		},
		func() error {
			return do("POST", "/v1/service-accounts/"+acct.ClientID+"/keys/upload",
				admin.KeyRequest{PublicKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))}, &kv)
		},
	); err != nil {
		return err
	}
	fx.secret, fx.introSecret = s1.Secret, s2.Secret
	fx.keyFile = kf
	fx.esKeyID = kv.KeyID
	return nil
}

// concurrently runs fns at once and returns the error of the first of them
// that failed, in their order.
func concurrently(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// cleanup deletes the fixtures from a --target server, those of a setup
// that failed part way too.
func (b *bench) cleanup(ctx context.Context) {
	if b.f.target == "" || b.admin == nil || b.prefix == "" {
		return
	}
	var left []string // what is still on the target
	del := func(what, path string) {
		err := b.admin.do(ctx, "DELETE", path, nil, nil)
		var ae *apiError
		if err != nil && !(errors.As(err, &ae) && ae.Status == http.StatusNotFound) { // not found: a failed setup never made it
			left = append(left, fmt.Sprintf("%s (%v)", what, err))
		}
	}
	for _, id := range b.fixtures.accounts {
		del("service account "+id, "/v1/service-accounts/"+id)
	}
	for _, api := range []string{b.prefix, b.prefix + "-opaque"} {
		del("API "+api, "/v1/apis/"+api)
	}
	if len(left) > 0 {
		fmt.Fprintf(b.out, "could not delete the benchmark's fixtures from %s; delete them yourself: %s\n", b.base, strings.Join(left, "; "))
	}
}

// jsonRaw receives a raw JSON response.
type jsonRaw []byte

// UnmarshalJSON implements json.Unmarshaler.
func (j *jsonRaw) UnmarshalJSON(b []byte) error {
	*j = append((*j)[:0], b...)
	return nil
}

// calibrate measures how many ES256 signatures one goroutine makes per
// second, the cost that dominates issuing a token, so that figures from
// different machines can be compared. It signs with a random source (Go's
// hedged nonces), as the server did until it moved to RFC 6979's
// deterministic ones (≈ 15 % cheaper), so that the yardstick stays
// comparable with the figures of earlier reports.
func calibrate() float64 {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 0
	}
	digest := sha256.Sum256([]byte("keyward bench calibration"))
	n, start := 0, time.Now()
	for ; time.Since(start) < 200*time.Millisecond; n++ {
		if _, err := ecdsa.SignASN1(rand.Reader, key, digest[:]); err != nil {
			return 0
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// childEnviron is env without the variables that set 'keyward serve'
// (KEYWARD_<FLAG>, KEYWARD_CONFIG and KEYWARD_MASTER_KEY): bench's server
// is set by its command line alone, not by the settings of a server the
// environment is for (an administrator's shell with KEYWARD_CONFIG naming
// its file, or KEYWARD_ISSUER, would start bench's server with that
// server's issuer and TLS files, or not at all).
func childEnviron(env []string) []string {
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.addServeFlags(fs)
	serve := map[string]bool{configEnv: true, masterKeyEnv: true}
	fs.VisitAll(func(f *pflag.Flag) { serve[envName(f.Name)] = true })
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		if runtime.GOOS == "windows" { // where names are case-blind
			name = strings.ToUpper(name)
		}
		return serve[name]
	})
}
