// Package server assembles Keyward's HTTP handlers from already-built
// dependencies: the store, the signer and the journal.
package server

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/assertion"
	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/console"
	"github.com/keyward/keyward/internal/deadline"
	"github.com/keyward/keyward/internal/discovery"
	"github.com/keyward/keyward/internal/dpop"
	"github.com/keyward/keyward/internal/introspect"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/revoke"
	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/cache"
	"github.com/keyward/keyward/internal/token"
	"github.com/keyward/keyward/internal/tokenstate"
)

// Config is the server's protocol configuration.
type Config struct {
	// Issuer is the public base URL, e.g. https://keyward.internal.
	Issuer               string
	AccountDomain        string
	DefaultTokenLifetime time.Duration
	MaxTokenLifetime     time.Duration
	MaxAssertionLifetime time.Duration
	ClockSkew            time.Duration
	// ClientCAs verifies CA-issued client certificates (tls_client_auth);
	// nil disables that method.
	ClientCAs *x509.CertPool
	// ClientCertHeader names the header a TLS-terminating proxy passes the
	// client certificate in; it is trusted only from TrustedProxies, and
	// from them replaces the connection's own (the proxy's) certificate.
	ClientCertHeader string
	// TrustedProxies are the proxies whose ClientCertHeader and
	// X-Forwarded-For are believed.
	TrustedProxies []netip.Prefix
	// MutualTLS says client certificates can reach the server: it listens
	// with TLS, or a trusted proxy forwards them.
	MutualTLS bool
	// CacheTTL bounds how long a cached account, key list or catalog is
	// used without hearing of changes; 0 means 2 seconds, and a negative
	// one keeps none.
	CacheTTL time.Duration
	// Console serves the web console at /console/.
	Console bool
	// DPoPNonces makes DPoP proofs at the token endpoint carry a nonce the
	// server provided (RFC 9449 §8). Every replica derives the same nonce
	// key from the pepper, so each accepts the others' nonces.
	DPoPNonces bool
	// RequireAssertionJTI refuses JWT-bearer assertions without a jti,
	// which could otherwise be replayed until they expire.
	RequireAssertionJTI bool
	// StrictClientAssertionAudience accepts only the issuer as the aud of
	// private_key_jwt client assertions, not the token endpoint URL too
	// (draft-ietf-oauth-rfc7523bis).
	StrictClientAssertionAudience bool
	// StrictTransportSecurity is the Strict-Transport-Security header
	// sent with every answer over TLS (RFC 6797 §7.1), such as
	// "max-age=31536000"; never with one over plain HTTP, where a browser
	// must ignore it (§7.2; a TLS-terminating proxy in front sends its
	// own). Empty sends none.
	StrictTransportSecurity string
}

// Deps are the built dependencies.
type Deps struct {
	Store   storage.Storage
	Signer  *signer.Signer
	Journal token.Journal
	// Introspections takes the audit events of introspections that find
	// their token active, to write them after the answer as summaries; nil
	// writes each before its answer.
	Introspections introspect.Summaries
	// Pepper keys the hashes of client secrets.
	Pepper []byte
	// Metrics records requests; nil records nothing.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Server is Keyward's HTTP handler.
type Server struct {
	handler http.Handler
	// Admin is the management service, for bootstrap and offline commands.
	Admin *admin.Service
	// Cache holds the token endpoint's lookups; Invalidate applies changes
	// made by other replicas.
	Cache *cache.Store
	// Auth authenticates clients; FlushUsage records when secrets were used.
	Auth *clientauth.Authenticator
	// admin serves the admin API; its long polls end on shutdown.
	admin *admin.Handler
}

// New assembles the server.
func New(cfg Config, d Deps) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	// What handlers log about a request carries its ID (logRequests).
	reqLog := logWithRequestIDs(d.Logger)
	var (
		observer      oauth2.Observer = oauth2.NopObserver{}
		adminObserver admin.Observer
		onThrottle    func()
		onUnreadable  func()
	)
	if d.Metrics != nil {
		observer, adminObserver, onUnreadable = d.Metrics, d.Metrics, d.Metrics.UnreadableCertificate
		onThrottle = func() { d.Metrics.Throttled("admin") }
	}
	// Reads of the token endpoint come from memory; changes made through
	// this server invalidate them at once.
	cached := cache.New(d.Store, cache.Options{TTL: cfg.CacheTTL, Now: d.Now})
	adminSvc := admin.NewService(cached, admin.Config{
		Issuer: cfg.Issuer, AccountDomain: cfg.AccountDomain,
		DefaultTokenLifetime: cfg.DefaultTokenLifetime, MaxTokenLifetime: cfg.MaxTokenLifetime, Pepper: d.Pepper, Now: d.Now,
		CACertificates: TakesCACertificates(cfg),
	})
	auth := clientauth.New(clientauth.Config{
		Issuer: cfg.Issuer, StrictAudience: cfg.StrictClientAssertionAudience,
		MaxAssertionLifetime: cfg.MaxAssertionLifetime, ClockSkew: cfg.ClockSkew, Pepper: d.Pepper,
		ClientCAs: cfg.ClientCAs, CertHeader: cfg.ClientCertHeader, TrustedProxies: cfg.TrustedProxies,
		Now: d.Now, Logger: reqLog, OnUnreadableCertificate: onUnreadable,
	}, cached)
	tcfg := token.Config{
		Issuer: cfg.Issuer, MaxAssertionLifetime: cfg.MaxAssertionLifetime,
		ClockSkew: cfg.ClockSkew, MaxTokenLifetime: cfg.MaxTokenLifetime, Observer: observer,
		RequireAssertionJTI: cfg.RequireAssertionJTI,
	}
	if cfg.DPoPNonces {
		tcfg.DPoPNonces = dpop.NewNonces(nonceKey(d.Pepper))
	}
	tok := token.NewHandler(tcfg, cached, d.Journal, d.Signer, auth, d.Now, reqLog)
	// The private_key_jwt assertions of every endpoint are checked alike
	// (clientauth, by assertion.Parse), so each endpoint lists the same
	// algorithms.
	assertionAlgs := assertion.AlgorithmNames()
	disc := discovery.NewHandler(discovery.Metadata{
		Issuer:                                 cfg.Issuer,
		TokenEndpoint:                          oauth2.TokenEndpoint(cfg.Issuer),
		JWKSURI:                                cfg.Issuer + discovery.JWKSPath,
		IntrospectionEndpoint:                  cfg.Issuer + "/introspect",
		RevocationEndpoint:                     cfg.Issuer + "/revoke",
		IntrospectionEndpointAuthMethods:       authMethods(cfg),
		RevocationEndpointAuthMethodsSupported: authMethods(cfg),
		IntrospectionEndpointAuthSigningAlgs:   assertionAlgs,
		RevocationEndpointAuthSigningAlgs:      assertionAlgs,
		ResponseTypesSupported:                 []string{},
		GrantTypesSupported:                    []string{oauth2.GrantClientCredentials, oauth2.GrantJWTBearer},
		TokenEndpointAuthMethodsSupported:      authMethods(cfg),
		TLSClientCertificateBoundAccessTokens:  cfg.MutualTLS,
		AccessTokenSigningAlgValuesSupported:   signer.Algorithms,
		TokenEndpointAuthSigningAlgsSupported:  assertionAlgs,
		DPoPSigningAlgValuesSupported:          dpop.AlgorithmNames(),
	}, d.Signer, cached, d.Now, reqLog)

	resolver := tokenstate.New(cached, d.Signer, cfg.Issuer, d.Now)
	mux := http.NewServeMux()
	clock := deadline.NewClock(RequestTimeout)
	mux.Handle("/token", withDeadline(clock, tok))
	mux.Handle("/introspect", withDeadline(clock, introspect.NewHandler(auth, resolver, cached, d.Journal, d.Introspections, d.Now, reqLog, observer)))
	mux.Handle("/revoke", withDeadline(clock, revoke.NewHandler(auth, resolver, cached, d.Journal, d.Now, reqLog, observer)))
	disc.Register(mux)
	adminHTTP := admin.NewHandler(adminSvc, resolver, auth, signingKeys{d.Signer, d.Store}, d.Journal, cfg.Issuer, reqLog, onThrottle, adminObserver)
	adminHTTP.Register(mux)
	if cfg.Console {
		console.New().Register(mux)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /readyz", &readiness{store: d.Store, now: d.Now, log: d.Logger})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if err := oauth2.MethodNotAllowed(mux, r, "/"); err != nil {
			oauth2.WriteError(w, err)
			return
		}
		oauth2.WriteError(w, oauth2.NotFound(r))
	})
	return &Server{handler: oauth2.TrustForwardedFor(cfg.TrustedProxies, logRequests(d.Logger, recoverPanics(reqLog, securityHeaders(cfg.StrictTransportSecurity, refuseDotSegments(mux))))), Admin: adminSvc, Cache: cached, Auth: auth, admin: adminHTTP}
}

// noSniff is the value of X-Content-Type-Options every response gets,
// shared so that setting it allocates nothing; its len == cap, so that an
// Add to a response's header appends to a copy.
var noSniff = []string{"nosniff"}

// securityHeaders gives every response X-Content-Type-Options: nosniff,
// so that no browser takes a plain text answer (/healthz, /readyz) or
// any other for a kind of content it is not. The JSON answers and the
// console set it too; this covers the rest. An answer over TLS also gets
// Strict-Transport-Security: sts, unless sts is empty.
func securityHeaders(sts string, next http.Handler) http.Handler {
	var stsValue []string // shared as noSniff is
	if sts != "" {
		stsValue = []string{sts}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Content-Type-Options"] = noSniff
		if stsValue != nil && r.TLS != nil {
			h["Strict-Transport-Security"] = stsValue
		}
		next.ServeHTTP(w, r)
	})
}

// StopLongPolls answers the long polls in progress (audit list --follow)
// at once, and later ones without waiting, so that a graceful shutdown is
// not held up by them. Register it with http.Server.RegisterOnShutdown.
func (s *Server) StopLongPolls() { s.admin.StopWaiting() }

// TakesCACertificates reports whether the configuration verifies
// CA-issued client certificates (tls_client_auth): it has ClientCAs, and
// certificates reach it, over TLS or from a proxy. Without, a certificate
// binding is no administrator's way in to this server (admin.Config).
func TakesCACertificates(cfg Config) bool { return cfg.MutualTLS && cfg.ClientCAs != nil }

// authMethods lists the client authentication methods the configuration
// supports (RFC 8414 token_endpoint_auth_methods_supported).
func authMethods(cfg Config) []string {
	m := []string{storage.AuthSecretBasic, storage.AuthSecretPost, storage.AuthPrivateKeyJWT}
	if cfg.MutualTLS {
		m = append(m, storage.AuthSelfSignedTLS)
		if TakesCACertificates(cfg) {
			m = append(m, storage.AuthTLS)
		}
	}
	return m
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

type signingKeys struct {
	*signer.Signer
	store storage.Storage
}

func (s signingKeys) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	return s.store.ListSigningKeys(ctx)
}

// refuseDotSegments answers 400 to a request whose path has a "." or ".."
// segment, as sent (an escaped one, %2E%2E, is a name like any other), or
// an empty one inside it ("//"), where net/http's ServeMux would answer a
// 307 to the path without them, which keeps the method: a client that
// follows it — curl -L -X DELETE, Go's http.Client — would act on another
// resource than it named (DELETE …/keys/.. deleting the service account).
// Browsers never send them.
func refuseDotSegments(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		if strings.Contains(p, "/.") || strings.Contains(p, "//") {
			segs := strings.Split(p, "/")
			for i, seg := range segs {
				if seg == "." || seg == ".." || seg == "" && i > 0 && i < len(segs)-1 {
					oauth2.WriteError(w, oauth2.Errorf(oauth2.ErrInvalidRequest, "The path has a segment that is empty, . or ..; Keyward does not resolve them. Name the resource itself (a name that is . or .. must be escaped, %%2E)."))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// RequestTimeout bounds a request to /token, /introspect or /revoke,
// which no client's deadline reaches: a store that does not answer (a
// connection whose peer is gone without a word) is given up, and the
// request answered 503 temporarily_unavailable, well within keyward
// serve's 30-second write timeout, past which no answer reaches the
// client. Each read the cache shares and each group commit have bounds
// of their own, but one after the other they could outlast it.
const RequestTimeout = 25 * time.Second

// withDeadline runs next with clock's bound (RequestTimeout) as its
// request's deadline: one shared with the requests that started about
// when it did, which costs a request no timer of its own unless it asks
// for its context's Done channel (see package deadline).
func withDeadline(clock *deadline.Clock, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := clock.New(r.Context())
		defer ctx.Close()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// recoverPanics turns a panic into a logged server_error instead of a
// dropped connection.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic serving request", "method", oauth2.Truncate(r.Method, 16), "path", oauth2.ShownRequestPath(r, maxLoggedPath), "panic", v, "stack", string(debug.Stack()))
				oauth2.WriteError(w, oauth2.Errorf(oauth2.ErrServerError, "The server could not complete the request."))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	// id is the request's ID, which the request's context points to
	// (withRequestID), and idHeader the X-Request-Id header's value: one
	// allocation for all three. A handler that sets the header again
	// replaces idHeader, and one that adds to it appends to a full slice,
	// a copy: neither changes id.
	id       string
	idHeader [1]string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap gives http.ResponseController the writer underneath, for
// deadlines and flushing.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// maxLoggedPath bounds the path a request's log line shows: longer than
// any route's, with the longest email and ID in it, but far short of the
// 64 KiB a request line may have, so that a client cannot make the
// server write lines that size (which log shippers split, Docker's at
// 16 KiB). Longer paths are cut, as the 404's description cuts them.
const maxLoggedPath = 1024

// logRequests logs one line per request with a request ID, never the
// request's body, query or headers (they may carry credentials), and its
// path as it was sent, escapes kept, as the 404 and the audit events name
// it, without a credential given in it (oauth2.ShownPath).
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			b := make([]byte, 8)
			rand.Read(b)
			id = hex.EncodeToString(b)
		}
		sw := &statusWriter{ResponseWriter: w, id: id, idHeader: [1]string{id}}
		w.Header()["X-Request-Id"] = sw.idHeader[:]
		next.ServeHTTP(sw, r.WithContext(withRequestID(r.Context(), &sw.id)))
		// A probe's /healthz, every few seconds, is logged at debug.
		level := slog.LevelInfo
		if r.URL.Path == "/healthz" {
			level = slog.LevelDebug
		}
		if !log.Enabled(r.Context(), level) {
			return
		}
		log.LogAttrs(r.Context(), level, "request",
			slog.String("id", id), slog.String("method", oauth2.Truncate(r.Method, 16)), slog.String("path", oauth2.ShownRequestPath(r, maxLoggedPath)),
			slog.Int("status", sw.status), slog.Duration("took", time.Since(start)), slog.String("source", oauth2.RemoteIP(r)))
	})
}

// validRequestID accepts a caller's request ID only if it is short and
// plain, so it cannot forge log lines or headers, and not shaped like a
// secret or opaque token (which fit in 64 plain bytes), which every line
// about the request would carry.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 || oauth2.IsCredential(id) {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// nonceKey is the key of the DPoP nonces, derived from the pepper (HKDF,
// RFC 5869) so that replicas share it without another secret to
// distribute.
func nonceKey(pepper []byte) []byte {
	k, err := hkdf.Key(sha256.New, pepper, nil, "keyward dpop nonce key", 32)
	if err != nil { // only for a length over 255 hashes
		panic(err)
	}
	return k
}
