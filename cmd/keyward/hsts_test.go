package main

import (
	"crypto/tls"
	"net/http"
	"testing"
	"time"
)

// TestServeStrictTransportSecurity: a server that serves TLS itself says
// Strict-Transport-Security with every answer, for a year unless
// --hsts-max-age says otherwise (0 sends max-age=0, which makes browsers
// drop the policy); one on plain HTTP never does.
func TestServeStrictTransportSecurity(t *testing.T) {
	f := newTLSFixture(t)
	withTLS := func(m *Main) { m.Config.TLSCert, m.Config.TLSKey = f.serverCert, f.serverKey }
	tests := []struct {
		name string
		mod  func(*Main)
		want string
	}{
		{"TLS", withTLS, "max-age=31536000"},
		{"TLS, --hsts-max-age 1h", func(m *Main) { withTLS(m); m.Config.HSTSMaxAge = time.Hour }, "max-age=3600"},
		{"TLS, --hsts-max-age 0", func(m *Main) { withTLS(m); m.Config.HSTSMaxAge = 0 }, "max-age=0"},
		{"plain HTTP", func(*Main) {}, ""},
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.caPool}}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := startServer(t, tc.mod)
			for _, path := range []string{"/healthz", "/console/", "/token"} {
				resp, err := client.Get(m.URL() + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				got := resp.Header.Values("Strict-Transport-Security")
				if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
					t.Errorf("GET %s: Strict-Transport-Security %q, want %q", path, got, tc.want)
				}
			}
		})
	}
}
