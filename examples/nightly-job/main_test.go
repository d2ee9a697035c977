package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRunTruncatedAnswer: an answer cut short is an error, not half the
// orders printed as if they were all.
func TestRunTruncatedAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
			return
		}
		w.Header().Set("Content-Length", "100")
		w.Write([]byte(`{"orders":["o-1",`)) // and the connection closes
	}))
	t.Cleanup(srv.Close)
	var out strings.Builder
	if err := Run(context.Background(), keyFile(t, srv.URL+"/token"), srv.URL, &out); err == nil {
		t.Fatalf("Run succeeded with a truncated answer, printing %q", out.String())
	}
}

// keyFile is a key file with a new EC P-256 key and tokenURI.
func keyFile(t *testing.T, tokenURI string) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	kf, err := json.Marshal(map[string]string{
		"type": "service_account", "private_key_id": "k1", "private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "job@shop.iam.test", "client_id": "123", "token_uri": tokenURI,
	})
	if err != nil {
		t.Fatal(err)
	}
	return kf
}

// TestRunHonoursContext: an API that never answers does not hold the job
// past its context.
func TestRunHonoursContext(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
			return
		}
		select { // the API: never answers
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // before Close, which waits for the handlers
	kf := keyFile(t, srv.URL+"/token")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, kf, srv.URL, io.Discard) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run succeeded against an API that never answered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still waits for the API past its context's deadline")
	}
}

// TestRunBoundsTheAnswer: an API that answers without end does not fill
// the job's memory, and an error's body is shown clipped and quoted.
func TestRunBoundsTheAnswer(t *testing.T) {
	for _, tt := range []struct {
		name    string
		status  int
		wantErr string
	}{
		{"ok", http.StatusOK, "larger than 1048576 bytes"},
		{"error", http.StatusInternalServerError, `the API answered 500 Internal Server Error: "xxxxxxxx`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/token" {
					w.Header().Set("Content-Type", "application/json")
					w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
					return
				}
				w.WriteHeader(tt.status)
				w.Write([]byte(strings.Repeat("x", 2<<20)))
			}))
			t.Cleanup(srv.Close)
			var out strings.Builder
			err := Run(context.Background(), keyFile(t, srv.URL+"/token"), srv.URL, &out)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if len(err.Error()) > 300 || out.Len() > 0 {
				t.Fatalf("error of %d bytes, %d bytes printed", len(err.Error()), out.Len())
			}
		})
	}
}
