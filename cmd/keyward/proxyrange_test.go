package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testkeyward"
)

// TestBroadTrustedProxiesWarning: with --client-cert-header, every
// address of --trusted-proxies can name any client's certificate
// (certificates are public), so a start warns of the ranges of more than
// 256 addresses (a whole 10.0.0.0/8 given because the proxies are in it
// makes every host there a proxy), naming them and the settings as
// Config.flag does. A narrow list, or ranges without the header (where
// they only give X-Forwarded-For), start in silence.
func TestBroadTrustedProxiesWarning(t *testing.T) {
	for _, tt := range []struct {
		name    string
		header  string
		proxies []string
		from    map[string]string
		want    string // the ranges warned of; "" for no warning
	}{
		{"one broad range", "X-Client-Cert", []string{"10.0.0.0/8", "192.168.1.1"}, nil, "10.0.0.0/8"},
		{"every address", "X-Client-Cert", []string{"0.0.0.0/0", "::/0"}, nil, "0.0.0.0/0,::/0"},
		{"IPv6 subnet", "X-Client-Cert", []string{"2001:db8::/64"}, nil, "2001:db8::/64"},
		{"from the config file", "X-Client-Cert", []string{"172.16.0.0/12"}, map[string]string{"trusted-proxies": "trusted-proxies in /etc/keyward/keyward.yaml"}, "172.16.0.0/12"},
		{"narrow", "X-Client-Cert", []string{"10.0.1.0/24", "10.0.2.7", "2001:db8::1"}, nil, ""},
		{"broad without the header", "", []string{"10.0.0.0/8"}, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
			cfg.ClientCertHeader, cfg.TrustedProxies, cfg.from = tt.header, tt.proxies, tt.from
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			var logs testkeyward.SyncBuffer
			m := &Main{Config: cfg, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
			defer m.Close()
			if err := m.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			var got []string
			for line := range strings.Lines(logs.String()) {
				var rec struct{ Level, Msg, Ranges string }
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				if strings.Contains(rec.Msg, "can name any client's certificate") {
					flag := cfg.flag("trusted-proxies")
					if rec.Level != "WARN" || !strings.HasPrefix(rec.Msg, flag+" ") || !strings.Contains(rec.Msg, "--client-cert-header") {
						t.Errorf("want a warning naming %s and --client-cert-header: %s", flag, line)
					}
					got = append(got, rec.Ranges)
				}
			}
			if tt.want == "" && len(got) > 0 || tt.want != "" && (len(got) != 1 || got[0] != tt.want) {
				t.Fatalf("warned of %q; want %q", got, tt.want)
			}
		})
	}
}
