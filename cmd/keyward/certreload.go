package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// certReloader serves the TLS certificate from files and reloads it when
// they change or on SIGHUP, without dropping connections: handshakes after
// the reload get the new certificate, established connections go on.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.RWMutex
	cert    *tls.Certificate
	modTime time.Time
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// GetCertificate is the tls.Config hook.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert, nil
}

// reload loads the files; on error the previous certificate stays in use.
func (r *certReloader) reload() error {
	mod := r.lastModified()
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	r.mu.Lock()
	r.cert, r.modTime = &cert, mod
	r.mu.Unlock()
	return nil
}

func (r *certReloader) lastModified() time.Time {
	var latest time.Time
	for _, f := range []string{r.certFile, r.keyFile} {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(latest) {
			latest = fi.ModTime()
		}
	}
	return latest
}

// notifyHUP delivers SIGHUP to the returned channel until stop is called.
// The server always takes SIGHUP (systemd's reload sends it), so that it
// never dies of one, with or without a certificate to reload.
func notifyHUP() (hup <-chan os.Signal, stop func()) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGHUP)
	return c, func() { signal.Stop(c) }
}

// ignoreHUP logs each SIGHUP as having nothing to reload, until ctx ends.
func ignoreHUP(ctx context.Context, hup <-chan os.Signal, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP received: nothing to reload (no TLS certificate is configured)")
		}
	}
}

// watch reloads on each signal from hup and when the files' modification
// time changes, checking every interval, until ctx ends.
func (r *certReloader) watch(ctx context.Context, interval time.Duration, hup <-chan os.Signal) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var why string
		select {
		case <-ctx.Done():
			return
		case <-hup:
			why = "SIGHUP"
		case <-t.C:
			r.mu.RLock()
			changed := !r.lastModified().Equal(r.modTime)
			r.mu.RUnlock()
			if !changed {
				continue
			}
			why = "the files changed"
		}
		if err := r.reload(); err != nil {
			r.log.Error("reloading the TLS certificate failed; the previous one stays in use", "reason", why, "err", err)
			continue
		}
		r.log.Info("reloaded the TLS certificate", "reason", why, "cert", r.certFile)
	}
}
