package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/capool"
	"github.com/keyward/keyward/internal/failurelog"
	"github.com/keyward/keyward/internal/groupcommit"
	"github.com/keyward/keyward/internal/masterkey"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/redact"
	"github.com/keyward/keyward/internal/sakey"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/storage/sqlstore"
	"github.com/keyward/keyward/internal/tally"
	"github.com/keyward/keyward/internal/trustedproxy"
	"github.com/keyward/keyward/internal/validate"
)

func newServeCommand() *cobra.Command {
	cfg := DefaultConfig()
	var applyConfig func() error
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the authorization server",
		Long: `Run the Keyward server.

By default it listens on 127.0.0.1:8080 with an embedded SQLite database in
--data-dir. On first start with an empty store it creates an administrator
service account and writes its key file to <data-dir>/admin-key.json
(mode 0600); the other keyward commands use it to manage the server.

With SQLite, one server at a time: it locks <data-dir>/keyward.lock, and a
second 'keyward serve' on the same directory refuses to start (each server
caches what it reads, so two would drift apart). Replicas need PostgreSQL;
replicas sharing a data directory take that lock in turn while they start,
so that one generates the master key and admin-key.json.

Plain HTTP is allowed only on loopback addresses. On any other address give
--tls-cert and --tls-key, or --insecure-http when a TLS proxy is in front.

Every flag but --config itself can also be set in a YAML file (--config)
under its own name, or in the environment as KEYWARD_<NAME> (--signing-alg:
KEYWARD_SIGNING_ALG); the file is named by --config, else by
KEYWARD_CONFIG (an empty --config= means no file). Flags win over the
environment, which wins over the file.
All problems in the configuration are reported at once.`,
		Example: `  keyward serve
  keyward serve --db postgres://keyward@db.internal/keyward \
    --master-key-file /etc/keyward/master.key --listen :8443 \
    --issuer https://keyward.internal --tls-cert cert.pem --tls-key key.pem`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(); err != nil {
				return err
			}
			cfg.from = settingSources(cmd.Flags())
			if err := cfg.Validate(); err != nil {
				return usageError{fmt.Errorf("invalid configuration:\n%w", indent(err))}
			}
			logger, err := newLogger(cmd.ErrOrStderr(), cfg.LogFormat, cfg.LogLevel)
			if err != nil {
				return err
			}
			if os.Getenv("GOGC") == "" {
				// The heap is small and short-lived garbage is most of it:
				// collecting less often buys throughput for little memory.
				debug.SetGCPercent(400)
			}
			m := &Main{Config: cfg, Logger: logger}
			if err := m.Open(cmd.Context()); err != nil {
				m.Close()
				return logFailure(logger, cfg.LogFormat, "keyward serve could not start", err)
			}
			return logFailure(logger, cfg.LogFormat, "keyward serve stopped", m.runAndClose(cmd.Context()))
		},
	}
	cfg.addServeFlags(cmd.Flags())
	applyConfig = addConfigFileFlag(cmd.Flags())
	return cmd
}

func newMigrateCommand() *cobra.Command {
	cfg := DefaultConfig()
	var applyConfig func() error
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema up to date, then exit",
		Long: `Apply the pending schema migrations to the store and exit. 'keyward serve'
does this on start unless --no-migrate is given; replicas starting at once
on PostgreSQL take turns. As an init container or a step before the
servers start, give it the servers' --config and environment: it migrates
the database they use, even when they run with no-migrate.

` + storeSettingsHelp,
		Example: `  keyward migrate --data-dir keyward-data
  KEYWARD_DB=postgres://keyward@db.internal/keyward keyward migrate
  keyward migrate --config /etc/keyward/keyward.yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("no-migrate") {
				return usageError{errors.New("--no-migrate contradicts migrate: leave it out")}
			}
			if err := applyConfig(); err != nil {
				return err
			}
			// no-migrate in the servers' configuration is for the servers.
			cfg.NoMigrate = false
			// A --data-dir with no database gets a new one: say so, as a
			// mistyped directory makes one too.
			created := cfg.DB == "" && !fileExists(sqlitePath(cfg))
			st, err := openStore(cmd.Context(), cfg, commandLogger(cmd))
			if err != nil {
				return err
			}
			if created {
				fmt.Fprintf(cmd.OutOrStdout(), "created the database %s, with the schema up to date\n", sqlitePath(cfg))
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), "the database schema is up to date")
			}
			return st.Close()
		},
	}
	applyConfig = cfg.addServerSettings(cmd.Flags(), "directory of the SQLite database to create or migrate")
	return cmd
}

// loggedError is an error of serve's that its log already holds: main
// exits with it but does not print it again.
type loggedError struct{ error }

func (e loggedError) Unwrap() error { return e.error }

// logFailure logs err, which ends serve, at error as msg when the log is
// JSON, and returns it as a loggedError: a collector that reads the log
// line by line as JSON would not parse main's plain "keyward: ..." line,
// the one that says why the server is gone, nor see its level. A usage
// error, or any error in a text log, is left for main to print, as every
// command's is.
func logFailure(log *slog.Logger, format, msg string, err error) error {
	if err == nil || format != "json" || errors.As(err, new(usageError)) {
		return err
	}
	log.Error(msg, "err", err)
	return loggedError{err}
}

func indent(err error) error {
	return errors.New("  " + strings.ReplaceAll(err.Error(), "\n", "\n  "))
}

// parseLevel reads --log-level: debug, info, warn or error (slog also
// takes an offset such as warn+2).
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("%q is not a log level: debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	l, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// Main is a running server: configuration in, dependencies built by Open,
// served by Run, released by Close. Tests drive it the same way.
type Main struct {
	Config Config
	Logger *slog.Logger
	// Now, if set, replaces time.Now (tests).
	Now func() time.Time

	// Issuer is the issuer in use once Open returns.
	Issuer string
	// AdminKeyFile is where the bootstrap key file was written, if it was.
	AdminKeyFile string

	listener net.Listener
	certs    *certReloader
	// CertCheckInterval is how often the TLS files are checked for
	// changes; 0 means 10 seconds.
	CertCheckInterval time.Duration
	metrics           *metrics.Metrics
	// metricsListener and metricsHTTP serve /metrics when configured.
	metricsListener net.Listener
	metricsHTTP     *http.Server
	store           storage.Storage
	signer          *signer.Signer
	journal         *groupcommit.Committer
	introspections  *tally.Tally // nil (taking no events) when each is written before its answer
	Server          *server.Server
	http            *http.Server
	// unlock releases the lock on an SQLite data directory.
	unlock func()
	// keyReloads are applyChange's reloads of the signing keys.
	keyReloads keyReloads
	// flushUsage, if set, replaces the Authenticator's FlushUsage to the
	// store (tests).
	flushUsage func(context.Context) error
	// jobs, if set, replaces Run's periodic jobs (tests).
	jobs []job
	// wrapStore, if set, wraps the store Open opened (tests).
	wrapStore func(storage.Storage) storage.Storage
	// refreshKeys, if set, replaces Run's periodic refresh of the signing
	// keys (tests).
	refreshKeys func(context.Context)
	// grace, if set, replaces shutdownGrace (tests).
	grace time.Duration
	// handling counts the requests being handled, for a shutdown to wait
	// for those it cut off.
	handling inFlight
	// stopping is when Run began to shut down.
	stopping time.Time
	// listening: postgres.Watch listens for the other replicas' changes.
	listening atomic.Bool

	// dirUnlocked is the data directory's lock the system refused a
	// server on PostgreSQL for its start (lockFirstStart), if it did:
	// warned of only when the start writes there (warnUnlocked).
	dirUnlocked *lockRefusedError

	// caCertificates: this server takes CA-issued client certificates,
	// so a certificate binding is an administrator's way in.
	caCertificates bool
	// adminExpiry is what refreshAdminExpiry last read.
	adminExpiry struct {
		sync.Mutex
		known, ok bool
		until     time.Time // zero: a way in never expires
		warned    time.Time // when the last warning was logged
	}
}

// Open checks its addresses and files, opens the store, loads the
// signing keys, listens and bootstraps an empty store.
func (m *Main) Open(ctx context.Context) error {
	c := m.Config
	if m.Now == nil {
		m.Now = time.Now
	}
	if err := makeDataDir(c.DataDir); err != nil {
		return err
	}
	var err error
	if c.DB == "" {
		if m.unlock, err = lockDataDir(c.DataDir, sqliteServerHolder); err != nil {
			if busy, ok := errors.AsType[*dataDirBusyError](err); ok {
				if why := busy.why(); why != "" {
					return fmt.Errorf("%w: %s", err, why)
				}
				return fmt.Errorf("%w: only one server may use an SQLite database (each caches what it reads, and two drift apart); stop that one, or give this one its own --data-dir", err)
			}
			return err
		}
	}
	// The addresses and files first: one in use or unreadable stops the
	// server before it creates or migrates a database, a master key or
	// signing keys. An address is only tried here, and bound once the
	// store is ready: a load balancer's TCP check must not find the port
	// open, and send requests to wait there, while a migration runs.
	if err := tryListen(c.Listen, c.MetricsListen, c.flag); err != nil {
		return err
	}
	var clientCAs *x509.CertPool
	if c.TLSClientCA != "" {
		data, err := readKeyFile(c.TLSClientCA)
		if err != nil {
			return fmt.Errorf("%s: %w", c.flag("tls-client-ca"), err)
		}
		if clientCAs, err = capool.Parse(c.flag("tls-client-ca"), c.TLSClientCA, data); err != nil {
			return err
		}
	}
	if c.TLSCert != "" {
		if m.certs, err = newCertReloader(c.TLSCert, c.TLSKey, m.Logger); err != nil {
			return err
		}
	}
	if c.MasterKeyFile != "" {
		// Read as the files above are: missing, it stopped the start
		// only once the store was created and migrated, and left it.
		if _, _, err := findMasterKey(c); err != nil {
			return masterKeyFileError(c, err)
		}
	}
	if bad := validate.AccountDomain(c.AccountDomain); bad != nil && c.DB == "" {
		// No database yet: refused before one is made, as it would be
		// once made, empty.
		if _, err := os.Stat(sqlitePath(c)); errors.Is(err, os.ErrNotExist) {
			return accountDomainError(c.flag("account-domain"), bad)
		}
	}
	if m.store, err = openStore(ctx, c, m.Logger); err != nil {
		return err
	}
	if m.wrapStore != nil {
		m.store = m.wrapStore(m.store)
	}
	if err := checkAccountDomain(ctx, m.store, c.flag("account-domain"), c.AccountDomain, m.Logger); err != nil {
		return err
	}
	locked := c.DB == "" // an SQLite server holds the lock already, until it stops
	// unlockStart releases the lock a server on PostgreSQL holds while it
	// writes master.key and admin-key.json, once they are written.
	var unlockStart func()
	defer func() {
		if unlockStart != nil {
			unlockStart()
		}
	}()
	if !locked {
		release, err := lockFirstStart(ctx, c.DataDir, startingHolder, m.Logger)
		if refused, ok := errors.AsType[*lockRefusedError](err); ok {
			m.dirUnlocked, err = refused, nil // warned of once something is written there
		}
		if err != nil {
			return err
		}
		if release != nil {
			unlockStart = release
			locked = true
		}
	}
	if locked {
		removeTempLeftovers(c.DataDir, time.Now(), m.Logger) // the files' clock, not m.Now
	}
	// An import waits for this start to seal the store and make its
	// administrator, or this start for the import to commit: on
	// PostgreSQL, where no data-directory lock keeps them apart, an
	// import committing in between left this server's administrator, and
	// its key file, in the imported store.
	unlock, err := m.store.LockFirstStart(ctx, func() {
		// Only PostgreSQL has the lock, and waits for it. A holder whose
		// host vanished keeps it until PostgreSQL's TCP keepalives find
		// its connection dead (DEPLOYMENT.md).
		m.Logger.Warn("waiting for an import into this store, a master-key rotate of it, or another server's start on it, to end: it holds the store's first-start lock; the query find_holder lists the sessions holding it (client_addr: the holder's host; run it in the store's database, whose schema a holder's must be: other deployments' holders are listed too), and one whose host is gone keeps it until PostgreSQL's TCP keepalives notice, or until pg_terminate_backend(pid) ends it",
			"store", storeName(c), "find_holder", postgres.FirstStartHolders)
	})
	if err != nil {
		return fmt.Errorf("wait for an import, a master-key rotate or another server's start to end: %w", err)
	}
	// Released once the bootstrap is done, and by the defer on the paths
	// that return before: LockFirstStart does not promise that its unlock
	// may be called twice.
	unlockStore := sync.OnceFunc(unlock)
	defer unlockStore()
	master, generated, err := m.loadMasterKey(ctx)
	if err != nil {
		return err
	}
	if generated == nil {
		if err := syncUnsealedMasterKey(ctx, m.store, m.Config); err != nil {
			return err
		}
	}
	pepper, err := signer.LoadPepper(ctx, m.store, master, m.Now())
	if err != nil && generated != nil && errors.Is(err, signer.ErrWrongMasterKey) {
		// Another server sharing the store, started at the same moment
		// without a master key either, sealed it first under the key it
		// generated. Left in place, this one's key would fail every
		// start the same way.
		return fmt.Errorf("another server sharing this store sealed it at the same time under the master key it generated; every server on one store needs the same master key: give this one that server's (--master-key-file or KEYWARD_MASTER_KEY); as for the key generated here, %s",
			removeUnsealedKey(generatedMasterKeyPath(c), generated, ""))
	}
	if err != nil {
		return err
	}
	sealer, err := signer.NewSealer(master)
	if err != nil {
		return err
	}
	m.signer, err = signer.New(ctx, m.store, sealer, signer.Config{
		Policy: signingPolicy(c),
		Now:    m.Now, Logger: m.Logger,
	})
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	m.metrics = metrics.New(func() float64 { return m.signer.CurrentKeyAge().Seconds() })
	m.journal = groupcommit.New(m.store, groupcommit.Options{OnBatch: m.metrics.ObserveBatch})
	if c.IntrospectionAudit > 0 {
		m.introspections = tally.New(m.journal, tally.Options{Interval: c.IntrospectionAudit, Logger: m.Logger, Now: m.Now, OnWrite: m.metrics.ObserveSummaryWrite})
		m.metrics.HeldSummaries(func() float64 { return float64(m.introspections.Held()) })
	}
	m.metrics.AdminSignInExpiry(m.adminExpiryGauge)
	if c.DB != "" {
		m.metrics.ChangeNotifications(func() float64 {
			if m.listening.Load() {
				return 1
			}
			return 0
		})
	}
	build := readBuildInfo()
	m.metrics.BuildInfo(build.Version, build.revisionLabel(), build.GoVersion)

	if m.listener, err = net.Listen("tcp", c.Listen); err != nil {
		return listenError(c.flag("listen"), c.Listen, err)
	}
	if c.MetricsListen != "" {
		if m.metricsListener, err = net.Listen("tcp", c.MetricsListen); err != nil {
			return listenError(c.flag("metrics-listen"), c.MetricsListen, err)
		}
	}
	m.Issuer = c.issuer(m.listener.Addr().String())
	scfg := server.Config{
		Issuer: m.Issuer, AccountDomain: c.AccountDomain,
		DefaultTokenLifetime: c.DefaultTokenTTL, MaxTokenLifetime: c.MaxTokenTTL,
		MaxAssertionLifetime: c.MaxAssertionTTL, ClockSkew: c.ClockSkew,
		ClientCertHeader: c.ClientCertHeader, MutualTLS: c.TLSCert != "" || c.ClientCertHeader != "", CacheTTL: c.CacheTTL,
		Console: c.Console, DPoPNonces: c.DPoPNonce, ClientCAs: clientCAs,
		RequireAssertionJTI: c.RequireAssertionJTI, StrictClientAssertionAudience: c.StrictClientAssertionAudience,
		StrictTransportSecurity: "max-age=" + strconv.FormatInt(int64(c.HSTSMaxAge/time.Second), 10),
	}
	if c.CacheTTL == 0 {
		// --cache-ttl 0 keeps nothing; the server's 0 is its default.
		scfg.CacheTTL = -1
	}
	for _, p := range c.TrustedProxies {
		prefix, _ := trustedproxy.ParsePrefix(p) // checked by Validate
		scfg.TrustedProxies = append(scfg.TrustedProxies, prefix)
	}
	if c.ClientCertHeader != "" {
		warnBroadProxies(m.Logger, c.flag("trusted-proxies"), c.flag("client-cert-header"), scfg.TrustedProxies)
	}
	m.caCertificates = server.TakesCACertificates(scfg)
	m.Server = server.New(scfg, server.Deps{Store: m.store, Signer: m.signer, Journal: m.journal, Introspections: m.introspections, Pepper: pepper, Metrics: m.metrics, Logger: m.Logger, Now: m.Now})
	if c.MetricsListen != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.metrics.Handler())
		// Profiles, for the operators who can reach the metrics listener.
		mux.HandleFunc("/debug/pprof/", profileSeconds(pprof.Index))
		mux.HandleFunc("/debug/pprof/profile", profileSeconds(pprof.Profile))
		mux.HandleFunc("/debug/pprof/trace", profileSeconds(pprof.Trace))
		// Timeouts as the main listener's, so that an idle or slow
		// connection is not held for ever; but no WriteTimeout: a CPU
		// profile or trace answers after the seconds it was asked for,
		// which net/http/pprof refuses beyond a WriteTimeout.
		m.metricsHTTP = &http.Server{
			Handler:           noSniff(mux),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          httpErrorLog(m.Logger.Handler()),
		}
	}

	path := filepath.Join(c.DataDir, "admin-key.json")
	var saved []byte
	var written os.FileInfo // the file saved at path
	var aside string        // the file that was at path, moved aside for this one's
	var lost bool           // another server created the administrator account
	first, created, err := m.Server.Admin.Bootstrap(ctx, func(kf sakey.KeyFile) error {
		b, err := keyFileJSON(kf)
		if err != nil {
			return err
		}
		saved = b
		m.warnUnlocked("admin-key.json")
		aside, written, err = saveAdminKeyFile(path, b, m.Logger)
		return err
	})
	// Whose the key files are is asked of the store even when the start
	// was cancelled during the bootstrap (SIGTERM): with ctx, its answer
	// was the cancellation, and a key file stayed for want of a real one.
	lookup, cancelLookup := context.WithTimeout(context.WithoutCancel(ctx), keyFileLookupTimeout)
	defer cancelLookup()
	switch {
	case created && aside != "":
		// It holds no key of this store's administrator: left by a first
		// start that stopped before storing it, by a server that lost to
		// this one, or by another store (an SQLite database this
		// directory served before). One of this administrator account's
		// holds no stored key of it: this one's is its first.
		keepAside(path, aside, first.ID, m.Logger)
	case errors.Is(err, admin.ErrBootstrappedElsewhere):
		discardKeyFile(path, written, m.Logger)
		m.restoreWinnersKeyFile(lookup, path, aside)
		err, lost = nil, true
	case err != nil && aside == "" && written != nil:
		// This one's key file stays, its key stored or not (a next
		// start replaces one whose key was not): the store tells what
		// is known of it.
		if kept, known := m.keptStoredKey(lookup, path, saved, "", err); kept {
			err = fmt.Errorf("%w; %s", err, known)
		}
	case err != nil && aside != "":
		if kept, known := m.keptStoredKey(lookup, path, saved, aside, err); kept {
			err = fmt.Errorf("%w; %s", err, known)
			break
		}
		// This one's key was not stored: what was there may be the key of
		// another server starting at the same moment. A file at path
		// that is not this one's, or that cannot be read, may be another
		// server's: what was there is put back over it only if it is the
		// stored administrator's key, removed if it is no account's,
		// and otherwise left aside, logged.
		if left, rerr := removeWrittenFile(path, written); rerr == nil && left != writtenReplaced {
			restoreAside(path, aside, m.Logger)
		} else {
			m.restoreWinnersKeyFile(lookup, path, aside)
		}
	}
	unlockStore()
	if unlockStart != nil {
		// master.key and admin-key.json are written: the next server
		// starting on this data directory may go on.
		unlockStart()
		unlockStart = nil
	}
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := m.checkNotReplaced(ctx, master, pepper); err != nil {
		return err
	}
	if created {
		m.AdminKeyFile = path
		m.Logger.Warn("created the administrator service account; its key file is the only way in: keep it safe",
			"account", first.ID, "email", first.Email, "key_file", path)
	}
	m.warnIssuerChanged(ctx, sealer)
	m.warnAssertionAudienceAPIs(ctx)
	m.http = &http.Server{
		Handler:           m.Server,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          httpErrorLog(m.Logger.Handler()),
	}
	// Long polls (audit list --follow) would hold a graceful shutdown for
	// up to a minute: they answer at once when it begins.
	m.http.RegisterOnShutdown(m.Server.StopLongPolls)
	if m.certs != nil {
		// Client certificates are requested, not required, and checked per
		// account by the client authentication (RFC 8705 §2): CA-issued
		// ones against --tls-client-ca, self-signed ones against the
		// certificates registered for the account.
		m.http.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: m.certs.GetCertificate, ClientAuth: tls.RequestClientCert}
	}
	if !lost {
		// The winner of a first start may not have stored its key yet:
		// read now, no administrator could get tokens, a false alarm.
		// Run reads it a minute later.
		m.refreshAdminExpiry(ctx)
	}
	return nil
}

// checkNotReplaced refuses the start when the store's pepper or current
// signing key is no longer the one this start loaded before its
// bootstrap: a 'keyward import' of a release up to 2026-12-06 (which
// takes no lock against a server on PostgreSQL; this one's waits for
// LockFirstStart) committed meanwhile, over a store without accounts. This
// server would go on with the old pepper and signing keys in memory:
// the imported secrets failing on it, the secrets it made hashed with a
// pepper no longer stored, the tokens it signed failing elsewhere.
//
// A 'keyward master-key rotate' of a release up to 2026-12-06 committing
// meanwhile (it took no lock against a server on PostgreSQL; this one's
// holds LockFirstStart) leaves the pepper and signing keys but seals them
// under another master key: the refusal for a master key that no longer
// opens the store names both causes.
func (m *Main) checkNotReplaced(ctx context.Context, master, pepper []byte) error {
	const replaced = "an import replaced the store while this server started: start it again"
	now, err := signer.LoadPepper(ctx, m.store, master, m.Now())
	if errors.Is(err, signer.ErrWrongMasterKey) {
		return fmt.Errorf("an import or a 'keyward master-key rotate' changed the store while this server started: "+
			"start it again with the master key the store is now sealed under (after an import, that of the server the export came from; "+
			"after a rotate, the new one): %w", err)
	} else if err != nil {
		return err
	}
	if !bytes.Equal(now, pepper) {
		return errors.New(replaced + " (its client-secret pepper changed)")
	}
	keys, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	if id := m.signer.CurrentKeyID(); !slices.ContainsFunc(keys, func(k storage.SigningKey) bool { return k.ID == id }) {
		return errors.New(replaced + " (its signing keys changed)")
	}
	return nil
}

// warnIssuerChanged records --issuer in the store at the first start
// that gives one, and warns at every start whose issuer is not the one
// recorded: servers sharing a store with different issuers issue tokens
// that APIs verifying with the other issuer refuse, depending on which
// server answered, and a restart with another --issuer changed the iss of
// every new token. It only warns: a deliberate change goes on.
func (m *Main) warnIssuerChanged(ctx context.Context, sealer *signer.Sealer) {
	recorded, err := signer.RecordIssuer(ctx, m.store, sealer, m.Config.Issuer, m.Now())
	if err != nil {
		m.Logger.Warn("could not compare this server's issuer with the one recorded in the store", "err", err)
		return
	}
	if recorded == "" || recorded == m.Issuer {
		return
	}
	m.Logger.Warn("this server's issuer is not the one recorded in the store: the tokens it issues name another iss, which APIs verifying with the recorded issuer refuse, and it expects assertions and serves metadata for its own; give every server on this store the same --issuer. If the change is deliberate, start every server with the new issuer and delete the recorded one (DELETE FROM sealed_values WHERE name = 'issuer'), which the next start records anew; until then this warning repeats at every start",
		"issuer", oauth2.RedactURL(m.Issuer), "recorded_issuer", oauth2.RedactURL(recorded))
}

// keyFileLookupTimeout bounds the store lookups by which a first start
// whose bootstrap failed or lost tells whose the administrator key files
// in its data directory are; they are not cut short by the start's
// cancellation.
const keyFileLookupTimeout = 10 * time.Second

// maxProfileSeconds bounds the seconds a profile or trace on the metrics
// listener may be asked to run for.
const maxProfileSeconds = 60

// profileSeconds refuses (400) a request to h whose ?seconds= is more
// than maxProfileSeconds: net/http/pprof runs a CPU profile, a trace or a
// delta profile for as long as it is asked, and only one CPU profile or
// trace runs at a time, so a request for hours held them for hours.
// Other values are h's to read (it takes its default for one it cannot).
func profileSeconds(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if v := r.FormValue("seconds"); v != "" {
			if sec, err := strconv.ParseFloat(v, 64); err == nil && !(sec <= maxProfileSeconds) {
				http.Error(w, fmt.Sprintf("seconds is more than %d, the most a profile or trace runs for here", maxProfileSeconds), http.StatusBadRequest)
				return
			}
		}
		h(w, r)
	}
}

// noSniff gives every answer of next X-Content-Type-Options: nosniff, as
// the main listener's answers have (the server's securityHeaders), so that
// no browser takes the metrics or a profile for another kind of content.
func noSniff(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// warnBroadProxies warns of the ranges of --trusted-proxies (flag, as
// Config.flag names it) that hold more than 256 addresses, when
// --client-cert-header (header) is set: from any of their addresses the
// header alone names the client's certificate, and certificates are
// public, so whatever connects from there, not only a proxy, can
// authenticate as any client that uses tls_client_auth or
// self_signed_tls_client_auth. It warns, not refuses: the proxies of a
// cluster may have no fixed addresses, and a network policy can keep
// everything else in their range away from the listener.
func warnBroadProxies(log *slog.Logger, flag, header string, proxies []netip.Prefix) {
	var broad []string
	for _, p := range proxies {
		if p.Addr().BitLen()-p.Bits() > 8 {
			broad = append(broad, p.String())
		}
	}
	if len(broad) > 0 {
		log.Warn(flag+" has ranges of more than 256 addresses, and with "+header+" whatever connects from any of them, not only a proxy, can name any client's certificate (certificates are public) and authenticate as that client: list the proxies' own addresses, or let nothing else in those ranges reach this server",
			"ranges", strings.Join(broad, ","))
	}
}

// checkAccountDomain holds --account-domain to validate.AccountDomain
// once the store is open, before anything is made in it. A store without
// accounts is refused a domain that fails it: the first start would make
// the administrator, and every account after it, an email the admin API
// refuses elsewhere. A store that holds accounts was served with it by a
// release that took it, and changing it would not rename them (the
// administrator is found by its email), so that server starts, and the
// log says why the value is wrong at every start. flag names the setting,
// as Config.flag does, in the refusal and in the warning.
func checkAccountDomain(ctx context.Context, st interface {
	CountAccounts(context.Context) (int, error)
}, flag, domain string, log *slog.Logger) error {
	bad := validate.AccountDomain(domain)
	if bad == nil {
		return nil
	}
	n, err := st.CountAccounts(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return accountDomainError(flag, bad)
	}
	log.Warn(flag+" makes account emails the admin API refuses elsewhere (keyward import warns of them); the server starts, as the store holds accounts made with it, which changing it would not rename",
		"account_domain", domain, "problem", bad.Error(),
		"fix", "keep it while those accounts and their key files are in use; a new store needs a lower-case domain name such as iam.example.com")
	return nil
}

// accountDomainError is the refusal of an --account-domain that
// validate.AccountDomain refuses, bad, for a new store; flag names the
// setting, as Config.flag does.
func accountDomainError(flag string, bad error) error {
	return usageError{fmt.Errorf("invalid configuration:\n  %s: %v Account emails are NAME@PROJECT.<domain>: give a lower-case domain name such as iam.example.com", flag, bad)}
}

// tryListen says, as listenError does, why --listen (listen) or
// --metrics-listen (metrics, unless empty) cannot be listened on, if one
// cannot; it does not stay bound. The two are tried at once, so that two
// addresses each free on its own but not both (the same one, or :8443
// and 127.0.0.1:8443) are found here too, and named as such. flag names
// the settings, as Config.flag does.
func tryListen(listen, metrics string, flag func(name string) string) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return listenError(flag("listen"), listen, err)
	}
	defer l.Close()
	if metrics == "" {
		return nil
	}
	ml, err := net.Listen("tcp", metrics)
	if err != nil {
		if isAddrInUse(err) {
			l.Close()
			if alone, err := net.Listen("tcp", metrics); err == nil {
				alone.Close()
				return fmt.Errorf("%s %s: the address is %s's (%s) too: give the metrics listener an address of its own", flag("metrics-listen"), metrics, flag("listen"), listen)
			}
		}
		return listenError(flag("metrics-listen"), metrics, err)
	}
	return ml.Close()
}

// listenError words a failure to listen on addr, given by flag: an
// address in use, or not this machine's, says what to do; other causes
// are given without the "listen tcp ADDR" that flag and addr already say.
func listenError(flag, addr string, err error) error {
	switch {
	case isAddrInUse(err):
		return fmt.Errorf("%s %s: the address is in use: another process (another keyward serve?) listens there; stop it, or give another %s", flag, addr, flag)
	case isAddrNotAvail(err):
		return fmt.Errorf("%s %s: no interface of this machine has that address; give one it has, 127.0.0.1 or 0.0.0.0", flag, addr)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return fmt.Errorf("%s %s: %w", flag, addr, err)
}

// writeTimeout bounds the time to answer a request; long polls (audit
// list --follow) move their own deadline.
const writeTimeout = 30 * time.Second

// Run serves until ctx ends, then shuts down gracefully: it stops
// accepting, lets requests in flight finish (cutting off those left when
// the grace is over), stops the periodic jobs and flushes the secrets'
// last use. If the listener fails first, Run shuts down so, with a
// shorter grace, and returns the listener's error.
func (m *Main) Run(ctx context.Context) error {
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	refreshKeys := m.refreshKeys
	if refreshKeys == nil {
		refreshKeys = func(ctx context.Context) { m.signer.Run(ctx, time.Minute) }
	}
	keysRefreshed := make(chan struct{}) // closed when refreshKeys returns
	go func() {
		defer close(keysRefreshed)
		refreshKeys(bg)
	}()
	jobs := m.jobs
	if jobs == nil {
		jobs = []job{
			{10 * time.Minute, m.collectGarbage},
			{30 * time.Second, m.flushSecretUsage},
			{time.Minute, m.refreshAdminExpiry},
		}
	}
	stopJobs := startJobs(bg, jobs...)
	hup, stopHUP := notifyHUP()
	defer stopHUP()
	if m.certs != nil {
		interval := m.CertCheckInterval
		if interval <= 0 {
			interval = 10 * time.Second
		}
		go m.certs.watch(bg, interval, hup)
	} else {
		go ignoreHUP(bg, hup, m.Logger)
	}
	if m.Config.DB != "" {
		// Changes made by other replicas since Open loaded the signing
		// keys and began to cache, and before the LISTEN is in place, are
		// not announced to this one: once it is, apply them all.
		listening := make(chan struct{})
		go postgres.Watch(bg, m.Config.DB, m.Logger, m.applyChange, listening, m.listening.Store)
		go func() {
			select {
			case <-listening:
				m.applyChange(storage.ChangeAll)
			case <-bg.Done():
			}
		}()
	}

	if m.metricsHTTP != nil {
		url := "http://" + m.metricsListener.Addr().String() + "/metrics"
		go func() {
			// Serve ends early only when the listener fails: the server
			// goes on, its metrics no longer scraped, which must be seen.
			if err := m.metricsHTTP.Serve(m.metricsListener); !errors.Is(err, http.ErrServerClosed) {
				m.Logger.Error("metrics listener failed: metrics and pprof are no longer served", "url", url, "err", err)
			}
		}()
		defer m.metricsHTTP.Close()
		m.Logger.Info("serving metrics", "url", url)
	}
	build := readBuildInfo()
	m.Logger.Info("keyward is serving", "issuer", oauth2.RedactURL(m.Issuer), "listen", m.listener.Addr().String(), "store", storeName(m.Config),
		"version", build.Version, "revision", cmp.Or(build.revisionLabel(), "unknown"))
	m.http.Handler = m.handling.wrap(m.http.Handler)
	errc := make(chan error, 1)
	go func() {
		if m.Config.TLSCert != "" {
			errc <- m.http.ServeTLS(m.listener, "", "")
		} else {
			errc <- m.http.Serve(m.listener)
		}
	}()
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	grace := cmp.Or(m.grace, shutdownGrace)
	if serveErr != nil {
		// The listener failed: no connection comes any more, but the
		// requests in flight, and the next ones on the keep-alive
		// connections already accepted, would go on with the store that
		// Close closes next. This shutdown, which nobody asked for, gives
		// them shutdownCutoff, not the whole grace.
		grace = min(grace, shutdownCutoff)
	} else {
		m.Logger.Info("shutting down: finishing requests in flight")
	}
	start := time.Now()
	m.stopping = start
	sctx, scancel := context.WithTimeout(context.Background(), grace)
	defer scancel()
	err := m.http.Shutdown(sctx)
	// What is left of the grace, and at least shutdownCutoff: requests
	// that took all of it still need the periodic jobs stopped and the
	// last flush, and whatever they were doing to end first. Those they
	// cut off wait for no more than leaves the jobs stopFloor and the
	// flush lastFlushTime.
	rctx, rcancel := context.WithTimeout(context.Background(), max(time.Until(start.Add(grace)), shutdownCutoff))
	defer rcancel()
	switch {
	case err == nil:
	case !errors.Is(err, context.DeadlineExceeded):
		// Shutdown saw every connection end: a listener did not close.
		err = fmt.Errorf("shutdown: closing the listener: %w", err)
	default:
		cctx, ccancel := endingEarlier(rctx, lastFlushTime+stopFloor)
		n := m.cutOff(cctx, grace)
		ccancel()
		if n > 0 {
			err = fmt.Errorf("shutdown: %s in flight did not finish within %s: cut off", counted(n, "request"), grace)
		} else {
			err = fmt.Errorf("shutdown: connections still receiving a request after %s (none being handled): closed", grace)
		}
	}
	// The refresh of the signing keys is stopped with the jobs (cancel
	// ends both at once), before the last flush: after it, a flush that
	// took its whole time left it none.
	cancel()
	m.stopJobsAndFlush(rctx, stopJobs, func(ctx context.Context) { m.stopKeyRefresh(ctx, cancel, keysRefreshed) })
	if serveErr != nil {
		return serveErr
	}
	return err
}

// runAndClose runs m until ctx ends, then closes it. A clean stop then
// logs "keyward serve stopped" at info, with how long the shutdown took,
// so that a log tells a server that stopped from one that hangs; Run's
// failure is its caller's to report (logFailure's "keyward serve
// stopped" at error, in JSON).
func (m *Main) runAndClose(ctx context.Context) error {
	err := m.Run(ctx)
	m.Close() // logs its own failures; what it did not close, the exit does
	if err == nil {
		m.Logger.Info("keyward serve stopped", "took", time.Since(m.stopping).Round(time.Millisecond))
	}
	return err
}

// cutOff closes the connections of the requests in flight that a
// shutdown's grace did not see to the end, and waits until ctx ends for
// their handlers to return: http.Server.Close does not, and they would go
// on with the store that Close closes next. Closing their connections
// cancels their contexts, so they end soon. It returns how many requests
// it cut off: none when the connections left were still receiving their
// requests' headers (a client that stalled, a connection yet to send).
func (m *Main) cutOff(ctx context.Context, grace time.Duration) int {
	n, idle := m.handling.close()
	m.http.Close()
	if n > 0 {
		m.Logger.Warn("requests in flight did not finish within the grace period at shutdown: cut off", "requests", n, "grace", grace)
	} else {
		m.Logger.Warn("connections still receiving a request when the grace period ended at shutdown (none being handled): closed", "grace", grace)
	}
	select {
	case <-idle:
	case <-ctx.Done():
		m.Logger.Error("requests cut off at shutdown did not end in time: they may fail on the store closed under them")
	}
	return n
}

// inFlight counts the requests being handled. Once closed, it aborts
// later ones: their connections are closing.
type inFlight struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   chan struct{} // made by close; closed once n is 0
}

// wrap counts h's requests.
func (f *inFlight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			panic(http.ErrAbortHandler)
		}
		f.n++
		f.mu.Unlock()
		defer f.done()
		h.ServeHTTP(w, r)
	})
}

// done counts a request's end.
func (f *inFlight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n--; f.closed && f.n == 0 {
		close(f.idle)
	}
}

// close aborts the requests after it, and returns how many are being
// handled and a channel closed once none is.
func (f *inFlight) close() (int, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed, f.idle = true, make(chan struct{})
		if f.n == 0 {
			close(f.idle)
		}
	}
	return f.n, f.idle
}

// stopKeyRefresh ends Run's background work (cancel) and waits until ctx
// ends for the periodic refresh of the signing keys among it to return
// (refreshed is closed): a refresh in progress still uses the store that
// Close closes next.
func (m *Main) stopKeyRefresh(ctx context.Context, cancel context.CancelFunc, refreshed <-chan struct{}) {
	cancel()
	select {
	case <-refreshed:
	case <-ctx.Done():
		m.Logger.Warn("the refresh of the signing keys did not end in time at shutdown")
	}
}

// stopJobsAndFlush stops the periodic jobs, then the refresh of the
// signing keys (stopKeyRefresh, if not nil), waiting for them until
// lastFlushTime before ctx ends, and at least stopFloor (within ctx),
// then flushes the secrets' last use a last time, until ctx ends: a
// periodic flush still running would otherwise find its times taken by
// nothing, and if it failed put them back where no flush looks any more.
func (m *Main) stopJobsAndFlush(ctx context.Context, stopJobs func(context.Context) bool, stopKeyRefresh func(context.Context)) {
	jctx, cancel := endingEarlier(ctx, lastFlushTime)
	defer cancel()
	if d, ok := jctx.Deadline(); ok && time.Until(d) < stopFloor {
		// Requests cut off took the stops' share: jobs canceled with no
		// time left were said not to have ended even when they returned
		// a moment later.
		cancel()
		jctx, cancel = context.WithTimeout(ctx, stopFloor)
		defer cancel()
	}
	if !stopJobs(jctx) {
		m.Logger.Warn("periodic jobs did not end in time at shutdown: the last use of client secrets may not be recorded")
	}
	if stopKeyRefresh != nil {
		stopKeyRefresh(jctx)
	}
	m.flushLastSecretUsage(ctx)
}

// lastFlushTime is the part of a shutdown's bound kept for the last
// flush of the secrets' last use: requests cut off and jobs that take
// all the rest do not leave it a context already ended, which lost the
// last uses since the flush before.
const lastFlushTime = 2 * time.Second

// stopFloor is the least time the periodic jobs and the refresh of the
// signing keys are given to return once canceled at shutdown: requests
// cut off leave it them, before the last flush's lastFlushTime.
const stopFloor = 250 * time.Millisecond

// endingEarlier returns ctx, ending margin before it if it has a
// deadline: the stops' context keeps lastFlushTime for the last flush,
// and the wait for requests cut off stopFloor more for the stops.
func endingEarlier(ctx context.Context, margin time.Duration) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, d.Add(-margin))
	}
	return context.WithCancel(ctx)
}

// shutdownGrace is how long a shutdown waits for the requests in flight,
// then the periodic jobs and the last flush of the secrets' last use
// (shutdownCutoff more when the requests took all of it). Close then
// waits up to tally.CloseTimeout more for a reload of the signing keys,
// the introspection summaries, the journal's last writes and closing the
// store together
// (storeCloseTimeout more when the writes took all of it):
// deploy/keyward.service's TimeoutStopSec covers all of it.
const shutdownGrace = 25 * time.Second

// shutdownCutoff is the least time a shutdown gives, after the grace, to
// the requests it cut off to end, the periodic jobs, the refresh of the
// signing keys and the last flush of the secrets' last use, of which the
// flush keeps lastFlushTime, and the jobs and the refresh stopFloor.
const shutdownCutoff = 5 * time.Second

// job is one of Run's periodic jobs: run every interval, each run for at
// most interval.
type job struct {
	interval time.Duration
	run      func(context.Context)
}

// startJobs runs each job with every until stop is called. stop cancels
// them, which ends a run in progress, and waits for them to return until
// its ctx ends; it reports whether they did.
func startJobs(ctx context.Context, jobs ...job) (stop func(context.Context) bool) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() { every(ctx, j.interval, j.run) })
	}
	done := make(chan struct{}) // closed once the jobs have returned
	go func() { wg.Wait(); close(done) }()
	return func(wctx context.Context) bool {
		cancel()
		select {
		case <-done:
			return true
		case <-wctx.Done():
			// Both may be ready, and select picks either: jobs that
			// ended are not late.
			select {
			case <-done:
				return true
			default:
				return false
			}
		}
	}
}

// every runs fn every interval until ctx ends, each run for at most
// interval: a run stuck on a store that does not answer (a connection
// whose peer is gone without a word, a row another session keeps locked)
// would hold every later run, and whatever locks it took, for ever.
func every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, interval)
			fn(rctx)
			cancel()
		}
	}
}

// collectGarbage deletes used assertion IDs, revocations and opaque tokens
// once they have expired. A run that its deadline stops (a backlog larger
// than one run deletes) keeps what it deleted, which DeleteExpired commits
// in batches; the next run goes on from there.
func (m *Main) collectGarbage(ctx context.Context) {
	n, err := m.store.DeleteExpired(ctx, m.Now())
	switch {
	case err != nil && errors.Is(ctx.Err(), context.Canceled):
		m.Logger.Debug("deleting expired records stopped at shutdown", "deleted", n)
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		m.Logger.Warn("deleting expired assertion IDs, revocations and opaque tokens did not finish within its interval: the next run goes on", "deleted", n, "err", err)
	case err != nil:
		m.Logger.Warn("deleting expired assertion IDs, revocations and opaque tokens failed", "deleted", n, "err", err)
	case n > 0:
		m.Logger.Debug("deleted expired records", "count", n)
	}
}

// warnAssertionAudienceAPIs warns, at each start, of the APIs whose
// identifier is the issuer or its token endpoint URL, which the admin API
// now refuses: made before it did, or imported from a server with another
// issuer. Service accounts sign the JWTs they exchange at /token with that
// aud, so such an API that accepts self-signed JWTs could exchange them
// for its callers' tokens (verify.New refuses WithSelfSignedJWTs for that
// audience). They are left in place: their access tokens are safe, and
// deleting them would cut off their callers. It warns too, once, of the
// pairs of APIs whose identifiers differ only in the case of the scheme
// or host or in a trailing slash, stored before CreateAPI refused them.
func (m *Main) warnAssertionAudienceAPIs(ctx context.Context) {
	apis, err := m.store.ListAPIs(ctx)
	if err != nil {
		m.Logger.Warn("listing the APIs to check their identifiers failed", "err", err)
		return
	}
	for _, a := range apis {
		if oauth2.IsAssertionAudience(a.Identifier, m.Issuer) {
			m.Logger.Warn("an API's identifier is this server's issuer or token endpoint URL, which service accounts' JWTs for the token endpoint name as their audience: "+
				"the API must not accept self-signed JWTs, or it could exchange its callers' JWTs for their tokens; register it anew under its own URL and retire this one",
				"api", a.Name, "identifier", a.Identifier, "issuer", oauth2.RedactURL(m.Issuer))
		}
	}
	// Two APIs whose identifiers differ only in the case of the scheme or
	// host, or in one trailing slash (the admin API refuses the second
	// now): each accepts the other's self-signed JWTs (oauth2.NamesAPI),
	// which is to say they have the same oauth2.APIKey. Grouped by it,
	// not compared two by two: each API is paired with the later ones of
	// its group, in the order of apis.
	keys := make([]string, len(apis))
	same := make(map[string][]int, len(apis)) // indices in apis, by key
	for i, a := range apis {
		keys[i] = oauth2.APIKey(a.Identifier)
		same[keys[i]] = append(same[keys[i]], i)
	}
	var pairs []string
	for i, a := range apis {
		for _, j := range same[keys[i]] {
			if b := apis[j]; j > i && a.Identifier != b.Identifier {
				pairs = append(pairs, fmt.Sprintf("%s (%s) and %s (%s)", a.Name, a.Identifier, b.Name, b.Identifier))
			}
		}
	}
	if len(pairs) > 0 {
		m.Logger.Warn("APIs whose identifiers differ only in the case of the scheme or host, or in a trailing slash, name the same audience: each accepts the other's self-signed JWTs; delete one of each pair (an identifier cannot be changed: register it anew under its own URL, then delete the old one)",
			"apis", strings.Join(pairs, "; "))
	}
}

// adminExpiryWarning is how close to the time administrators can no longer
// get tokens refreshAdminExpiry starts to warn, once a day.
const adminExpiryWarning = 14 * 24 * time.Hour

// refreshAdminExpiry reads until when an administrator can still get
// tokens from this server, for the gauge, and warns when that is near or
// past: keys and secrets that expire on their own can leave nobody able to
// sign in, which the guards on changes cannot prevent, and a certificate
// binding is no way in to a server without --tls-client-ca.
func (m *Main) refreshAdminExpiry(ctx context.Context) {
	now := m.Now()
	until, ok, err := m.store.SignInExpiry(ctx, oauth2.AdminScope, m.caCertificates, now)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.Canceled):
		return // shutdown stopped it: nothing is wrong
	case err != nil:
		m.Logger.Warn("reading until when administrators can get tokens failed", "err", err)
		return
	}
	e := &m.adminExpiry
	e.Lock()
	defer e.Unlock()
	e.known, e.ok, e.until = true, ok, until
	if ok && (until.IsZero() || until.Sub(now) > adminExpiryWarning) {
		e.warned = time.Time{} // warn at once should it come near again
		return
	}
	if !e.warned.IsZero() && now.Sub(e.warned) < 24*time.Hour {
		return
	}
	e.warned = now
	const todo = "create a key without expiry for an administrator (keyward keys create ADMIN-ACCOUNT --out key.json), or give one a new key with keyward recover-admin"
	if !ok {
		lacks := "a usable key, secret or certificate binding"
		if !m.caCertificates {
			lacks = "a usable key or secret (a certificate binding is none: this server has no --tls-client-ca to verify CA-issued client certificates)"
		}
		m.Logger.Warn("no administrator can get tokens from this server: every enabled account holding "+oauth2.AdminScope+" lacks "+lacks+"; "+todo,
			"scope", oauth2.AdminScope)
		return
	}
	m.Logger.Warn("administrators can get tokens only until "+until.UTC().Format(time.DateOnly)+", when their last keys and secrets expire; "+todo,
		"scope", oauth2.AdminScope, "until", until.UTC().Format(time.RFC3339))
}

// adminExpiryGauge is the value of
// keyward_admin_signin_expiry_timestamp_seconds: NaN until known.
func (m *Main) adminExpiryGauge() float64 {
	e := &m.adminExpiry
	e.Lock()
	defer e.Unlock()
	switch {
	case !e.known:
		return math.NaN()
	case !e.ok:
		return 0
	case e.until.IsZero():
		return math.Inf(1)
	}
	return float64(e.until.UnixNano()) / 1e9
}

// applyChange applies a change another replica made: it drops what the
// cache holds about it, or reloads the signing keys. ChangeAll (and any
// payload it does not know, as one of a later release), which
// postgres.Watch also sends when it lost its connection and with it the
// changes made meanwhile, does both; it reloads the keys in the
// background (reloadKeys: one reload at a time), for at most
// keyReloadTimeout: the store may not be answering then, and Watch goes on
// reconnecting meanwhile.
func (m *Main) applyChange(payload string) {
	switch payload {
	case storage.ChangeSigningKeys:
		m.reloadKeys()
	case storage.ChangeRevocations:
		m.Server.Cache.InvalidateRevocations()
	default:
		if isAccountChange(payload) {
			m.Server.Cache.Invalidate(payload)
			return
		}
		// ChangeAll, or a payload of a later release's that this one
		// does not know, from a replica upgraded first: all is dropped.
		m.Server.Cache.Invalidate("")
		m.reloadKeys()
	}
}

// isAccountChange tells whether payload, a change notification's, names
// one account: its ID, all ASCII digits (storage.Account.ID), which no
// other payload is.
func isAccountChange(payload string) bool {
	return payload != "" && strings.Trim(payload, "0123456789") == ""
}

// keyReloadTimeout bounds applyChange's reload of the signing keys.
const keyReloadTimeout = 30 * time.Second

// keyReloads runs applyChange's reloads of the signing keys one at a
// time, in the background, so that a store that does not answer holds up
// neither the notifications after them nor the watcher's pings: another
// replica changed the keys (ChangeSigningKeys), or Watch lost its
// connection (ChangeAll). Watch sends ChangeAll when it loses its
// connection and again once it listens, and at every failed reconnection
// meanwhile, when a reload may wait keyReloadTimeout for a store that does
// not answer. A change during a reload asks for one more after it (the
// keys may have changed after it read them), however many arrive. Close
// cancels them, and waits for the one running to end before it closes
// the store.
type keyReloads struct {
	sync.Mutex
	running, again, stopped bool
	ctx                     context.Context
	cancel                  context.CancelFunc
	done                    chan struct{} // closed when the reloads running end
	// failures are the reloads failing: Watch asks for one at every
	// failed reconnection, every 5 s while the store is down.
	failures failurelog.Spell
}

// noteKeyReload logs the outcome err of a reload: its failure, at most
// once each failurelog.Every while they go on, and the first success
// after them.
func (m *Main) noteKeyReload(err error) {
	r := &m.keyReloads
	r.Lock()
	defer r.Unlock()
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	if err == nil {
		if d, ok := r.failures.Succeeded(now); ok {
			m.Logger.Info("signing keys reloaded again", "failed_for", d.Round(time.Second))
		}
		return
	}
	switch n := r.failures.Failed(now); {
	case n.First:
		m.Logger.Warn("reloading the signing keys after a change failed (while reloads fail, this is logged at most once a minute)", "err", err)
	case n.Again:
		m.Logger.Warn("reloading the signing keys still fails", "err", err,
			"failing_for", n.For.Round(time.Second), "failed_reloads", n.Failures)
	}
}

// reloadKeys reloads the signing keys in the background, for at most
// keyReloadTimeout, or has the reload running do it once more.
func (m *Main) reloadKeys() {
	r := &m.keyReloads
	r.Lock()
	defer r.Unlock()
	if r.stopped {
		return
	}
	if r.running {
		r.again = true
		return
	}
	if r.ctx == nil {
		r.ctx, r.cancel = context.WithCancel(context.Background())
	}
	r.running = true
	done := make(chan struct{})
	r.done = done
	go func() {
		defer close(done)
		for {
			ctx, cancel := context.WithTimeout(r.ctx, keyReloadTimeout)
			err := m.signer.Refresh(ctx)
			cancel()
			if r.ctx.Err() == nil {
				m.noteKeyReload(err)
			}
			r.Lock()
			if !r.again || r.stopped {
				r.running, r.again = false, false
				r.Unlock()
				return
			}
			r.again = false
			r.Unlock()
		}
	}()
}

// stopKeyReloads cancels the reload of the signing keys running, if any,
// and starts no other.
func (m *Main) stopKeyReloads() {
	r := &m.keyReloads
	r.Lock()
	defer r.Unlock()
	r.stopped = true
	if r.cancel != nil {
		r.cancel()
	}
}

// waitKeyReloads waits, until ctx ends, for the reload stopKeyReloads
// canceled to end: it may still be using the store.
func (m *Main) waitKeyReloads(ctx context.Context) {
	r := &m.keyReloads
	r.Lock()
	done := r.done
	r.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
		m.Logger.Warn("a reload of the signing keys did not end in time at shutdown")
	}
}

// flushSecretUsage records when client secrets were last used, in one
// write every interval rather than one per request.
func (m *Main) flushSecretUsage(ctx context.Context) {
	err := m.writeUsage(ctx)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.Canceled):
		m.Logger.Debug("recording the last use of client secrets stopped at shutdown: the flush at shutdown records it", "err", err)
	case err != nil:
		m.Logger.Warn("recording the last use of client secrets failed: the next flush tries again", "err", err)
	}
}

// writeUsage writes the secrets' last-use times collected since the last
// flush; a failed write keeps them for the next.
func (m *Main) writeUsage(ctx context.Context) error {
	if m.flushUsage != nil {
		return m.flushUsage(ctx)
	}
	return m.Server.Auth.FlushUsage(ctx, m.Server.Cache)
}

// flushLastSecretUsage is the flush at shutdown: none follows to try
// again, so its failure loses the last-use times collected since the
// flush before.
func (m *Main) flushLastSecretUsage(ctx context.Context) {
	if err := m.writeUsage(ctx); err != nil {
		m.Logger.Warn("recording the last use of client secrets failed at shutdown: the uses since the last flush are not recorded", "err", err)
	}
}

// Close releases everything Open acquired, flushing the journal first.
func (m *Main) Close() error {
	m.stopKeyReloads() // before the store closes under them
	// Closed again if Run served on it (Shutdown closed it): harmless. Not
	// served on (Open failed late, or Run never ran), it would stay bound.
	if m.listener != nil {
		m.listener.Close()
	}
	if m.metricsListener != nil {
		m.metricsListener.Close()
	}
	// The reload of the signing keys, the summaries and then the
	// journal's last writes share one bound: a store that does not answer
	// (a hung PostgreSQL, a SQLite file on a stalled NFS mount) must not
	// hold the shutdown until systemd kills it.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), tally.CloseTimeout)
	defer cancel()
	m.waitKeyReloads(ctx)          // canceled above; still using the store until it ends
	m.introspections.Shutdown(ctx) // into the journal, so first
	if m.journal != nil {
		if n := m.journal.Shutdown(ctx); n > 0 {
			m.Logger.Error("audit writes may not have been recorded at shutdown: the store did not answer in time", "writes", n, "took", time.Since(start).Round(time.Millisecond))
		}
	}
	var err error
	if m.store != nil {
		// Closing waits for the store too: PostgreSQL's driver gives each
		// connection 5 s to answer as it drops its prepared statements,
		// over a minute for a pool of a hung server. It gets what is left
		// of the bound, and at least storeCloseTimeout; past that the
		// store is left to the process's exit, which loses nothing: every
		// write answered was committed.
		closed := make(chan error, 1)
		go func() { closed <- m.store.Close() }()
		wait := max(time.Until(start.Add(tally.CloseTimeout)), storeCloseTimeout)
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case err = <-closed:
		case <-t.C:
			m.Logger.Error("the store did not close in time: shutting down without waiting for it", "took", time.Since(start).Round(time.Millisecond))
			// The data directory stays locked until the process exits: the
			// store may still be using its files.
			return errors.New("closing the store: it did not answer in time")
		}
	}
	if m.unlock != nil {
		m.unlock() // after the store is closed
	}
	return err
}

// storeCloseTimeout is the least time Close waits for the store to close,
// even when the journal took all of tally.CloseTimeout:
// deploy/keyward.service's TimeoutStopSec covers it too.
const storeCloseTimeout = 3 * time.Second

// Handler returns the server's HTTP handler (tests).
func (m *Main) Handler() http.Handler { return m.Server }

// URL returns the URL of this server's own listener, which differs from
// the issuer behind a load balancer.
func (m *Main) URL() string { return m.Config.baseURL(m.listener.Addr().String()) }

func storeName(c Config) string {
	if c.DB != "" {
		return "postgres " + redact.DSN(c.DB)
	}
	return "sqlite " + sqlitePath(c)
}

// openStore opens the configured store; log gets its warnings (a SQLite
// file others could read, whose mode it tightens). On failure the store is
// a nil interface, never a nil pointer inside one, so callers may test it.
func openStore(ctx context.Context, c Config, log *slog.Logger) (storage.Storage, error) {
	if err := checkDB(c.flag("db"), c.DB); err != nil {
		return nil, usageError{err}
	}
	if c.DB != "" {
		st, err := postgres.Open(ctx, c.DB, postgres.Options{NoMigrate: c.NoMigrate, MigrateNewOnly: c.migrateNewOnly, Logger: log})
		if err != nil {
			return nil, withMigrateHint(c, err)
		}
		return st, nil
	}
	if err := makeDataDir(c.DataDir); err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, sqlitePath(c), sqlite.Options{NoMigrate: c.NoMigrate, MigrateNewOnly: c.migrateNewOnly, Logger: log})
	if err != nil {
		return nil, withMigrateHint(c, err)
	}
	return st, nil
}

// makeDataDir creates the data directory dir, mode 0700, and the parents
// it lacks, as os.MkdirAll does, and syncs the directory each was created
// in: a name is durable only once its directory is synced (fsync(2)), and
// the files a first start or an import makes durable in dir (master.key,
// admin-key.json, the database) went with dir's name when a crash took
// it, after a store on PostgreSQL was sealed under that master.key, or
// after an import said it was done. If a parent cannot be synced, the
// directories it made, empty, are removed again, so that the next start
// makes, and syncs, them again instead of using them unsynced.
func makeDataDir(dir string) error {
	var made []string // the directories missing, dir first
	for d := filepath.Clean(dir); ; {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		made = append(made, d)
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the data directory: %w", err)
	}
	for i := len(made) - 1; i >= 0; i-- {
		if err := syncDir(filepath.Dir(made[i])); err != nil {
			for _, d := range made {
				os.Remove(d) // empty; one another process filled meanwhile stays
			}
			return fmt.Errorf("create the data directory %s: cannot make it durable (sync %s: %w); the directories made for it were removed again, those still empty", dir, filepath.Dir(made[i]), err)
		}
	}
	return nil
}

// withMigrateHint adds to a refusal of a schema that is not current the
// migrate command that brings this store up to date. It names the store:
// a bare 'keyward migrate' would migrate (or create) ./keyward-data
// whatever store the refused command was given. A --db from the
// environment or the --config file is named by that source.
func withMigrateHint(c Config, err error) error {
	if !errors.Is(err, sqlstore.ErrSchemaNotCurrent) {
		return err
	}
	if c.DB == "" {
		return fmt.Errorf("%w; run %s first", err, shellCommand("keyward", "migrate", "--data-dir", c.DataDir))
	}
	// A URL from the environment or the --config file is not spelt out,
	// its password as xxxxx for the operator to type on a command line
	// (where ps shows it): migrate reads it where this command did.
	switch from := c.from["db"]; {
	case from == envName("db"):
		return fmt.Errorf("%w; run keyward migrate first (it reads %s too)", err, from)
	case strings.HasPrefix(from, "db in "):
		return fmt.Errorf("%w; run %s first", err, shellCommand("keyward", "migrate", "--config", strings.TrimPrefix(from, "db in ")))
	}
	shown, note := redact.DSN(c.DB), ""
	if strings.Contains(shown, redact.Placeholder) && !strings.Contains(c.DB, redact.Placeholder) {
		note = " (with the password where the URL shows " + redact.Placeholder + ")"
	}
	return fmt.Errorf("%w; run %s first%s", err, shellCommand("keyward", "migrate", "--db", shown), note)
}

// openMaintenanceStore opens the store for a maintenance command (audit
// verify and prune, export, master-key rotate, recover-admin). It creates
// nothing and never migrates: a mistyped --data-dir is refused rather
// than given an empty database (a --db without Keyward's schema, by
// postgres.Open), and an older release may be serving from
// the same database, so a schema that is not current is refused with a
// request to run keyward migrate.
func openMaintenanceStore(ctx context.Context, c Config, log *slog.Logger) (storage.Storage, error) {
	if c.DB == "" {
		path := sqlitePath(c)
		fi, err := os.Stat(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("no Keyward database at %s: check --data-dir (or give --db for PostgreSQL)", path)
		case err != nil:
			return nil, fmt.Errorf("database %s: %w", path, err)
		case !fi.Mode().IsRegular():
			return nil, fmt.Errorf("no Keyward database at %s: it is not a file", path)
		}
	}
	c.NoMigrate = true
	return openStore(ctx, c, log)
}

// commandLogger is the logger of a command other than serve: its
// warnings, as text, on the command's standard error.
func commandLogger(cmd *cobra.Command) *slog.Logger {
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// sqlitePath is the SQLite database file in the data directory.
func sqlitePath(c Config) string { return filepath.Join(c.DataDir, "keyward.db") }

// loadMasterKey reads the master key from --master-key-file or
// KEYWARD_MASTER_KEY, or else from <data-dir>/master.key, creating it only
// when the store holds nothing sealed yet: a store with sealed values (an
// imported one, say) can only be opened with the key it was sealed with.
// generated is the file it created at generatedMasterKeyPath, if it did,
// as it was written.
func (m *Main) loadMasterKey(ctx context.Context) (key []byte, generated os.FileInfo, err error) {
	k, path, err := findMasterKey(m.Config)
	if err == nil && k != nil && path != "" {
		checkMasterKeyMode(path, m.Config.MasterKeyFile == "", m.Logger)
	}
	if err != nil || k != nil {
		if err == nil && path == generatedMasterKeyPath(m.Config) {
			m.Logger.Warn("using the master key stored next to the data; for production keep it apart (--master-key-file or KEYWARD_MASTER_KEY)", "path", path)
		}
		if err == nil && textMasterKey(k) {
			// Where the key is: path, as the other master-key lines
			// name its file, or the environment variable (path "").
			where := []any{"path", path}
			if path == "" {
				where = []any{"env", masterKeyEnv}
			}
			m.Logger.Warn("the master key is 32 printable characters, taken as 32 raw bytes: a passphrase, or 16 bytes in hex, holds far fewer than the 256 bits a master key should; move to a random one with keyward master-key rotate --new-master-key-file FILE (make FILE with openssl rand -hex 32)",
				where...)
		}
		return k, nil, err
	}
	if err := refuseSealedStore(ctx, m.store, path); err != nil {
		return nil, nil, err
	}
	m.warnUnlocked("master.key")
	k = make([]byte, signer.MasterKeySize)
	rand.Read(k)
	data := []byte(fmt.Sprintf("%x\n", k))
	// As a new file: another server sharing the data directory, started
	// at the same moment, may have generated its own there meanwhile and
	// be sealing the store under it. Renamed over it, that key would be
	// lost, and with it all the store holds sealed.
	err = writeTempThen(path, 0o600, writeBytes(data), recordWritten(&generated, publishNew))
	if _, ok := errors.AsType[*noLinkError](err); ok {
		// No way to refuse one there.
		logFirstTryLeft(err, path, m.Logger)
		err = writeTempThen(path, 0o600, writeBytes(data), recordWritten(&generated, renameFile))
	}
	// Written, but its temporary file, a second name of it with the
	// key, could not be removed: logged, not a failure.
	err = logTempLeft(err, path, m.Logger)
	if errors.Is(err, fs.ErrExist) {
		return nil, nil, sayInstead(fmt.Errorf("master key: %s was created meanwhile, by another server starting at the same moment, and was left as it is; nothing was sealed with the key generated here: start again, and this server will use that key", path), err)
	} else if err != nil {
		// Its temporary file, if left, is named with what became of the
		// file, not in the cause.
		cause, left := splitTempLeft(err)
		return nil, nil, fmt.Errorf("master key: %w; %s", cause, removeUnsealedKey(path, writtenBy(err), left))
	}
	masterKeyGenerated(ctx, m.store)
	m.Logger.Warn("generated a master key next to the data; back it up, and for production keep it apart (--master-key-file or KEYWARD_MASTER_KEY)",
		"path", path)
	if m.Config.DB != "" {
		m.Logger.Warn("with PostgreSQL every replica needs the same master key: give each one --master-key-file or KEYWARD_MASTER_KEY")
	}
	return k, generated, nil
}

// removeUnsealedKey removes the master key file path that a first start
// wrote, written (as removeWrittenFile takes it), but could not make
// durable (its directory was not synced), or with which it sealed
// nothing, and says what became of it. Nothing was sealed with that key
// yet; left in place, the next start would have read it and sealed the
// store under it without syncing the directory, so that a crash could
// take the only copy. Removed, the next start generates a new key and
// tries again. It is removed only if it is still the file written: on a
// data directory shared with another server, it may be that server's
// now. tempLeft is splitTempLeft's note of the write's temporary file,
// left with the key in it, or "".
func removeUnsealedKey(path string, written os.FileInfo, tempLeft string) string {
	var said string
	switch left, err := removeWrittenFile(path, written); {
	case err != nil:
		said = fmt.Sprintf("nothing was sealed with it, and %s could not be removed (%v): remove it before starting again", path, err)
	case left == writtenGone && tempLeft != "":
		said = "nothing was sealed with it, and no file was left at " + path
	case left == writtenGone:
		said = "nothing was sealed with it, and no file was left"
	case left == writtenReplaced:
		said = "nothing was sealed with it; " + path + " now holds another key, written by another server"
	default:
		said = "nothing was sealed with it, and " + path + " was removed again"
	}
	if tempLeft != "" {
		said += ", but " + tempLeft
	}
	return said
}

// writtenFile is what removeWrittenFile found at the path of a file a
// command wrote.
type writtenFile int

const (
	writtenRemoved  writtenFile = iota // it was the file written, and was removed
	writtenGone                        // there is no file
	writtenReplaced                    // it is another file, left in place
)

// refuseSealedStore reports an error when st already holds values sealed
// under a master key (the client-secret pepper, signing keys), as a store
// a server started on with its key (a replica's, or this one's before a
// restart), an imported or a restored one does: a master key generated
// now would open none of them. path is where the key would have been generated.
func refuseSealedStore(ctx context.Context, st signer.PepperStore, path string) error {
	if sealed, err := storeSealed(ctx, st); err != nil || !sealed {
		return err
	}
	return fmt.Errorf("this store was sealed with another master key (it holds signing keys or the client-secret pepper: a server started on it, or it was imported or restored), and none was given: "+
		"start with that key in --master-key-file FILE or KEYWARD_MASTER_KEY (the one every server on this store uses; for an import, the one the export was taken from); "+
		"%s was not created, since a new key would open nothing in it", path)
}

// storeSealed tells whether st holds values sealed under a master key
// (the client-secret pepper, signing keys).
func storeSealed(ctx context.Context, st signer.PepperStore) (bool, error) {
	if _, err := st.GetSealedValue(ctx, signer.PepperName); !errors.Is(err, storage.ErrNotFound) {
		if err != nil {
			return false, fmt.Errorf("master key: %w", err)
		}
		return true, nil
	}
	keys, err := st.ListSigningKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("master key: %w", err)
	}
	return len(keys) > 0, nil
}

// syncUnsealedMasterKey makes the file the master key of c was read from
// (--master-key-file, or a master.key put next to the data by hand)
// durable, with its directory, when st holds nothing sealed yet: this
// start is about to seal the store under that key, and the file is often
// just written (openssl rand -hex 32 > FILE, as the docs do) and in the
// page cache alone, so that a power failure after the commit left a store
// that no key on disk opens. A key of KEYWARD_MASTER_KEY has no file.
// A store sealed already gets nothing new sealed: no sync.
func syncUnsealedMasterKey(ctx context.Context, st signer.PepperStore, c Config) error {
	path := c.MasterKeyFile // findMasterKey's order
	if path == "" && os.Getenv(masterKeyEnv) != "" {
		return nil
	}
	if path == "" {
		path = generatedMasterKeyPath(c)
	}
	if sealed, err := storeSealed(ctx, st); err != nil || sealed {
		return err
	}
	if err := syncExistingFile(path); err != nil {
		return fmt.Errorf("master key %s: cannot make it durable before the store is sealed under it, nothing was sealed: %w", path, err)
	}
	return nil
}

// masterKeyGenerated is called once a first start has generated its
// master key, before it seals anything; tests seal the store meanwhile,
// as another server starting at the same moment would.
var masterKeyGenerated = func(context.Context, storage.Storage) {}

// generatedMasterKeyPath is where a master key is generated when none is
// given: next to the data.
func generatedMasterKeyPath(c Config) string { return filepath.Join(c.DataDir, "master.key") }

// masterKeyFileError is err, reading c.MasterKeyFile, with a hint when
// the file is missing, right for a store still to be made and for one
// that exists: the first needs a key made once, as docs/DEPLOYMENT.md's
// one node does; the second the key it was sealed with.
func masterKeyFileError(c Config, err error) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return fmt.Errorf("%w (%s): for a new store, make the key once before its first start: (umask 077; openssl rand -hex 32 > %s); a store that exists needs the key it was sealed with, which no new one replaces",
		err, c.flag("master-key-file"), shellArg(c.MasterKeyFile))
}

// findMasterKey reads the master key from --master-key-file, else
// KEYWARD_MASTER_KEY, else the generated file next to the data.
// c.MasterKeyFile is set only by a source above KEYWARD_MASTER_KEY or
// with it unset: applySources leaves it empty otherwise. It returns
// where it came from ("" for the environment), or a nil key and the path to
// generate one at when there is none.
func findMasterKey(c Config) (key []byte, source string, err error) {
	if f := c.MasterKeyFile; f != "" {
		b, err := readKeyFile(f)
		if err != nil {
			return nil, f, fmt.Errorf("master key: %w", err)
		}
		k, err := masterkey.Parse(b)
		if err != nil {
			return nil, f, fmt.Errorf("master key %s: %w", f, err)
		}
		return k, f, nil
	}
	if v := os.Getenv(masterKeyEnv); v != "" {
		k, err := masterkey.Parse([]byte(v))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", masterKeyEnv, err)
		}
		return k, "", nil
	}
	path := generatedMasterKeyPath(c)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, path, nil
	} else if err != nil {
		return nil, path, fmt.Errorf("master key: %w", err)
	}
	k, err := masterkey.Parse(b)
	if err != nil {
		return nil, path, fmt.Errorf("master key %s: %w", path, err)
	}
	return k, path, nil
}

// writeKeyFile writes a key file with mode 0600, atomically.
func writeKeyFile(path string, kf sakey.KeyFile) error {
	b, err := keyFileJSON(kf)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b, 0o600)
}

// keyFileJSON is the content of kf's key file.
func keyFileJSON(kf sakey.KeyFile) ([]byte, error) {
	b, err := json.MarshalIndent(kf, "", "  ")
	return append(b, '\n'), err
}

// saveAdminKeyFile writes the administrator key file of a first start,
// data, at path. A file there is left by a first start that stopped
// before storing its key, or is being written by another server sharing
// the data directory and starting at the same moment, whose key may be
// the one stored: it is not replaced but renamed aside, to the name
// returned, for the caller to deal with once it knows whether this
// one's key is stored. Replaced, the other server's key file was lost,
// and with it the only key of the administrator account. On a file
// system without hard links nor a rename that does not replace, a file
// at path is moved aside all the same, and this one renamed to path (a
// file made there in between is replaced). written is the file written, as
// removeWrittenFile takes it, once it is at path (with a *dirSyncError
// too).
func saveAdminKeyFile(path string, data []byte, log *slog.Logger) (aside string, written os.FileInfo, err error) {
	var f *os.File
	publish := publishNew
	for try := 0; ; try++ {
		err = logTempLeft(writeTempThen(path, 0o600, writeBytes(data), recordWritten(&written, publish)), path, log)
		if _, ok := errors.AsType[*noLinkError](err); ok {
			// No way to refuse a file there: what is there is moved aside
			// first, and this one renamed to path.
			publish = renameFile
		} else if !errors.Is(err, fs.ErrExist) {
			return "", written, err
		}
		logFirstTryLeft(err, path, log)
		if f, err = os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".prev.*"); err != nil {
			return "", nil, fmt.Errorf("cannot move %s aside: %w", path, err)
		}
		f.Close()
		err = renameFile(path, f.Name())
		if err == nil {
			break
		}
		os.Remove(f.Name())
		// Gone meanwhile: another server starting at the same moment
		// moved it aside, or removed its own on losing. Nothing is left
		// to move aside; try again as a new file.
		if !errors.Is(err, fs.ErrNotExist) || try == 2 {
			return "", nil, fmt.Errorf("cannot move %s aside: %w", path, err)
		}
	}
	if err := logTempLeft(writeTempThen(path, 0o600, writeBytes(data), recordWritten(&written, publish)), path, log); err != nil {
		if _, ok := errors.AsType[*dirSyncError](err); ok {
			return f.Name(), written, err // in place, for the caller to remove
		}
		restoreAside(path, f.Name(), log)
		return "", nil, err
	}
	return f.Name(), written, nil
}

// logTempLeft is err, of a write of path (writeTempThen's,
// publishNew's), as a failure (writtenTempLeft): a write that succeeded
// but left its temporary file, a second name of path with what path
// holds (a key), is no failure, and that file is logged, to be removed.
func logTempLeft(err error, path string, log *slog.Logger) error {
	err, left := writtenTempLeft(err)
	if left != "" {
		log.Warn(path+" was written, but "+left, "path", path)
	}
	return err
}

// logFirstTryLeft logs the note of the temporary file that err, the
// failure of a write of path that is tried again (a *noLinkError, or a
// file there), left with what was to be written in it (a key): the
// second try's outcome, all that is said of the write, does not name it.
func logFirstTryLeft(err error, path string, log *slog.Logger) {
	if _, left := splitTempLeft(err); left != "" {
		log.Warn("a first try at writing "+path+" without replacing a file there failed, and "+left, "path", path)
	}
}

// restoreAside puts the file saveAdminKeyFile moved aside back at path,
// unless there is a file at path again; it logs where it is then.
func restoreAside(path, aside string, log *slog.Logger) {
	if aside == "" {
		return
	}
	err, asideLeft := tempLeftCause(publishNew(aside, path))
	if asideLeft != nil {
		// Put back, but its name aside stays, a second name of it.
		log.Warn("the administrator key file that was in the data directory before this server started was put back, but the name it was moved aside to, a second name of it, could not be removed: remove it",
			"key_file", path, "aside", aside, "err", asideLeft)
	}
	if err != nil {
		log.Warn("the administrator key file that was in the data directory before this server started could not be put back: it may be the key of the server that created the administrator account; rename it to admin-key.json if so",
			"key_file", aside, "err", err)
		return
	}
	syncRestored(path, log)
}

// syncRestored syncs the directory of path, where a key file moved aside
// was just put back, and logs it if that fails.
func syncRestored(path string, log *slog.Logger) {
	if err := syncDir(filepath.Dir(path)); err != nil {
		log.Warn("the administrator key file that was in the data directory before this server started was put back, but its directory could not be synced: check it is there after a crash",
			"key_file", path, "err", err)
	}
}

// restoreWinnersKeyFile puts back at path the file aside that a first
// start which lost to another server (admin.ErrBootstrappedElsewhere)
// had moved aside, if it is the winner's key file: its client_id is the
// administrator account's, and its key is the account's (or the account
// has none yet, the winner being about to store it). It replaces a file
// at path that is not the winner's: with three servers or more on one
// data directory, another loser's file may be there by now, and left in
// place the winner's key file stayed hidden. An aside file that is not
// the winner's (one left by an interrupted first start, or another
// loser's, or another store's, or what is not a key file) goes to
// keepAside. When the store cannot tell, it is put back only where no
// file is, as restoreAside does.
func (m *Main) restoreWinnersKeyFile(ctx context.Context, path, aside string) {
	if aside == "" {
		return
	}
	b, err := os.ReadFile(aside)
	if err != nil {
		restoreAside(path, aside, m.Logger)
		return
	}
	winners, known := m.isAdminKeyFile(ctx, b)
	switch {
	case !known:
		restoreAside(path, aside, m.Logger)
	case !winners:
		keepAside(path, aside, "", m.Logger)
	default:
		if cur, err := os.ReadFile(path); err == nil {
			if w, ok := m.isAdminKeyFile(ctx, cur); ok && !w && renameFile(aside, path) == nil {
				syncRestored(path, m.Logger)
				return
			}
		}
		restoreAside(path, aside, m.Logger)
	}
}

// keepAside deals with aside, the file that saveAdminKeyFile moved aside
// from path, which holds no key of this store's administrator and is not
// put back. What is no key file holds no key, and is removed; so is a key
// file of the administrator account admin (unless empty), whose stored
// key the caller knows is another: left by a first start that stopped
// before storing its key, it opens nothing, and no other store has that
// account. Any other key file is never removed: it may be the only
// administrator key of another store (an SQLite database this data
// directory served before a first start on PostgreSQL, say). It is given
// a name beside path that says what it is, path.<UTC time>.old (or, if
// that fails, left where it is), its directory synced so that a crash
// does not take that name, and a warning names it.
func keepAside(path, aside, admin string, log *slog.Logger) {
	if aside == "" {
		return
	}
	if b, err := os.ReadFile(aside); err == nil {
		if id := keyFileOf(b); id == "" || id == admin {
			os.Remove(aside)
			return
		}
	}
	kept := path + "." + time.Now().UTC().Format("20060102T150405Z") + ".old"
	// asideLeft: why its name aside, a second name of it, could not be
	// removed.
	err, asideLeft := tempLeftCause(publishNew(aside, kept))
	if _, ok := errors.AsType[*noLinkError](err); ok {
		if _, serr := os.Lstat(kept); errors.Is(serr, fs.ErrNotExist) {
			err = renameFile(aside, kept) // no way to refuse one there
		}
	}
	if err != nil {
		kept = aside
	}
	log.Warn("the administrator key file that was in the data directory before this first start holds no key of this store's administrator, and was kept under another name: it may be the administrator key of another store (an SQLite database this directory served before, say); delete it if not",
		"key_file", kept)
	if asideLeft != nil {
		log.Warn("the administrator key file kept under another name is there, but the name it was moved aside to, a second name of it, could not be removed: remove it",
			"key_file", kept, "aside", aside, "err", asideLeft)
	}
	if err == nil {
		// The new name is durable only once the directory is synced.
		if err := syncDir(filepath.Dir(kept)); err != nil {
			log.Warn("the administrator key file kept under another name is there, but its directory could not be synced: check it is there after a crash, under either name",
				"key_file", kept, "aside", aside, "err", err)
		}
	}
}

// keyFileOf is the client_id of the key file b, "" if b is none: a key
// file is JSON with a client_id and a private_key_id.
func keyFileOf(b []byte) string {
	var kf sakey.KeyFile
	if json.Unmarshal(b, &kf) != nil || kf.PrivateKeyID == "" {
		return ""
	}
	return kf.ClientID
}

// keptStoredKey keeps the administrator key file path that a first start
// saved, holding data, whose bootstrap failed with failed, unless the
// store tells that its key was not stored: a failure reported once the
// key was stored (a commit that took place, its answer lost with the
// connection) leaves it the account's only key, and a next start makes
// no other; a key not found after a COMMIT whose answer was lost
// (storage.ErrCommitUnknown) may yet be stored by the database, and
// keeps its file too. aside, if not "", is the file that was at path,
// which the caller, told false, puts back or removes; kept, this one's
// file is there instead, and aside goes to keepAside (no key of this
// store's administrator) or, whether the key was stored not known, is
// left, logged. Kept, it also says what is known, for the error.
func (m *Main) keptStoredKey(ctx context.Context, path string, data []byte, aside string, failed error) (bool, string) {
	var kf sakey.KeyFile
	if json.Unmarshal(data, &kf) != nil {
		return false, ""
	}
	unknown := func(err error) (bool, string) {
		if aside != "" {
			m.Logger.Warn("the first start failed, and the store cannot tell whether the administrator key was stored: its key file stays, since it may be the only way in; the file that was there before is left aside: delete it if admin-key.json works",
				"key_file", path, "aside", aside, "err", err)
		} else {
			m.Logger.Warn("the first start failed, and the store cannot tell whether the administrator key was stored: its key file stays, since it may be the only way in",
				"key_file", path, "err", err)
		}
		return true, fmt.Sprintf("whether the administrator key was stored is not known: its key file %s stays, since it may be the only way in; start the server again: it keeps the file if the store has the key, and replaces it with a new key if not", path)
	}
	a, err := m.store.GetAccountByEmail(ctx, m.Server.Admin.Email(admin.AdminAccountName, admin.AdminProject))
	if errors.Is(err, storage.ErrNotFound) || err == nil && a.ID != kf.ClientID {
		return false, ""
	}
	var keys []storage.Key
	if err == nil {
		keys, err = m.store.ListKeys(ctx, a.ID)
	}
	if err != nil {
		return unknown(err)
	}
	if !slices.ContainsFunc(keys, func(k storage.Key) bool { return k.ID == kf.PrivateKeyID }) {
		if errors.Is(failed, storage.ErrCommitUnknown) {
			// The database may carry the COMMIT out after this read.
			return unknown(failed)
		}
		return false, ""
	}
	if aside != "" {
		keepAside(path, aside, a.ID, m.Logger) // this one's key is the account's first
	}
	m.Logger.Warn("the first start failed after the administrator key was stored: its key file stays, and works", "key_file", path)
	return true, fmt.Sprintf("the administrator key was stored all the same: its key file %s stays, and works", path)
}

// isAdminKeyFile tells whether the key file b holds a key of the stored
// administrator account, or would once the server that created it
// stores its key (what is not a key file holds no account's key);
// known is false when the store cannot tell.
func (m *Main) isAdminKeyFile(ctx context.Context, b []byte) (yes, known bool) {
	var kf sakey.KeyFile
	if json.Unmarshal(b, &kf) != nil || kf.ClientID == "" || kf.PrivateKeyID == "" {
		return false, true // no key file: no account's key
	}
	a, err := m.store.GetAccountByEmail(ctx, m.Server.Admin.Email(admin.AdminAccountName, admin.AdminProject))
	if err != nil {
		return false, false
	}
	if kf.ClientID != a.ID {
		return false, true
	}
	keys, err := m.store.ListKeys(ctx, a.ID)
	if err != nil {
		return false, false
	}
	return len(keys) == 0 || slices.ContainsFunc(keys, func(k storage.Key) bool { return k.ID == kf.PrivateKeyID }), true
}

// discardKeyFile removes the administrator key file path that a first
// start saved, written (as removeWrittenFile takes it), for an account
// another replica beat it to creating (admin.ErrBootstrappedElsewhere):
// no account has its key. It is removed only if it is still the file
// saved: on a data directory shared with the other replica, it may be
// that replica's file now.
func discardKeyFile(path string, written os.FileInfo, log *slog.Logger) {
	left, err := removeWrittenFile(path, written)
	outcome := "was removed"
	switch {
	case err != nil:
		outcome = "could not be removed (" + err.Error() + ")"
	case left == writtenGone:
		outcome = "is gone"
	case left == writtenReplaced:
		outcome = "is another file now (another server's), and was left"
	}
	log.Warn("another server sharing the store created the administrator account at the same time: its key file, in that server's data directory, is the one that works; this server's "+outcome,
		"key_file", path, "removed", err == nil && left == writtenRemoved)
}

// signingPolicy is the rotation policy of c's signing keys. A retired key
// stays published for the longest lifetime any token can have, not for
// --max-token-lifetime: a token issued before the flag was lowered, or by
// a replica with a longer one, is verified until it expires.
func signingPolicy(c Config) signer.Policy {
	return signer.Policy{Algorithm: c.SigningAlg, RotateEvery: c.SigningKeyRotation, RetainFor: admin.LongestTokenLifetime + c.ClockSkew + time.Hour}
}
