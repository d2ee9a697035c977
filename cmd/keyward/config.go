package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/redact"
	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/trustedproxy"
)

// Config is everything 'keyward serve' is told. Validate checks it in one
// place and reports every problem at once.
type Config struct {
	Listen        string
	Issuer        string
	DataDir       string
	DB            string
	MasterKeyFile string
	TLSCert       string
	TLSKey        string
	TLSClientCA   string
	// ClientCertHeader and TrustedProxies: a TLS-terminating proxy's
	// forwarded client certificate, trusted only from those addresses.
	ClientCertHeader string
	TrustedProxies   []string
	InsecureHTTP     bool
	// HSTSMaxAge is the max-age of the Strict-Transport-Security header
	// sent over TLS (RFC 6797); 0 sends max-age=0.
	HSTSMaxAge time.Duration
	NoMigrate  bool
	// migrateNewOnly migrates a database without a schema and refuses
	// one with an older schema, a release still running may serve from
	// (keyward import: a new store only). Not a setting.
	migrateNewOnly bool

	SigningAlg         string
	SigningKeyRotation time.Duration
	AccountDomain      string
	DefaultTokenTTL    time.Duration
	MaxTokenTTL        time.Duration
	MaxAssertionTTL    time.Duration
	ClockSkew          time.Duration
	CacheTTL           time.Duration
	// IntrospectionAudit is how often introspections that find their token
	// active are written to the audit log as summaries; 0 writes each
	// before its answer.
	IntrospectionAudit time.Duration
	MetricsListen      string
	// Console serves the web console at /console/.
	Console bool
	// DPoPNonce makes DPoP proofs at the token endpoint carry a nonce the
	// server provided (RFC 9449 §8).
	DPoPNonce bool
	// RequireAssertionJTI refuses JWT-bearer assertions without a jti,
	// which Google's client libraries do not send.
	RequireAssertionJTI bool
	// StrictClientAssertionAudience accepts only the issuer as the aud of
	// private_key_jwt client assertions.
	StrictClientAssertionAudience bool
	LogFormat, LogLevel           string

	// from says where the settings not given on the command line came
	// from, by flag name (see settingSources), for errors. Not a setting.
	from map[string]string
}

// DefaultConfig returns the defaults of every setting.
func DefaultConfig() Config {
	return Config{
		Listen:             "127.0.0.1:8080",
		DataDir:            "keyward-data",
		SigningAlg:         "ES256",
		SigningKeyRotation: 30 * 24 * time.Hour,
		AccountDomain:      "iam.keyward.internal",
		DefaultTokenTTL:    time.Hour,
		MaxTokenTTL:        12 * time.Hour,
		MaxAssertionTTL:    time.Hour,
		ClockSkew:          time.Minute,
		CacheTTL:           2 * time.Second,
		IntrospectionAudit: time.Second,
		Console:            true,
		HSTSMaxAge:         365 * 24 * time.Hour,
		LogFormat:          "text",
		LogLevel:           "info",
	}
}

// addServeFlags binds the flags of 'keyward serve' to c.
func (c *Config) addServeFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the SQLite database, the generated master key and the admin key file")
	fs.StringVar(&c.DB, "db", c.DB, "PostgreSQL URL (postgres://…) to use instead of the embedded SQLite database")
	fs.BoolVar(&c.NoMigrate, "no-migrate", c.NoMigrate, "do not migrate the database schema on start; fail if it is not up to date")
	fs.StringVar(&c.Listen, "listen", c.Listen, "address to listen on; plain HTTP only on loopback unless --insecure-http")
	fs.StringVar(&c.Issuer, "issuer", c.Issuer, "public base URL clients use to reach the server (default: derived from --listen)")
	fs.StringVar(&c.MasterKeyFile, "master-key-file", c.MasterKeyFile, "file with the 32-byte master key that encrypts the signing keys and the secret pepper (raw, hex or base64); or set KEYWARD_MASTER_KEY to the key, which beats a master-key-file in --config but not this flag. Without either, <data-dir>/master.key, generated only for a store holding no sealed keys (an imported one needs the key of the server it came from)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "TLS certificate file (PEM)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "TLS private key file (PEM)")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", c.TLSClientCA, "PEM bundle of CAs that issue client certificates, directly or through intermediates the client sends (enables tls_client_auth)")
	fs.StringVar(&c.ClientCertHeader, "client-cert-header", c.ClientCertHeader, "header in which a TLS-terminating proxy forwards the client certificate: URL-encoded PEM (nginx), PEM with spaces for line breaks (Apache) or base64 DER (HAProxy); PEM may add the intermediates, at most 8 certificates in all. From --trusted-proxies it alone names the client's certificate (a proxy's own mTLS certificate is ignored); from other addresses the connection's own counts. E.g. X-Client-Cert")
	fs.StringSliceVar(&c.TrustedProxies, "trusted-proxies", c.TrustedProxies, "addresses or CIDR ranges of proxies whose X-Forwarded-For and --client-cert-header are trusted: with the header, whatever connects from them can name any client's certificate, so list the proxies' own addresses (with --client-cert-header a start warns of a range of more than 256 addresses). A start refuses an address with a zone (fe80::1%eth0) and an IPv4-mapped range shorter than /96 (write the IPv4 range); a proxy that connects from a link-local IPv6 address is never trusted")
	fs.BoolVar(&c.InsecureHTTP, "insecure-http", c.InsecureHTTP, "allow plain HTTP on a non-loopback address (e.g. behind a TLS-terminating proxy)")
	fs.DurationVar(&c.HSTSMaxAge, "hsts-max-age", c.HSTSMaxAge, "max-age of the Strict-Transport-Security header of every answer over TLS (--tls-cert; never over plain HTTP, where a proxy in front sends its own): browsers then reach this host name, on any port, over HTTPS only for that long; whole seconds, 0 sends max-age=0, which makes browsers drop what they kept")
	fs.StringVar(&c.SigningAlg, "signing-alg", c.SigningAlg, "access-token signing algorithm: "+strings.Join(signer.Algorithms, ", "))
	fs.DurationVar(&c.SigningKeyRotation, "signing-key-rotation", c.SigningKeyRotation, "rotate the token-signing key this often, at least 1h (0 disables scheduled rotation)")
	fs.StringVar(&c.AccountDomain, "account-domain", c.AccountDomain, "domain of service-account emails: NAME@PROJECT.<domain>; a lower-case domain name of at most 192 bytes, such as iam.example.com (a server starting a new store refuses another; one whose store holds accounts made with it warns)")
	fs.DurationVar(&c.DefaultTokenTTL, "default-token-lifetime", c.DefaultTokenTTL, "access-token lifetime of new service accounts, from 1m to --max-token-lifetime")
	fs.DurationVar(&c.MaxTokenTTL, "max-token-lifetime", c.MaxTokenTTL, "longest access-token lifetime any account may have, from 1m to 24h")
	fs.DurationVar(&c.MaxAssertionTTL, "max-assertion-lifetime", c.MaxAssertionTTL, "longest exp - iat of a JWT-bearer assertion, from 1m to 24h")
	fs.DurationVar(&c.ClockSkew, "clock-skew", c.ClockSkew, "tolerated clock difference for assertion iat/exp and DPoP proof iat, at most 10m (0: 10s for DPoP proofs)")
	fs.DurationVar(&c.CacheTTL, "cache-ttl", c.CacheTTL, "longest use of a cached account, key or API without news of a change, at most 1h; 0 reads the store at every lookup (replicas on PostgreSQL hear of changes at once; this bounds a lost notification)")
	fs.DurationVar(&c.IntrospectionAudit, "introspection-audit-interval", c.IntrospectionAudit, "write introspections that find their token active to the audit log this often, at most 10m, as one event per API, token, authentication method and source address with a count; 0 writes each one durably before its answer, as all others always are")
	fs.StringVar(&c.MetricsListen, "metrics-listen", c.MetricsListen, "address for Prometheus metrics at /metrics and Go profiles at /debug/pprof/, on a listener of its own (e.g. 127.0.0.1:9090; off when empty)")
	fs.BoolVar(&c.Console, "console", c.Console, "serve the web console at /console/ (static files only: it signs in and works through the admin API; --console=false on servers that workloads alone reach)")
	fs.BoolVar(&c.DPoPNonce, "dpop-nonce", c.DPoPNonce, "require DPoP proofs at the token endpoint to carry a nonce the server provided (RFC 9449 §8): a proof without a current one is answered use_dpop_nonce with a nonce in the DPoP-Nonce header, which clients put in a new proof; nonces last one to two minutes, and replicas accept each other's")
	fs.BoolVar(&c.RequireAssertionJTI, "require-assertion-jti", c.RequireAssertionJTI, "refuse JWT-bearer assertions without a jti (invalid_grant), so that each is single-use; by default one without a jti can be used again until it expires (67 minutes at most with the defaults: --max-assertion-lifetime, its 5 minutes' grace, and --clock-skew at each end). Google's client libraries send no jti: they are refused while this is on (Keyward's client package, CLI and console send one; private_key_jwt client assertions always need one)")
	fs.BoolVar(&c.StrictClientAssertionAudience, "strict-client-assertion-audience", c.StrictClientAssertionAudience, "accept only the issuer (--issuer), as the single aud value, in private_key_jwt client assertions at the token, introspection and revocation endpoints, as draft-ietf-oauth-rfc7523bis requires; by default the token endpoint URL (<issuer>/token), which older clients send, is accepted too (Keyward's client and verify packages, bench and console send the issuer). JWT-bearer grant assertions are not affected: their aud stays the key file's token_uri")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
}

// baseURL is the URL of a listener of this configuration at addr.
func (c Config) baseURL(addr string) string {
	if c.TLSCert != "" {
		return "https://" + addr
	}
	return "http://" + addr
}

// issuer is --issuer, or else the URL of the listener at addr.
func (c Config) issuer(addr string) string {
	if c.Issuer != "" {
		return c.Issuer
	}
	return c.baseURL(addr)
}

// notHostPort says why an address setting is not host:port. A bare port
// number, whose SplitHostPort error says "missing port", gets the two
// addresses it may have meant instead.
func notHostPort(addr string, err error) string {
	if addr != "" && strings.Trim(addr, "0123456789") == "" {
		return fmt.Sprintf("give 127.0.0.1:%s for loopback alone, or :%s for every interface", addr, addr)
	}
	return err.Error()
}

// Validate reports every problem of c at once. Each names the setting
// by where its value came from (see flag).
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		add("%s %q is not host:port: %s", c.flag("listen"), c.Listen, notHostPort(c.Listen, err))
	} else if !validPort(port) {
		add("%s %q: the port must be a number from 0 to 65535 or a service name such as https", c.flag("listen"), c.Listen)
	}
	tls := c.TLSCert != "" || c.TLSKey != ""
	if (c.TLSCert == "") != (c.TLSKey == "") {
		add("%s and %s must be given together", c.flag("tls-cert"), c.flag("tls-key"))
	}
	if err == nil && !tls && !c.InsecureHTTP && !oauth2.IsLoopbackHost(host) {
		add("%s %s is not a loopback address: give --tls-cert and --tls-key, or --insecure-http if a TLS proxy is in front", c.flag("listen"), c.Listen)
	}
	if c.Issuer != "" {
		// Shown redacted: a user:password in it is refused below.
		issuer := oauth2.RedactURL(c.Issuer)
		u, err := url.Parse(c.Issuer)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			add("%s %q must be an absolute http(s) URL", c.flag("issuer"), issuer)
		case u.User != nil:
			// It would be every token's iss, and verify.New refuses it.
			add("%s %q must have no user or password: it is the iss of every token", c.flag("issuer"), issuer)
		case u.RawQuery != "" || u.ForceQuery || strings.Contains(c.Issuer, "#") || strings.HasSuffix(u.Path, "/"):
			// Any "#" begins a fragment, an empty one ("…#") too, which
			// url.Parse keeps no trace of: token_uri would be "…#/token".
			add("%s %q must have no query, fragment or trailing slash (RFC 8414 §2)", c.flag("issuer"), issuer)
		case u.Scheme == "http" && !oauth2.IsLoopbackHost(u.Hostname()) && !c.InsecureHTTP:
			add("%s %q uses http on a non-loopback host: use https, or --insecure-http", c.flag("issuer"), issuer)
		}
	} else if err == nil && (host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified()) {
		add("%s %s listens on all interfaces: set --issuer to the URL clients use", c.flag("listen"), c.Listen)
	}
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil {
			add("%s %q is not host:port: %s", c.flag("metrics-listen"), c.MetricsListen, notHostPort(c.MetricsListen, err))
		} else if !validPort(port) {
			add("%s %q: the port must be a number from 0 to 65535 or a service name such as https", c.flag("metrics-listen"), c.MetricsListen)
		}
	}
	if c.TLSClientCA != "" && c.TLSCert == "" && c.ClientCertHeader == "" {
		add("%s needs client certificates: give --tls-cert/--tls-key, or --client-cert-header behind a proxy", c.flag("tls-client-ca"))
	}
	if c.ClientCertHeader != "" && !validHeaderName(c.ClientCertHeader) {
		add("%s %q is not a header name: letters, digits and !#$%%&'*+-.^_`|~ only, such as X-Client-Cert", c.flag("client-cert-header"), c.ClientCertHeader)
	}
	if c.ClientCertHeader != "" && len(c.TrustedProxies) == 0 {
		add("%s needs --trusted-proxies: the header is trusted only from the proxies' addresses", c.flag("client-cert-header"))
	}
	for _, p := range c.TrustedProxies {
		if _, err := trustedproxy.ParsePrefix(p); err != nil {
			add("%s: %q %v", c.flag("trusted-proxies"), p, err)
		}
	}
	if err := checkDB(c.flag("db"), c.DB); err != nil {
		add("%v", err)
	}
	if c.DataDir == "" {
		add("%s must not be empty", c.flag("data-dir"))
	}
	if !slices.Contains(signer.Algorithms, c.SigningAlg) {
		add("%s %q is not one of %s", c.flag("signing-alg"), c.SigningAlg, strings.Join(signer.Algorithms, ", "))
	}
	if c.SigningKeyRotation != 0 && c.SigningKeyRotation < time.Hour {
		add("%s %s is shorter than an hour", c.flag("signing-key-rotation"), c.SigningKeyRotation)
	}
	if c.DefaultTokenTTL < time.Minute || c.DefaultTokenTTL > c.MaxTokenTTL {
		add("%s %s must be at least 1m and at most %s (%s)", c.flag("default-token-lifetime"), c.DefaultTokenTTL, c.flag("max-token-lifetime"), c.MaxTokenTTL)
	}
	if c.MaxTokenTTL < time.Minute || c.MaxTokenTTL > admin.LongestTokenLifetime {
		add("%s %s must be between 1m and 24h", c.flag("max-token-lifetime"), c.MaxTokenTTL)
	}
	if c.MaxAssertionTTL < time.Minute || c.MaxAssertionTTL > 24*time.Hour {
		add("%s %s must be between 1m and 24h", c.flag("max-assertion-lifetime"), c.MaxAssertionTTL)
	}
	if c.CacheTTL < 0 || c.CacheTTL > time.Hour {
		add("%s %s must be between 0 and 1h", c.flag("cache-ttl"), c.CacheTTL)
	}
	if err := checkIntrospectionAudit(c.flag("introspection-audit-interval"), c.IntrospectionAudit); err != nil {
		add("%v", err)
	}
	if c.HSTSMaxAge < 0 || c.HSTSMaxAge%time.Second != 0 {
		add("%s %s must be whole seconds, 0 or more", c.flag("hsts-max-age"), c.HSTSMaxAge)
	}
	if c.ClockSkew < 0 || c.ClockSkew > 10*time.Minute {
		add("%s %s must be between 0 and 10m", c.flag("clock-skew"), c.ClockSkew)
	}
	if !strings.Contains(c.AccountDomain, ".") || strings.ContainsAny(c.AccountDomain, "@/ ") {
		add("%s %q must be a domain name such as iam.example.com", c.flag("account-domain"), c.AccountDomain)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		add("%s %q must be text or json", c.flag("log-format"), c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		add("%s: %v", c.flag("log-level"), err)
	}
	return errors.Join(errs...)
}

// flag names the setting name (a flag's name) in an error about its value
// by where the value came from: KEYWARD_<NAME> or "name in FILE" for one
// from the environment or the --config file (as settingSources found, in
// c.from), else --name, the command line's or the default's.
func (c Config) flag(name string) string {
	if from, ok := c.from[name]; ok {
		return from
	}
	return "--" + name
}

// checkDB checks --db (named by flag, as Config.flag names it): empty, or
// a PostgreSQL URL.
func checkDB(flag, db string) error {
	if db != "" && !strings.HasPrefix(db, "postgres://") && !strings.HasPrefix(db, "postgresql://") {
		return fmt.Errorf("%s %q must be a postgres:// URL (leave it empty for the embedded SQLite database)", flag, redact.DSN(db))
	}
	return nil
}

// checkIntrospectionAudit checks an --introspection-audit-interval (named
// by flag), for serve and for the server bench starts.
func checkIntrospectionAudit(flag string, d time.Duration) error {
	if d < 0 || d > 10*time.Minute {
		return fmt.Errorf("%s %s must be between 0 and 10m", flag, d)
	}
	return nil
}

// validPort says whether net.Listen takes port: a number from 0 to 65535
// (0 picks a free one), or a service name such as https.
func validPort(port string) bool {
	_, err := net.LookupPort("tcp", port)
	return err == nil
}

// textMasterKey reports whether k, a master key, is all printable ASCII:
// text taken as raw bytes by masterkey.Parse (a passphrase, or 16 bytes in
// hex), which holds far fewer than 256 bits. Random bytes are all
// printable once in about 10^13 keys.
func textMasterKey(k []byte) bool {
	for _, b := range k {
		if b < 0x20 || b > 0x7e {
			return false
		}
	}
	return len(k) > 0
}

// fileExists reports whether path exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// validHeaderName reports whether s is an HTTP field name (a token, RFC
// 9110 §5.1): no request could carry a header named otherwise.
func validHeaderName(s string) bool {
	for _, c := range []byte(s) {
		if !isTokenChar(c) {
			return false
		}
	}
	return s != ""
}
