package main

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestCertificateReload replaces the certificate files under a running
// server: new handshakes get the new certificate, an open connection keeps
// working.
func TestCertificateReload(t *testing.T) {
	f := newTLSFixture(t)
	m := startServer(t, func(m *Main) {
		m.Config.TLSCert, m.Config.TLSKey = f.serverCert, f.serverKey
		m.CertCheckInterval = 20 * time.Millisecond
	})
	served := func() string {
		conn, err := tls.Dial("tcp", m.listener.Addr().String(), &tls.Config{RootCAs: f.caPool})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	old := served()

	// An open keep-alive connection from before the reload.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.caPool}, MaxIdleConnsPerHost: 1}}
	get := func() {
		resp, err := client.Get(m.URL() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get()

	next := f.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1 renewed"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	kder, _ := x509.MarshalPKCS8PrivateKey(next.PrivateKey)
	later := time.Now().Add(time.Second) // a distinct modification time
	f.write(t, "server.key", "PRIVATE KEY", kder)
	f.write(t, "server.pem", "CERTIFICATE", next.Certificate[0])
	setMTime(t, later, f.serverCert, f.serverKey)

	deadline := time.Now().Add(5 * time.Second)
	for served() == old {
		if time.Now().After(deadline) {
			t.Fatal("the server still serves the old certificate")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if served() != next.Leaf.SerialNumber.String() {
		t.Fatal("the server serves neither certificate")
	}
	get() // the old connection still works

	// A broken file keeps the current certificate.
	f.write(t, "server.pem", "CERTIFICATE", []byte("garbage"))
	setMTime(t, later.Add(time.Second), f.serverCert)
	if err := m.certs.reload(); err == nil {
		t.Fatal("reload accepted a broken certificate")
	}
	if served() != next.Leaf.SerialNumber.String() {
		t.Fatal("a failed reload replaced the certificate")
	}
}

func setMTime(t *testing.T, at time.Time, files ...string) {
	t.Helper()
	for _, f := range files {
		if err := os.Chtimes(f, at, at); err != nil {
			t.Fatal(err)
		}
	}
}
