package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	m := startServer(t, func(m *Main) { m.Config.MetricsListen = "127.0.0.1:0" })
	clientID, email := setupAccount(t, m, "scraped")
	var sec struct {
		Secret string `json:"client_secret"`
	}
	json.Unmarshal([]byte(runCLI(t, "secrets", "create", email, "-o", "json", "--credentials", m.AdminKeyFile)), &sec)
	for _, secret := range []string{sec.Secret, "kw_wrong"} {
		req, _ := http.NewRequest("POST", m.Issuer+"/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get("http://" + m.metricsListener.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`keyward_requests_total{auth_method="client_secret_basic",endpoint="token",error="",grant="client_credentials",outcome="success"} 1`,
		`keyward_requests_total{auth_method="client_secret_basic",endpoint="token",error="invalid_client",grant="client_credentials",outcome="failure"} 1`,
		`keyward_request_duration_seconds_count{endpoint="token"}`,
		// Bounds either side of the 10 ms target, for bench's server p99.
		`keyward_request_duration_seconds_bucket{endpoint="token",le="0.0075"}`,
		`keyward_request_duration_seconds_bucket{endpoint="token",le="0.015"}`,
		`keyward_audit_batch_size_count`,
		`keyward_store_commit_duration_seconds_count`,
		`keyward_signing_key_age_seconds`,
		`keyward_auth_throttled_total 0`,
		`keyward_audit_summary_writes_total{outcome="failure"} 0`,
		`keyward_audit_summaries_held`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, secret := range []string{clientID, sec.Secret, email, "kw_wrong"} {
		if strings.Contains(text, secret) {
			t.Errorf("metrics contain a caller's identifier or secret %q", secret)
		}
	}
}
