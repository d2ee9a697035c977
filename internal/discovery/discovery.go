// Package discovery serves what clients and resource servers read to find
// and trust Keyward: the RFC 8414 metadata, the JWKS of the server's signing
// keys, and each service account's public keys in Google's two formats.
package discovery

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/internal/keyfile"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// Directory is what the account key documents read.
type Directory interface {
	GetAccountByEmail(ctx context.Context, email string) (storage.Account, error)
	ListKeys(ctx context.Context, accountID string) ([]storage.Key, error)
}

// KeySet publishes the server's signing keys.
type KeySet interface {
	JWKS() []byte
}

// Paths of the documents.
const (
	MetadataPath      = "/.well-known/oauth-authorization-server"
	OpenIDPath        = "/.well-known/openid-configuration"
	JWKSPath          = "/.well-known/jwks.json"
	AccountJWKPath    = "/service_accounts/v1/jwk/"
	AccountX509Path   = "/service_accounts/v1/metadata/x509/"
	AuthorizationPath = "/authorize"
)

// Metadata is the authorization server metadata (RFC 8414 §2).
type Metadata struct {
	Issuer                                 string   `json:"issuer"`
	AuthorizationEndpoint                  string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                          string   `json:"token_endpoint"`
	JWKSURI                                string   `json:"jwks_uri"`
	IntrospectionEndpoint                  string   `json:"introspection_endpoint,omitempty"`
	RevocationEndpoint                     string   `json:"revocation_endpoint,omitempty"`
	ScopesSupported                        []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                 []string `json:"response_types_supported"`
	GrantTypesSupported                    []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgsSupported  []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	ServiceDocumentation                   string   `json:"service_documentation,omitempty"`
	TLSClientCertificateBoundAccessTokens  bool     `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	AccessTokenSigningAlgValuesSupported   []string `json:"access_token_signing_alg_values_supported,omitempty"`
	IntrospectionEndpointAuthMethods       []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	// IntrospectionEndpointAuthSigningAlgs and RevocationEndpointAuthSigningAlgs
	// are the algorithms of the private_key_jwt assertions those endpoints
	// accept: RFC 8414 §2 has them present whenever their auth methods list
	// private_key_jwt, as token_endpoint_auth_signing_alg_values_supported is.
	IntrospectionEndpointAuthSigningAlgs []string `json:"introspection_endpoint_auth_signing_alg_values_supported,omitempty"`
	RevocationEndpointAuthSigningAlgs    []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`
	// DPoPSigningAlgValuesSupported are the algorithms of the DPoP proofs
	// the token endpoint accepts (RFC 9449 §5.1).
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
}

// Handler serves the discovery documents.
type Handler struct {
	metadata []byte
	// issuerPath is the issuer's path, escaped, "" for an issuer without
	// one: the metadata is also served at MetadataPath + issuerPath.
	issuerPath string
	keys       KeySet
	dir        Directory
	now        func() time.Time
	log        *slog.Logger
}

// NewHandler returns a Handler serving md. It logs the store failures
// behind the account key documents it cannot serve to log.
func NewHandler(md Metadata, keys KeySet, dir Directory, now func() time.Time, log *slog.Logger) *Handler {
	b, err := json.MarshalIndent(md, "", "  ")
	if err != nil {
		panic(err) // Metadata holds only strings and slices
	}
	h := &Handler{metadata: append(b, '\n'), keys: keys, dir: dir, now: now, log: log}
	if u, err := url.Parse(md.Issuer); err == nil {
		h.issuerPath = u.EscapedPath()
	}
	return h
}

// Register mounts the routes on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+MetadataPath, h.serveMetadata)
	if h.issuerPath != "" {
		// RFC 8414 §3: the well-known suffix inserted between the
		// issuer's host and its path. MetadataPath serves it too, for
		// the issuer's path with the suffix after it, which is where a
		// proxy that strips that path reaches it.
		mux.HandleFunc("GET "+MetadataPath+"/{path...}", h.serveMetadataAtPath)
	}
	mux.HandleFunc("GET "+OpenIDPath, h.serveMetadata)
	mux.HandleFunc("GET "+JWKSPath, h.serveJWKS)
	mux.HandleFunc("GET "+AccountJWKPath+"{email}", h.serveAccountJWK)
	mux.HandleFunc("GET "+AccountX509Path+"{email}", h.serveAccountX509)
	mux.HandleFunc(AuthorizationPath, func(w http.ResponseWriter, r *http.Request) {
		oauth2.WriteError(w, oauth2.Errorf(oauth2.ErrUnsupportedResponseType,
			"Keyward serves machine identities only: there is no interactive authorization endpoint. Use the token endpoint."))
	})
}

func writeDoc(w http.ResponseWriter, body []byte, maxAge string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age="+maxAge)
	w.Write(body)
}

func (h *Handler) serveMetadata(w http.ResponseWriter, r *http.Request) {
	writeDoc(w, h.metadata, "3600")
}

// serveMetadataAtPath serves the metadata at MetadataPath followed by the
// issuer's path, exactly: any other path under MetadataPath is not found.
// The path is compared as it came, escaped, not as a route pattern,
// which would read a "{" in it as a wildcard.
func (h *Handler) serveMetadataAtPath(w http.ResponseWriter, r *http.Request) {
	if r.URL.EscapedPath() != MetadataPath+h.issuerPath {
		oauth2.WriteError(w, oauth2.NotFound(r))
		return
	}
	h.serveMetadata(w, r)
}

// serveJWKS serves the signing keys. The next key is published before it
// signs, so a short cache lifetime is enough to never miss a kid.
func (h *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) {
	writeDoc(w, h.keys.JWKS(), "300")
}

// accountKeys returns the keys of an enabled account that can verify now.
func (h *Handler) accountKeys(w http.ResponseWriter, r *http.Request) ([]storage.Key, bool) {
	email := r.PathValue("email")
	var (
		a   storage.Account
		err = storage.ErrNotFound // no account has an email that is not text
	)
	if oauth2.IsText(email) {
		a, err = h.dir.GetAccountByEmail(r.Context(), email)
	}
	if errors.Is(err, storage.ErrNotFound) || (err == nil && a.Disabled) {
		oauth2.WriteError(w, &oauth2.Error{Code: "not_found", Description: "No enabled service account has this email.", Status: http.StatusNotFound})
		return nil, false
	}
	if err != nil {
		h.unavailable(w, r, err)
		return nil, false
	}
	keys, err := h.dir.ListKeys(r.Context(), a.ID)
	if err != nil {
		h.unavailable(w, r, err)
		return nil, false
	}
	now := h.now()
	// A new slice: keys may be a cache's own. An RSA key over
	// keyfile.MaxRSABits bits, stored before uploads were bounded, is left
	// out: the token endpoint never verifies with it, and no API should.
	usable := make([]storage.Key, 0, len(keys))
	for _, k := range keys {
		if !k.Disabled && !k.Expired(now) && !tooBig(k) {
			usable = append(usable, k)
		}
	}
	return usable, true
}

// unavailable answers a request for an account's keys that the store
// failed to give: 503 temporarily_unavailable with Retry-After, as the
// token endpoint and the admin API answer a store failure, the cause in
// the log alone. A caller that hung up is no failure of the server's.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	level, msg := slog.LevelError, "account keys not served: the store failed"
	if r.Context().Err() != nil {
		level, msg = slog.LevelInfo, "account keys not served: the client hung up before the answer"
	}
	h.log.Log(r.Context(), level, msg, "path", oauth2.ShownRequestPath(r, maxLoggedPath), "err", err)
	oauth2.WriteError(w, oauth2.StoreUnavailable(err))
}

// maxLoggedPath bounds the path unavailable logs, as the server's request
// log line bounds it: the email in it is the caller's, up to 64 KiB.
const maxLoggedPath = 1024

// tooBig reports whether k is an RSA key over keyfile.MaxRSABits bits.
func tooBig(k storage.Key) bool {
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	return err == nil && keyfile.CheckRSASize(pub) != nil
}

// serveAccountJWK serves an account's public keys as a JWK set, as Google
// does, for APIs that verify the account's self-signed JWTs.
func (h *Handler) serveAccountJWK(w http.ResponseWriter, r *http.Request) {
	keys, ok := h.accountKeys(w, r)
	if !ok {
		return
	}
	// Each key is marshalled alone, so that one no JWK can hold (an
	// X25519 or P-224 key, from an import) is left out, not the document.
	set := struct {
		Keys []json.RawMessage `json:"keys"`
	}{Keys: []json.RawMessage{}}
	for _, k := range keys {
		pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
		if err != nil {
			continue
		}
		jwk, err := json.Marshal(jose.JSONWebKey{Key: pub, KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"})
		if err != nil {
			continue
		}
		set.Keys = append(set.Keys, jwk)
	}
	b, _ := json.Marshal(set)
	writeDoc(w, b, "60")
}

// serveAccountX509 serves kid → PEM certificate, as Google does. Uploaded
// bare public keys have no certificate and appear only in the JWK set.
func (h *Handler) serveAccountX509(w http.ResponseWriter, r *http.Request) {
	keys, ok := h.accountKeys(w, r)
	if !ok {
		return
	}
	doc := map[string]string{}
	for _, k := range keys {
		if k.Certificate != nil {
			doc[k.ID] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.Certificate}))
		}
	}
	b, _ := json.Marshal(doc)
	writeDoc(w, b, "60")
}
