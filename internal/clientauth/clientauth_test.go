package clientauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/assertion"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/cache"
	"github.com/keyward/keyward/internal/testkeys"
)

// The storage cache is the memory of accounts keyward serve gives
// authentication: a change to its CachedAccount must not silently turn the
// lookup-free throttle key off.
var _ AccountCache = (*cache.Store)(nil)

// fakeDir is an in-memory Directory.
type fakeDir struct {
	accounts []storage.Account
	keys     map[string][]storage.Key
	secrets  map[string][]storage.Secret
	err      error
	lookups  int // GetAccount and GetAccountByEmail calls
}

func (d *fakeDir) find(match func(storage.Account) bool) (storage.Account, error) {
	d.lookups++
	if d.err != nil {
		return storage.Account{}, d.err
	}
	for _, a := range d.accounts {
		if match(a) {
			return a, nil
		}
	}
	return storage.Account{}, storage.ErrNotFound
}

func (d *fakeDir) GetAccount(_ context.Context, id string) (storage.Account, error) {
	return d.find(func(a storage.Account) bool { return a.ID == id })
}

func (d *fakeDir) GetAccountByEmail(_ context.Context, email string) (storage.Account, error) {
	return d.find(func(a storage.Account) bool { return a.Email == email })
}

func (d *fakeDir) ListKeys(_ context.Context, id string) ([]storage.Key, error) {
	return d.keys[id], nil
}

func (d *fakeDir) ListSecrets(_ context.Context, id string) ([]storage.Secret, error) {
	return d.secrets[id], nil
}

var (
	now    = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	pepper = []byte("pepper-pepper-pepper-pepper-0123")
	issuer = "https://keyward.test"
)

const (
	goodSecret = "kw_good"
	oldSecret  = "kw_old"
)

// world is the fixture every test shares.
type world struct {
	dir       *fakeDir
	jobKey    *ecdsa.PrivateKey // registered for job
	otherKey  *ecdsa.PrivateKey // registered for other
	selfCert  tls.Certificate   // self-signed, registered for job
	caCert    *x509.Certificate
	caKey     *ecdsa.PrivateKey
	issued    tls.Certificate // issued by the CA to CN=job
	strayCert tls.Certificate // self-signed, registered nowhere
	// chained is issued to CN=job by inter, an intermediate CA the CA
	// issued; forged is issued to CN=job by rogue, a CA no one trusts.
	chained, forged tls.Certificate
	inter, rogue    *x509.Certificate
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{}
	w.jobKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	w.otherKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	w.selfCert = selfSigned(t, "self")
	w.strayCert = selfSigned(t, "stray")
	w.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &w.caKey.PublicKey, w.caKey)
	w.caCert, _ = x509.ParseCertificate(der)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "job", Organization: []string{"Example"}},
		DNSNames: []string{"job.example"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, _ = x509.CreateCertificate(rand.Reader, leafTmpl, w.caCert, &leafKey.PublicKey, w.caKey)
	w.issued = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: leafKey}
	w.issued.Leaf, _ = x509.ParseCertificate(der)
	w.inter, w.chained = issueVia(t, w.caCert, w.caKey, 3)
	w.rogue, w.forged = issueVia(t, nil, nil, 4)

	spki := func(k *ecdsa.PrivateKey) []byte { b, _ := x509.MarshalPKIXPublicKey(&k.PublicKey); return b }
	all := storage.AuthMethods
	w.dir = &fakeDir{
		accounts: []storage.Account{
			{ID: "111", Email: "job@p.iam.test", AuthMethods: all, TLS: storage.TLSBinding{SubjectDN: "CN=job,O=Example"}},
			{ID: "222", Email: "other@p.iam.test", AuthMethods: all},
			{ID: "333", Email: "postonly@p.iam.test", AuthMethods: []string{storage.AuthSecretPost}},
			{ID: "444", Email: "off@p.iam.test", AuthMethods: all, Disabled: true},
			{ID: "555", Email: "dns@p.iam.test", AuthMethods: []string{storage.AuthTLS}, TLS: storage.TLSBinding{SANDNS: "job.example"}},
		},
		keys: map[string][]storage.Key{
			"111": {
				{ID: "k1", AccountID: "111", Algorithm: "ES256", PublicKey: spki(w.jobKey)},
				{ID: "cert", AccountID: "111", Algorithm: "ES256", PublicKey: w.selfCert.Leaf.RawSubjectPublicKeyInfo, Certificate: w.selfCert.Leaf.Raw},
			},
			"222": {{ID: "k2", AccountID: "222", Algorithm: "ES256", PublicKey: spki(w.otherKey)}},
		},
		secrets: map[string][]storage.Secret{
			"111": {
				{ID: "s-old", AccountID: "111", Hash: HashSecret(pepper, oldSecret), Disabled: true},
				{ID: "s-good", AccountID: "111", Hash: HashSecret(pepper, goodSecret)},
				{ID: "s-expired", AccountID: "111", Hash: HashSecret(pepper, "kw_expired"), ExpiresAt: now.Add(-time.Second)},
			},
			"333": {{ID: "s3", AccountID: "333", Hash: HashSecret(pepper, goodSecret)}},
			"444": {{ID: "s4", AccountID: "444", Hash: HashSecret(pepper, goodSecret)}},
		},
	}
	return w
}

// issueVia makes an intermediate CA, issued by parent (or self-signed
// when parent is nil), and a certificate for CN=job,O=Example issued by it.
func issueVia(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, serial int64) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: fmt.Sprintf("Intermediate %d", serial)}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	if parent == nil {
		parent, parentKey = caTmpl, caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, parent, &caKey.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(serial * 10), Subject: pkix.Name{CommonName: "job", Organization: []string{"Example"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err = x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return ca, tls.Certificate{Certificate: [][]byte{der, ca.Raw}, PrivateKey: leafKey, Leaf: leaf}
}

func selfSigned(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: leaf}
}

func (w *world) authenticator() *Authenticator {
	pool := x509.NewCertPool()
	pool.AddCert(w.caCert)
	return New(Config{
		Issuer: issuer, MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute,
		Pepper: pepper, ClientCAs: pool, CertHeader: "X-Client-Cert",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Now: func() time.Time { return now },
	}, w.dir)
}

func assertionJWT(t *testing.T, key *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// unencodedJWT is assertionJWT with b64 false (RFC 7797): the signature
// covers the claims unencoded, which go-jose would verify.
func unencodedJWT(t *testing.T, key *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithBase64(false))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func claims(iss string, mod func(map[string]any)) map[string]any {
	c := map[string]any{"iss": iss, "sub": iss, "aud": issuer + "/token", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "j1"}
	if mod != nil {
		mod(c)
	}
	return c
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

type request struct {
	form   url.Values
	header http.Header
	cert   *x509.Certificate
	chain  []*x509.Certificate // sent after cert
	remote string
}

// build makes r a POST to path, with its form and the source address it
// comes from (192.0.2.1 unless r names one).
func (r request) build(path string) (*http.Request, oauth2.Form, string) {
	req := httptest.NewRequest("POST", path, nil)
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.cert != nil {
		req.TLS = &tls.ConnectionState{PeerCertificates: append([]*x509.Certificate{r.cert}, r.chain...)}
	}
	form := oauth2.Form{}
	for k, v := range r.form {
		form[k] = v[0]
	}
	src := r.remote
	if src == "" {
		src = "192.0.2.1"
	}
	req.RemoteAddr = net.JoinHostPort(src, "4711")
	return req, form, src
}

func (r request) run(a *Authenticator) (*Client, error) {
	req, form, src := r.build("/token")
	var att Attempt
	return a.Authenticate(context.Background(), req, form, src, &att)
}

func TestAuthenticate(t *testing.T) {
	w := newWorld(t)
	jwtForm := func(raw string) url.Values {
		return url.Values{"client_assertion_type": {oauth2.ClientAssertionJWT}, "client_assertion": {raw}}
	}
	lineBreak := func(raw string) string { return raw[:len(raw)-10] + "\n" + raw[len(raw)-10:] }
	forwarded := url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.issued.Leaf.Raw})))
	forward := func(certs ...*x509.Certificate) string {
		var b []byte
		for _, c := range certs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return url.QueryEscape(string(b))
	}
	// twin has the subject of w.inter, but is a CA no one trusts; strays
	// are seven more untrusted CAs, each of its own subject.
	twin, _ := issueVia(t, nil, nil, 3)
	var strays []*x509.Certificate
	for i := range 7 {
		ca, _ := issueVia(t, nil, nil, int64(20+i))
		strays = append(strays, ca)
	}
	tests := []struct {
		name       string
		req        request
		wantID     string // authenticated account; "" means no client
		wantMethod string
		wantCode   string // error code, if an error is expected
		wantStatus int
		wantDesc   string // part of the error description
		wantCnf    bool
		// unreadableCert: refused for a forwarded certificate that does
		// not parse, which alone says more than "Client authentication
		// failed." (it says nothing about the account).
		unreadableCert bool
	}{
		{name: "no credentials", req: request{}},
		{name: "basic numeric id", req: request{header: http.Header{"Authorization": {basic("111", goodSecret)}}}, wantID: "111", wantMethod: storage.AuthSecretBasic},
		{name: "basic email, percent-encoded", req: request{header: http.Header{"Authorization": {basic("job@p.iam.test", goodSecret)}}}, wantID: "111", wantMethod: storage.AuthSecretBasic},
		{name: "basic email, raw", req: request{header: http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("job@p.iam.test:"+goodSecret))}}}, wantID: "111", wantMethod: storage.AuthSecretBasic},
		{name: "post", req: request{form: url.Values{"client_id": {"111"}, "client_secret": {goodSecret}}}, wantID: "111", wantMethod: storage.AuthSecretPost},
		{name: "post only account", req: request{form: url.Values{"client_id": {"333"}, "client_secret": {goodSecret}}}, wantID: "333", wantMethod: storage.AuthSecretPost},
		{name: "method not allowed", req: request{header: http.Header{"Authorization": {basic("333", goodSecret)}}}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "wrong secret", req: request{header: http.Header{"Authorization": {basic("111", "kw_wrong")}}}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "unknown client", req: request{header: http.Header{"Authorization": {basic("999", goodSecret)}}}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "disabled secret", req: request{form: url.Values{"client_id": {"111"}, "client_secret": {oldSecret}}}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "expired secret", req: request{form: url.Values{"client_id": {"111"}, "client_secret": {"kw_expired"}}}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "disabled account, right secret", req: request{form: url.Values{"client_id": {"444"}, "client_secret": {goodSecret}}}, wantCode: oauth2.ErrDisabledClient, wantStatus: 400},
		// RFC 6749 §5.2: a malformed header is a malformed request.
		{name: "basic not base64", req: request{header: http.Header{"Authorization": {"Basic !!!"}}}, wantCode: oauth2.ErrInvalidRequest, wantStatus: 400, wantDesc: "not base64"},
		{name: "basic without colon", req: request{header: http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("111"))}}}, wantCode: oauth2.ErrInvalidRequest, wantStatus: 400, wantDesc: "no colon"},
		{name: "basic empty", req: request{header: http.Header{"Authorization": {"Basic "}}}, wantCode: oauth2.ErrInvalidRequest, wantStatus: 400, wantDesc: "malformed"},
		{name: "basic with NUL", req: request{header: http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("111:a\x00b"))}}}, wantCode: oauth2.ErrInvalidRequest, wantStatus: 400, wantDesc: "NUL"},
		{name: "two Authorization headers", req: request{header: http.Header{"Authorization": {basic("111", goodSecret), basic("222", "kw_x")}}}, wantCode: oauth2.ErrInvalidRequest, wantStatus: 400},
		{name: "two Authorization headers, both right", req: request{header: http.Header{"Authorization": {basic("111", goodSecret), basic("111", goodSecret)}}}, wantCode: oauth2.ErrInvalidRequest, wantStatus: 400},
		{name: "bearer scheme", req: request{header: http.Header{"Authorization": {"Bearer x"}}}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "two methods", req: request{header: http.Header{"Authorization": {basic("111", goodSecret)}}, form: url.Values{"client_secret": {goodSecret}}}, wantCode: oauth2.ErrInvalidRequest, wantStatus: 400},
		{name: "secret and assertion", req: request{form: url.Values{"client_id": {"111"}, "client_secret": {goodSecret}, "client_assertion_type": {oauth2.ClientAssertionJWT}, "client_assertion": {"x"}}}, wantCode: oauth2.ErrInvalidRequest, wantStatus: 400},
		{name: "client_id disagrees with basic", req: request{header: http.Header{"Authorization": {basic("111", goodSecret)}}, form: url.Values{"client_id": {"222"}}}, wantCode: oauth2.ErrInvalidRequest, wantStatus: 400},
		{name: "client_id disagrees with basic by email", req: request{header: http.Header{"Authorization": {basic("111", goodSecret)}}, form: url.Values{"client_id": {"other@p.iam.test"}}}, wantCode: oauth2.ErrInvalidRequest, wantStatus: 400},
		{name: "client_id disagrees with a wrong basic", req: request{header: http.Header{"Authorization": {basic("111", "kw_wrong")}}, form: url.Values{"client_id": {"222"}}}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "client_id equals basic", req: request{header: http.Header{"Authorization": {basic("111", goodSecret)}}, form: url.Values{"client_id": {"111"}}}, wantID: "111", wantMethod: storage.AuthSecretBasic},
		{name: "client_id email, basic numeric id", req: request{header: http.Header{"Authorization": {basic("111", goodSecret)}}, form: url.Values{"client_id": {"job@p.iam.test"}}}, wantID: "111", wantMethod: storage.AuthSecretBasic},
		{name: "client_id numeric id, basic email", req: request{header: http.Header{"Authorization": {basic("job@p.iam.test", goodSecret)}}, form: url.Values{"client_id": {"111"}}}, wantID: "111", wantMethod: storage.AuthSecretBasic},
		{name: "client_id alone", req: request{form: url.Values{"client_id": {"111"}}}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "private_key_jwt", req: request{form: jwtForm(assertionJWT(t, w.jobKey, claims("111", nil)))}, wantID: "111", wantMethod: storage.AuthPrivateKeyJWT},
		{name: "private_key_jwt by email", req: request{form: jwtForm(assertionJWT(t, w.jobKey, claims("job@p.iam.test", nil)))}, wantID: "111", wantMethod: storage.AuthPrivateKeyJWT},
		{name: "private_key_jwt by email, client_id numeric", req: request{form: withClientID(jwtForm(assertionJWT(t, w.jobKey, claims("job@p.iam.test", nil))), "111")}, wantID: "111", wantMethod: storage.AuthPrivateKeyJWT},
		{name: "private_key_jwt numeric, client_id email", req: request{form: withClientID(jwtForm(assertionJWT(t, w.jobKey, claims("111", nil))), "job@p.iam.test")}, wantID: "111", wantMethod: storage.AuthPrivateKeyJWT},
		{name: "private_key_jwt, client_id of another account", req: request{form: withClientID(jwtForm(assertionJWT(t, w.jobKey, claims("111", nil))), "other@p.iam.test")}, wantCode: oauth2.ErrInvalidRequest, wantStatus: 400},
		{name: "private_key_jwt aud issuer", req: request{form: jwtForm(assertionJWT(t, w.jobKey, claims("111", func(c map[string]any) { c["aud"] = issuer })))}, wantID: "111", wantMethod: storage.AuthPrivateKeyJWT},
		{name: "private_key_jwt wrong aud", req: request{form: jwtForm(assertionJWT(t, w.jobKey, claims("111", func(c map[string]any) { c["aud"] = "https://elsewhere/token" })))}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "private_key_jwt two auds", req: request{form: jwtForm(assertionJWT(t, w.jobKey, claims("111", func(c map[string]any) { c["aud"] = []string{issuer, "https://x"} })))}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "private_key_jwt expired", req: request{form: jwtForm(assertionJWT(t, w.jobKey, claims("111", func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() })))}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "private_key_jwt too long", req: request{form: jwtForm(assertionJWT(t, w.jobKey, claims("111", func(c map[string]any) { c["exp"] = now.Add(2 * time.Hour).Unix() })))}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "private_key_jwt no jti", req: request{form: jwtForm(assertionJWT(t, w.jobKey, claims("111", func(c map[string]any) { delete(c, "jti") })))}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "private_key_jwt sub differs", req: request{form: jwtForm(assertionJWT(t, w.jobKey, claims("111", func(c map[string]any) { c["sub"] = "222" })))}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "private_key_jwt foreign key", req: request{form: jwtForm(assertionJWT(t, w.otherKey, claims("111", nil)))}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "private_key_jwt wrong type", req: request{form: url.Values{"client_assertion_type": {"urn:other"}, "client_assertion": {assertionJWT(t, w.jobKey, claims("111", nil))}}}, wantCode: oauth2.ErrInvalidRequest, wantStatus: 400},
		{name: "private_key_jwt with an unencoded payload (b64 false, RFC 7797)", req: request{form: jwtForm(unencodedJWT(t, w.jobKey, claims("111", nil)))}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "private_key_jwt garbage", req: request{form: jwtForm("not.a.jwt")}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		// A line break, which Go's base64 skips, is a failed authentication
		// here, as at the JWT-bearer grant it is invalid_grant.
		{name: "private_key_jwt with a line break", req: request{form: jwtForm(lineBreak(assertionJWT(t, w.jobKey, claims("111", nil))))}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "private_key_jwt with a trailing CRLF", req: request{form: jwtForm(assertionJWT(t, w.jobKey, claims("111", nil)) + "\r\n")}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "self-signed certificate", req: request{form: url.Values{"client_id": {"111"}}, cert: w.selfCert.Leaf}, wantID: "111", wantMethod: storage.AuthSelfSignedTLS, wantCnf: true},
		{name: "CA-issued certificate, subject DN", req: request{form: url.Values{"client_id": {"111"}}, cert: w.issued.Leaf}, wantID: "111", wantMethod: storage.AuthTLS, wantCnf: true},
		{name: "CA-issued certificate, through the intermediate it sent", req: request{form: url.Values{"client_id": {"111"}}, cert: w.chained.Leaf, chain: []*x509.Certificate{w.inter}}, wantID: "111", wantMethod: storage.AuthTLS, wantCnf: true},
		{name: "CA-issued certificate, intermediate not sent", req: request{form: url.Values{"client_id": {"111"}}, cert: w.chained.Leaf}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "CA-issued certificate, through the intermediate it sent among six others", req: request{form: url.Values{"client_id": {"111"}}, cert: w.chained.Leaf, chain: append(strays[:6:6], w.inter)}, wantID: "111", wantMethod: storage.AuthTLS, wantCnf: true},
		{name: "CA-issued certificate, more than seven intermediates sent", req: request{form: url.Values{"client_id": {"111"}}, cert: w.chained.Leaf, chain: append([]*x509.Certificate{w.inter}, strays...)}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "CA-issued certificate, its intermediate sent twice", req: request{form: url.Values{"client_id": {"111"}}, cert: w.chained.Leaf, chain: []*x509.Certificate{w.inter, w.inter}}, wantID: "111", wantMethod: storage.AuthTLS, wantCnf: true},
		{name: "CA-issued certificate, its intermediate sent eight times", req: request{form: url.Values{"client_id": {"111"}}, cert: w.chained.Leaf, chain: slices.Repeat([]*x509.Certificate{w.inter}, 8)}, wantID: "111", wantMethod: storage.AuthTLS, wantCnf: true},
		{name: "CA-issued certificate, two intermediates of one subject sent", req: request{form: url.Values{"client_id": {"111"}}, cert: w.chained.Leaf, chain: []*x509.Certificate{twin, w.inter}}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		// Intermediates that are refused are not held against a certificate
		// a trusted CA issued directly, which needs none.
		{name: "CA-issued certificate, directly, more than seven certificates sent after it", req: request{form: url.Values{"client_id": {"111"}}, cert: w.issued.Leaf, chain: append([]*x509.Certificate{w.inter}, strays...)}, wantID: "111", wantMethod: storage.AuthTLS, wantCnf: true},
		{name: "CA-issued certificate, directly, two certificates of one subject sent after it", req: request{form: url.Values{"client_id": {"111"}}, cert: w.issued.Leaf, chain: []*x509.Certificate{twin, w.inter}}, wantID: "111", wantMethod: storage.AuthTLS, wantCnf: true},
		{name: "self-signed certificate, more than seven certificates sent after it", req: request{form: url.Values{"client_id": {"111"}}, cert: w.selfCert.Leaf, chain: append([]*x509.Certificate{w.inter}, strays...)}, wantID: "111", wantMethod: storage.AuthSelfSignedTLS, wantCnf: true},
		{name: "certificate of an untrusted CA, that CA sent along", req: request{form: url.Values{"client_id": {"111"}}, cert: w.forged.Leaf, chain: []*x509.Certificate{w.rogue}}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "CA-issued certificate, SAN DNS", req: request{form: url.Values{"client_id": {"555"}}, cert: w.issued.Leaf}, wantID: "555", wantMethod: storage.AuthTLS, wantCnf: true},
		{name: "unregistered certificate", req: request{form: url.Values{"client_id": {"111"}}, cert: w.strayCert.Leaf}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "certificate of another account", req: request{form: url.Values{"client_id": {"222"}}, cert: w.selfCert.Leaf}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "certificate without client_id", req: request{cert: w.selfCert.Leaf}},
		{name: "secret over mTLS is not bound", req: request{header: http.Header{"Authorization": {basic("111", goodSecret)}}, cert: w.selfCert.Leaf}, wantID: "111", wantMethod: storage.AuthSecretBasic},
		{name: "proxy header from trusted proxy", req: request{form: url.Values{"client_id": {"111"}}, header: http.Header{"X-Client-Cert": {forwarded}}, remote: "10.1.2.3"}, wantID: "111", wantMethod: storage.AuthTLS, wantCnf: true},
		{name: "proxy header with the intermediate", req: request{form: url.Values{"client_id": {"111"}}, header: http.Header{"X-Client-Cert": {forward(w.chained.Leaf, w.inter)}}, remote: "10.1.2.3"}, wantID: "111", wantMethod: storage.AuthTLS, wantCnf: true},
		{name: "proxy header with an untrusted CA", req: request{form: url.Values{"client_id": {"111"}}, header: http.Header{"X-Client-Cert": {forward(w.forged.Leaf, w.rogue)}}, remote: "10.1.2.3"}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		{name: "proxy header with too long a chain", req: request{form: url.Values{"client_id": {"111"}}, header: http.Header{"X-Client-Cert": {forward(w.chained.Leaf, w.inter, w.inter, w.inter, w.inter, w.inter, w.inter, w.inter, w.inter)}}, remote: "10.1.2.3"}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401, wantDesc: "a chain of more than 8", unreadableCert: true},
		{name: "proxy header from anyone else", req: request{form: url.Values{"client_id": {"111"}}, header: http.Header{"X-Client-Cert": {forwarded}}, remote: "192.0.2.9"}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
		// A header from a trusted proxy that does not parse is the proxy's
		// fault: only the request it would authenticate is refused, saying so.
		{name: "proxy header unreadable, client_id alone", req: request{form: url.Values{"client_id": {"111"}}, header: http.Header{"X-Client-Cert": {"garbage"}}, remote: "10.1.2.3"}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401, wantDesc: "forwarded could not be read", unreadableCert: true},
		// Base64 DER or PEM that is no certificate this server parses is
		// described as such, not as no certificate at all.
		{name: "proxy header of DER that does not parse, client_id alone", req: request{form: url.Values{"client_id": {"111"}}, header: http.Header{"X-Client-Cert": {"AAAA"}}, remote: "10.1.2.3"}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401, wantDesc: "not a certificate in URL-encoded PEM, PEM or base64 DER that this server can parse", unreadableCert: true},
		{name: "proxy header of PEM that does not parse, client_id alone", req: request{form: url.Values{"client_id": {"111"}}, header: http.Header{"X-Client-Cert": {"-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----%0A"}}, remote: "10.1.2.3"}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401, wantDesc: "not a certificate in URL-encoded PEM, PEM or base64 DER that this server can parse", unreadableCert: true},
		{name: "proxy header unreadable, basic", req: request{header: http.Header{"Authorization": {basic("111", goodSecret)}, "X-Client-Cert": {"garbage"}}, remote: "10.1.2.3"}, wantID: "111", wantMethod: storage.AuthSecretBasic},
		{name: "proxy header unreadable, post", req: request{form: url.Values{"client_id": {"111"}, "client_secret": {goodSecret}}, header: http.Header{"X-Client-Cert": {"AAAA"}}, remote: "10.1.2.3"}, wantID: "111", wantMethod: storage.AuthSecretPost},
		{name: "proxy header unreadable, private_key_jwt", req: request{form: jwtForm(assertionJWT(t, w.jobKey, claims("111", nil))), header: http.Header{"X-Client-Cert": {"garbage"}}, remote: "10.1.2.3"}, wantID: "111", wantMethod: storage.AuthPrivateKeyJWT},
		{name: "proxy header unreadable, no credentials", req: request{header: http.Header{"X-Client-Cert": {"garbage"}}, remote: "10.1.2.3"}},
		// A proxy that adds its header after the client's, instead of
		// replacing it, lets the client name any certificate (they are
		// public): two headers are refused, whichever is first.
		{name: "proxy header twice, the client's first", req: request{form: url.Values{"client_id": {"111"}}, header: http.Header{"X-Client-Cert": {forward(w.selfCert.Leaf), forward(w.strayCert.Leaf)}}, remote: "10.1.2.3"},
			wantCode: oauth2.ErrInvalidClient, wantStatus: 401, wantDesc: "sent more than once", unreadableCert: true},
		{name: "proxy header twice, the proxy's empty", req: request{form: url.Values{"client_id": {"111"}}, header: http.Header{"X-Client-Cert": {forwarded, ""}}, remote: "10.1.2.3"},
			wantCode: oauth2.ErrInvalidClient, wantStatus: 401, wantDesc: "sent more than once", unreadableCert: true},
		{name: "proxy header twice, the same", req: request{form: url.Values{"client_id": {"111"}}, header: http.Header{"X-Client-Cert": {forwarded, forwarded}}, remote: "10.1.2.3"},
			wantCode: oauth2.ErrInvalidClient, wantStatus: 401, wantDesc: "sent more than once", unreadableCert: true},
		{name: "proxy header twice, basic", req: request{header: http.Header{"Authorization": {basic("111", goodSecret)}, "X-Client-Cert": {forwarded, forwarded}}, remote: "10.1.2.3"}, wantID: "111", wantMethod: storage.AuthSecretBasic},
		{name: "proxy header twice from anyone else", req: request{form: url.Values{"client_id": {"111"}}, header: http.Header{"X-Client-Cert": {forwarded, forwarded}}, remote: "192.0.2.9"}, wantCode: oauth2.ErrInvalidClient, wantStatus: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.req.run(w.authenticator())
			if tt.wantCode != "" {
				var oe *oauth2.Error
				if !errors.As(err, &oe) {
					t.Fatalf("err = %v, want %s", err, tt.wantCode)
				}
				if oe.Code != tt.wantCode || oe.HTTPStatus() != tt.wantStatus {
					t.Fatalf("got %s/%d (%v), want %s/%d", oe.Code, oe.HTTPStatus(), oe, tt.wantCode, tt.wantStatus)
				}
				if !strings.Contains(oe.Description, tt.wantDesc) {
					t.Fatalf("description %q, want %q in it", oe.Description, tt.wantDesc)
				}
				// But for a forwarded certificate that does not parse, which
				// says nothing about the account.
				if oe.Code == oauth2.ErrInvalidClient && !tt.unreadableCert && oe.Description != "Client authentication failed." {
					t.Fatalf("failed authentication says %q; every failure must look the same", oe.Description)
				}
				if tt.unreadableCert && !strings.Contains(oe.Description, "forwarded could not be read") {
					t.Fatalf("description %q does not say the forwarded certificate could not be read", oe.Description)
				}
				// Every 401 carries a challenge (RFC 9110 §15.5.2), the
				// Basic one whether or not the client used Basic.
				if oe.HTTPStatus() == http.StatusUnauthorized && oe.Header.Get("WWW-Authenticate") != Challenge {
					t.Fatalf("WWW-Authenticate %q on a 401, want %q", oe.Header.Get("WWW-Authenticate"), Challenge)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if tt.wantID == "" {
				if c != nil {
					t.Fatalf("got client %s, want none", c.Account.ID)
				}
				return
			}
			if c == nil || c.Account.ID != tt.wantID || c.Method != tt.wantMethod {
				t.Fatalf("client = %+v, want %s by %s", c, tt.wantID, tt.wantMethod)
			}
			if (c.Thumbprint() != "") != tt.wantCnf {
				t.Fatalf("thumbprint %q, want bound=%v", c.Thumbprint(), tt.wantCnf)
			}
			if c.Method == storage.AuthPrivateKeyJWT && (len(c.JTIs) != 1 || c.JTIs[0].JTI != "j1" || c.JTIs[0].Issuer != "111") {
				t.Fatalf("private_key_jwt must hand back its jti to consume: %+v", c.JTIs)
			}
		})
	}
}

// TestPeerCertificateFromProxy: with a certificate header configured, a
// trusted proxy's header alone names the client's certificate, and its
// absence none: a proxy that connects over mTLS itself (a mesh, an
// ingress with upstream TLS) presents its own certificate, which is not
// the client's, or every client it forwards would hold it. A connection
// from anywhere else is a client's own, and its certificate counts.
func TestPeerCertificateFromProxy(t *testing.T) {
	w := newWorld(t)
	a := w.authenticator()
	proxy, client := w.strayCert.Leaf, w.issued.Leaf
	forwarded := url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: client.Raw})))
	tests := []struct {
		name   string
		req    request
		want   *x509.Certificate
		wantID string // Authenticate with client_id 111; "" refuses
	}{
		{"trusted proxy over mTLS, forwarding the client's", request{cert: proxy, header: http.Header{"X-Client-Cert": {forwarded}}, remote: "10.1.2.3"}, client, "111"},
		{"trusted proxy over mTLS, no header", request{cert: w.selfCert.Leaf, remote: "10.1.2.3"}, nil, ""},
		{"trusted proxy over mTLS, header says none", request{cert: w.selfCert.Leaf, header: http.Header{"X-Client-Cert": {"(null)"}}, remote: "10.1.2.3"}, nil, ""},
		{"trusted proxy without TLS, forwarding the client's", request{header: http.Header{"X-Client-Cert": {forwarded}}, remote: "10.1.2.3"}, client, "111"},
		{"direct client over mTLS", request{cert: client}, client, "111"},
		{"direct client over mTLS, naming another in the header", request{cert: client, header: http.Header{"X-Client-Cert": {url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: proxy.Raw})))}}}, client, "111"},
		{"direct client without a certificate, naming one in the header", request{header: http.Header{"X-Client-Cert": {forwarded}}}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, _ := tt.req.build("/token")
			got, err := a.PeerCertificate(r)
			if err != nil || got != tt.want && (got == nil || tt.want == nil || !got.Equal(tt.want)) {
				t.Fatalf("PeerCertificate = %v, %v; want %v", subject(got), err, subject(tt.want))
			}
			tt.req.form = url.Values{"client_id": {"111"}}
			c, err := tt.req.run(a)
			if tt.wantID == "" {
				if err == nil {
					t.Fatalf("Authenticate = %+v; want a refusal", c)
				}
				return
			}
			if err != nil || c == nil || c.Account.ID != tt.wantID || c.Thumbprint() != oauth2.Thumbprint(tt.want) {
				t.Fatalf("Authenticate = %+v, %v; want %s bound to %s", c, err, tt.wantID, subject(tt.want))
			}
		})
	}
}

func subject(c *x509.Certificate) string {
	if c == nil {
		return "no certificate"
	}
	return c.Subject.String()
}

// warningStep is a step of a test of a warning logged at most once a
// minute.
type warningStep struct {
	name         string
	after        time.Duration // since the step before
	wantWarnings int           // in all, so far
	wantUnlogged string        // in the last warning
}

// check fails unless the log text holds st.wantWarnings warnings, the
// last of them saying st.wantUnlogged.
func (st warningStep) check(t *testing.T, text, warning string) {
	t.Helper()
	if got := strings.Count(text, warning); got != st.wantWarnings {
		t.Fatalf("%s: %d warnings, want %d; the log:\n%s", st.name, got, st.wantWarnings, text)
	}
	if last := text[strings.LastIndex(text, warning):]; !strings.Contains(last, st.wantUnlogged) {
		t.Fatalf("%s: the last warning lacks %s: %s", st.name, st.wantUnlogged, last)
	}
}

// TestUnreadableCertificateWarning: a proxy that forwards a header that
// does not parse sends one with every request; the log warns of it at
// most once a minute, saying how many it left out since, while the hook
// (the metrics counter) counts every one.
func TestUnreadableCertificateWarning(t *testing.T) {
	w := newWorld(t)
	var (
		logs    bytes.Buffer
		clock   = now
		counted int
	)
	a := New(Config{
		Issuer: issuer, MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute, Pepper: pepper,
		CertHeader: "X-Client-Cert", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Now: func() time.Time { return clock }, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		OnUnreadableCertificate: func() { counted++ },
	}, w.dir)
	const warning = "client-certificate header does not parse"
	steps := []warningStep{
		{name: "first", wantWarnings: 1, wantUnlogged: "unlogged=0"},
		{name: "right after", wantWarnings: 1, wantUnlogged: "unlogged=0"},
		{name: "within the minute", after: 59 * time.Second, wantWarnings: 1, wantUnlogged: "unlogged=0"},
		{name: "a minute after the first", after: time.Second, wantWarnings: 2, wantUnlogged: "unlogged=2"},
		{name: "right after the second", wantWarnings: 2, wantUnlogged: "unlogged=2"},
		{name: "the clock stepped back", after: -time.Hour, wantWarnings: 3, wantUnlogged: "unlogged=1"},
		{name: "right after the step back", wantWarnings: 3, wantUnlogged: "unlogged=1"},
	}
	for i, st := range steps {
		clock = clock.Add(st.after)
		// The request goes on without a certificate.
		if _, err := (request{header: http.Header{"Authorization": {basic("111", goodSecret)}, "X-Client-Cert": {"garbage"}}, remote: "10.1.2.3"}).run(a); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if counted != i+1 {
			t.Fatalf("%s: %d counted, want %d", st.name, counted, i+1)
		}
		st.check(t, logs.String(), warning)
	}
}

// TestForwardedNoCertificate: what a proxy forwards for a client that
// presented no certificate is no certificate, not one that does not
// parse: HAProxy's empty value, and Apache's "(null)" (mod_headers writes
// it for %{SSL_CLIENT_CERT}s then). Nothing is counted or logged, and a
// request with client_id alone is refused as every failure is.
func TestForwardedNoCertificate(t *testing.T) {
	w := newWorld(t)
	for _, v := range []string{"", "(null)"} {
		t.Run(fmt.Sprintf("%q", v), func(t *testing.T) {
			var logs bytes.Buffer
			counted := 0
			a := New(Config{
				Issuer: issuer, MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute, Pepper: pepper,
				CertHeader: "X-Client-Cert", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
				Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				OnUnreadableCertificate: func() { counted++ },
			}, w.dir)
			header := http.Header{"X-Client-Cert": {v}}
			c, err := (request{header: http.Header{"Authorization": {basic("111", goodSecret)}, "X-Client-Cert": {v}}, remote: "10.1.2.3"}).run(a)
			if err != nil || c == nil || c.Method != storage.AuthSecretBasic || c.Thumbprint() != "" {
				t.Fatalf("basic: %+v, %v; want the secret's client, unbound", c, err)
			}
			_, err = (request{form: url.Values{"client_id": {"111"}}, header: header, remote: "10.1.2.3"}).run(a)
			var oe *oauth2.Error
			if !errors.As(err, &oe) || oe.Code != oauth2.ErrInvalidClient || oe.Description != "Client authentication failed." {
				t.Fatalf("client_id alone: %v; want invalid_client, Client authentication failed.", err)
			}
			if counted != 0 || logs.Len() != 0 {
				t.Fatalf("%d counted as unreadable, log %q; want none", counted, logs.String())
			}
		})
	}
}

// TestTrustedProxyZone: a proxy at a link-local address connects with
// its interface as the address's zone (fe80::1%eth0): it is never
// trusted, though fe80::1 is listed, as another link's host may have
// that address; the address without a zone still is.
func TestTrustedProxyZone(t *testing.T) {
	w := newWorld(t)
	pool := x509.NewCertPool()
	pool.AddCert(w.caCert)
	a := New(Config{
		Issuer: issuer, MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute,
		Pepper: pepper, ClientCAs: pool, CertHeader: "X-Client-Cert",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("fe80::1/128")}, Now: func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler),
	}, w.dir)
	forwarded := url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.issued.Leaf.Raw})))
	for _, tc := range []struct {
		remote  string
		trusted bool
	}{
		{"fe80::1%eth0", false},
		{"fe80::1%2", false},
		{"fe80::1", true},
		{"fe80::2%eth0", false},
	} {
		c, err := (request{form: url.Values{"client_id": {"111"}}, header: http.Header{"X-Client-Cert": {forwarded}}, remote: tc.remote}).run(a)
		if got := err == nil && c.Method == storage.AuthTLS; got != tc.trusted {
			t.Errorf("from %s: %+v, %v; want the forwarded certificate taken %v", tc.remote, c, err, tc.trusted)
		}
	}
}

// TestUntrustedCertificateHeaderWarning: any client can send the
// certificate header from an address that is not a trusted proxy, with
// every request; the log warns of it at most once a minute, saying how
// many it left out since, and not never again if the clock steps back.
func TestUntrustedCertificateHeaderWarning(t *testing.T) {
	w := newWorld(t)
	var (
		logs  bytes.Buffer
		clock = now
	)
	a := New(Config{
		Issuer: issuer, MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute, Pepper: pepper,
		CertHeader: "X-Client-Cert", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Now: func() time.Time { return clock }, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}, w.dir)
	const warning = "ignoring a client-certificate header from an untrusted address"
	steps := []warningStep{
		{name: "first", wantWarnings: 1, wantUnlogged: "unlogged=0"},
		{name: "right after", wantWarnings: 1, wantUnlogged: "unlogged=0"},
		{name: "a minute after the first", after: time.Minute, wantWarnings: 2, wantUnlogged: "unlogged=1"},
		{name: "the clock stepped back", after: -time.Hour, wantWarnings: 3, wantUnlogged: "unlogged=0"},
		{name: "right after the step back", wantWarnings: 3, wantUnlogged: "unlogged=0"},
		// A request that read the clock just before the one logged, as
		// concurrent ones do: no step back, no warning more.
		{name: "a moment before the last logged", after: -time.Millisecond, wantWarnings: 3, wantUnlogged: "unlogged=0"},
	}
	for _, st := range steps {
		clock = clock.Add(st.after)
		// The request goes on without a certificate.
		c, err := (request{header: http.Header{"Authorization": {basic("111", goodSecret)}, "X-Client-Cert": {"garbage"}}, remote: "192.0.2.1"}).run(a)
		if err != nil || c == nil || c.Method != storage.AuthSecretBasic {
			t.Fatalf("%s: %+v, %v; want the secret's client", st.name, c, err)
		}
		st.check(t, logs.String(), warning)
	}
}

// TestPrivateKeyJWTAudience: a client assertion's aud is the issuer, or
// by default also the token endpoint URL, as its single value (a string or
// an array of one); with StrictAudience only the issuer
// (draft-ietf-oauth-rfc7523bis). The cause of a refusal, which the log
// gets, names what is accepted in each mode.
func TestPrivateKeyJWTAudience(t *testing.T) {
	w := newWorld(t)
	var (
		endpoint = issuer + "/token"
		either   = "this server's issuer " + issuer + " or its token endpoint URL " + endpoint + "."
		only     = "this server's issuer " + issuer + "."
	)
	tests := []struct {
		name   string
		strict bool
		aud    any    // nil: no aud claim
		want   string // the refusal's cause; "" accepts
	}{
		{"issuer", false, issuer, ""},
		{"issuer in an array of one", false, []string{issuer}, ""},
		{"token endpoint", false, endpoint, ""},
		{"token endpoint in an array of one", false, []string{endpoint}, ""},
		{"issuer and token endpoint", false, []string{issuer, endpoint}, "Invalid JWT: aud must be a single value, " + either},
		{"another server", false, "https://elsewhere.test", "Invalid JWT: aud must be " + either},
		{"no aud", false, nil, "Invalid JWT: the aud claim is required; use " + either},

		{"strict: issuer", true, issuer, ""},
		{"strict: issuer in an array of one", true, []string{issuer}, ""},
		{"strict: token endpoint", true, endpoint, "Invalid JWT: aud must be " + only},
		{"strict: token endpoint in an array of one", true, []string{endpoint}, "Invalid JWT: aud must be " + only},
		{"strict: issuer with a trailing slash", true, issuer + "/", "Invalid JWT: aud must be " + only},
		{"strict: issuer twice", true, []string{issuer, issuer}, "Invalid JWT: aud must be a single value, " + only},
		{"strict: issuer and token endpoint", true, []string{issuer, endpoint}, "Invalid JWT: aud must be a single value, " + only},
		{"strict: no aud", true, nil, "Invalid JWT: the aud claim is required; use " + only},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := w.authenticator().cfg
			cfg.StrictAudience = tt.strict
			a := New(cfg, w.dir)
			raw := assertionJWT(t, w.jobKey, claims("111", func(c map[string]any) {
				if tt.aud == nil {
					delete(c, "aud")
				} else {
					c["aud"] = tt.aud
				}
			}))
			form := url.Values{"client_assertion_type": {oauth2.ClientAssertionJWT}, "client_assertion": {raw}}
			c, err := request{form: form}.run(a)
			if tt.want == "" {
				if err != nil || c == nil || c.Account.ID != "111" {
					t.Fatalf("Authenticate = %+v, %v; want account 111", c, err)
				}
				return
			}
			var oe *oauth2.Error
			if !errors.As(err, &oe) || oe.Code != oauth2.ErrInvalidClient || oe.Description != "Client authentication failed." {
				t.Fatalf("Authenticate = %+v, %v; want invalid_client", c, err)
			}
			var ae *assertion.Error
			if !errors.As(err, &ae) || ae.Description != tt.want {
				t.Fatalf("cause %v, want %q", err, tt.want)
			}
		})
	}
}

// TestPrivateKeyJWTOversizedKey: a client assertion whose kid names an RSA
// key over 8192 bits, stored before uploads were bounded, is refused as
// one no key verifies, without verifying with it, and the key is named in
// a warning.
func TestPrivateKeyJWTOversizedKey(t *testing.T) {
	w := newWorld(t)
	spki, _ := x509.MarshalPKIXPublicKey(testkeys.RSAPublic(8200))
	kid := "huge-" + rand.Text() // new in each run: the warning is once per process
	w.dir.keys["111"] = append(w.dir.keys["111"], storage.Key{ID: kid, AccountID: "111", Algorithm: "RS256", PublicKey: spki})
	var logs bytes.Buffer
	cfg := w.authenticator().cfg
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	a := New(cfg, w.dir)
	signer, _ := rsa.GenerateKey(rand.Reader, 2048)
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: signer}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	raw, err := jwt.Signed(s).Claims(claims("111", nil)).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	c, err := request{form: url.Values{"client_assertion_type": {oauth2.ClientAssertionJWT}, "client_assertion": {raw}}}.run(a)
	var oe *oauth2.Error
	if !errors.As(err, &oe) || oe.Code != oauth2.ErrInvalidClient || !assertion.IsReason(err, assertion.BadSignature) {
		t.Fatalf("Authenticate = %+v, %v; want invalid_client for a bad signature", c, err)
	}
	if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "key="+kid) || !strings.Contains(got, "8200 bits, more than the 8192") {
		t.Errorf("logs %q, want a warning naming the key, its size and the limit", got)
	}
}

// TestPrivateKeyJWTRefusalChecksSignature: a client assertion whose iss
// names no account is refused as a bad signature is, and must not be
// refused sooner, or a guesser could tell which client IDs are accounts by
// timing it: every such refusal checks one signature, a decoy's where no
// key of the account could be tried. (Counted, not timed.)
func TestPrivateKeyJWTRefusalChecksSignature(t *testing.T) {
	w := newWorld(t)
	a := w.authenticator()
	tests := []struct {
		name string
		iss  string
	}{
		{"known account, a key not its own", "222"},
		{"unknown ID", "999"},
		{"unknown email", "ghost@p.iam.test"},
		{"known account without keys", "333"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := assertionJWT(t, w.jobKey, claims(tt.iss, nil))
			before := assertion.SignatureChecks()
			_, err := request{form: url.Values{"client_assertion_type": {oauth2.ClientAssertionJWT}, "client_assertion": {raw}}, remote: fmt.Sprintf("192.0.2.%d", 40+i)}.run(a)
			checks := assertion.SignatureChecks() - before
			var oe *oauth2.Error
			if !errors.As(err, &oe) || oe.Code != oauth2.ErrInvalidClient {
				t.Fatalf("Authenticate: %v, want invalid_client", err)
			}
			if checks != 1 {
				t.Fatalf("%d signature checks, want 1: a refusal that checks none answers sooner", checks)
			}
		})
	}
}

// Require asks for client credentials, and tells a client that presented
// only a certificate that client_id is what it is missing, and one whose
// proxy forwarded a certificate that does not parse that it could not be
// read.
func TestRequire(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		name       string
		req        request
		wantCode   string
		wantStatus int
		wantDesc   string
	}{
		{"no credentials", request{}, oauth2.ErrInvalidClient, 401, "Client authentication is required"},
		{"certificate without client_id", request{cert: w.selfCert.Leaf}, oauth2.ErrInvalidRequest, 400, "client_id is required with tls_client_auth"},
		{"CA-issued certificate without client_id", request{cert: w.issued.Leaf}, oauth2.ErrInvalidRequest, 400, "client_id is required with tls_client_auth"},
		{"certificate with client_id", request{cert: w.selfCert.Leaf, form: url.Values{"client_id": {"111"}}}, "", 0, ""},
		{"forwarded certificate that does not parse", request{header: http.Header{"X-Client-Cert": {"garbage"}}, remote: "10.1.2.3"}, oauth2.ErrInvalidClient, 401, "forwarded could not be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, form, _ := tt.req.build("/introspect")
			var att Attempt
			c, err := w.authenticator().Require(context.Background(), req, form, "192.0.2.1", &att)
			if tt.wantCode == "" {
				if err != nil || c == nil {
					t.Fatalf("Require = %v, %v; want a client", c, err)
				}
				return
			}
			var oe *oauth2.Error
			if !errors.As(err, &oe) || oe.Code != tt.wantCode || oe.HTTPStatus() != tt.wantStatus || !strings.Contains(oe.Description, tt.wantDesc) {
				t.Fatalf("Require = %v, want %s/%d saying %q", err, tt.wantCode, tt.wantStatus, tt.wantDesc)
			}
		})
	}
}

func withClientID(form url.Values, id string) url.Values {
	form.Set("client_id", id)
	return form
}

// A client_id beside Basic credentials costs no lookup of its own, whether
// it is the same string or names the account the other way.
func TestClientIDNeedsNoLookup(t *testing.T) {
	w := newWorld(t)
	for _, id := range []string{"111", "job@p.iam.test"} {
		w.dir.lookups = 0
		c, err := request{header: http.Header{"Authorization": {basic("111", goodSecret)}}, form: url.Values{"client_id": {id}}}.run(w.authenticator())
		if err != nil || c.Account.ID != "111" {
			t.Fatalf("client_id %s: %v", id, err)
		}
		if w.dir.lookups != 1 {
			t.Errorf("client_id %s: %d account lookups, want 1", id, w.dir.lookups)
		}
	}
}

// Failures from the addresses of one IPv6 /64 count together: a guesser
// does not get a fresh allowance from each address of its subnet.
func TestThrottleIPv6Subnet(t *testing.T) {
	w := newWorld(t)
	a := w.authenticator()
	for i := range 60 {
		request{header: http.Header{"Authorization": {basic("111", "kw_wrong")}}, remote: fmt.Sprintf("2001:db8:1::%x", i+1)}.run(a)
	}
	right := http.Header{"Authorization": {basic("111", goodSecret)}}
	tests := []struct {
		remote    string
		throttled bool
	}{
		{"2001:db8:1::ffff", true},
		{"2001:db8:1:0:abcd::1", true},
		{"2001:db8:1:1::1", false}, // the next /64
		{"::ffff:198.51.100.7", false},
	}
	for _, tt := range tests {
		_, err := request{header: right, remote: tt.remote}.run(a)
		var oe *oauth2.Error
		if got := errors.As(err, &oe) && oe.HTTPStatus() == http.StatusTooManyRequests; got != tt.throttled {
			t.Errorf("from %s: %v, want throttled %v", tt.remote, err, tt.throttled)
		}
	}
}

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.7":           "198.51.100.7",
		"::ffff:198.51.100.7":    "198.51.100.7",
		"2001:db8:1:2:3:4:5:6":   "2001:db8:1:2::/64",
		"fe80::1%eth0":           "fe80::/64",
		"not an address: at all": "not an address: at all",
		"@":                      "@",
	} {
		if got := sourceKey(in); got != want {
			t.Errorf("sourceKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestThrottle(t *testing.T) {
	w := newWorld(t)
	a := w.authenticator()
	wrong := request{header: http.Header{"Authorization": {basic("111", "kw_wrong")}}, remote: "198.51.100.7"}
	var last error
	for range 60 {
		_, last = wrong.run(a)
	}
	var oe *oauth2.Error
	if !errors.As(last, &oe) || oe.HTTPStatus() != http.StatusTooManyRequests || oe.Header.Get("Retry-After") == "" || oe.Code != oauth2.ErrTemporarilyUnavailable {
		t.Fatalf("after 60 failures: %v, want 429 temporarily_unavailable with Retry-After", last)
	}
	// The right secret from that address waits too (the check comes before
	// any hashing)…
	right := request{header: http.Header{"Authorization": {basic("111", goodSecret)}}, remote: "198.51.100.7"}
	if _, err := right.run(a); !errors.As(err, &oe) || oe.HTTPStatus() != http.StatusTooManyRequests {
		t.Fatalf("from the throttled address: %v, want 429", err)
	}
	// …but the client is not locked out: from elsewhere it works.
	right.remote = "203.0.113.5"
	if c, err := right.run(a); err != nil || c.Account.ID != "111" {
		t.Fatalf("from another address: %v, want success", err)
	}
}

func TestStoreErrorIsNotAFailure(t *testing.T) {
	w := newWorld(t)
	w.dir.err = errors.New("connection refused")
	a := w.authenticator()
	for range 100 {
		_, err := request{header: http.Header{"Authorization": {basic("111", goodSecret)}}}.run(a)
		var oe *oauth2.Error
		if !errors.As(err, &oe) || oe.Code != oauth2.ErrTemporarilyUnavailable || oe.HTTPStatus() != 503 {
			t.Fatalf("store down: %v, want 503 temporarily_unavailable", err)
		}
	}
}

func TestParseBasic(t *testing.T) {
	tests := []struct{ raw, id, secret string }{
		{"a:b", "a", "b"},
		{"a%3Ab:c%3Ad", "a:b", "c:d"},
		{"job%40p.iam.test:s%2Bt", "job@p.iam.test", "s+t"},
		{"job@p.iam.test:s%zz", "job@p.iam.test", "s%zz"}, // not form-encoded: taken as is
		{"id:sec:ret", "id", "sec:ret"},
		{":", "", ""},
	}
	for _, tt := range tests {
		id, secret, err := parseBasic(base64.StdEncoding.EncodeToString([]byte(tt.raw)))
		if err != nil || id != tt.id || secret != tt.secret {
			t.Errorf("parseBasic(%q) = %q, %q, %v; want %q, %q", tt.raw, id, secret, err, tt.id, tt.secret)
		}
	}
	for _, bad := range []string{"nocolon", "a%00b:c", "a:b\x00", "a%ff:b", "a:\xff"} {
		if _, _, err := parseBasic(base64.StdEncoding.EncodeToString([]byte(bad))); err == nil {
			t.Errorf("parseBasic accepted %q", bad)
		}
	}
	// Spaces and tabs alone separate the credentials (RFC 7235 §2.1, RFC
	// 9110 §5.6.3), not other white space.
	enc := base64.StdEncoding.EncodeToString([]byte("a:b"))
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"  \t" + enc + " \t", true},
		{"\u00a0" + enc, false},
		{enc + "\u3000", false},
		{"\u0085" + enc, false},
	} {
		if id, _, err := parseBasic(tc.in); (err == nil && id == "a") != tc.ok {
			t.Errorf("parseBasic(%q) = %q, %v; want it taken %v", tc.in, id, err, tc.ok)
		}
	}
}

// FuzzParseBasic: whatever a client sends as Basic credentials,
// parseBasic never panics and accepts only text without NUL characters;
// and any client ID and secret that are such text, form-encoded as RFC
// 6749 §2.3.1 says, read back as themselves.
func FuzzParseBasic(f *testing.F) {
	f.Add("YTpi", "123", "kw_secret")
	f.Add("!!", "a:b", "c d+e%f")
	f.Add("YSUwMGI6Yw==", "job@shop.iam.test", "\u00e9:\u00ff")
	f.Fuzz(func(t *testing.T, s, id, secret string) {
		if gotID, gotSecret, err := parseBasic(s); err == nil && (!oauth2.IsText(gotID) || !oauth2.IsText(gotSecret)) {
			t.Fatalf("parseBasic(%q) = %q, %q: not text", s, gotID, gotSecret)
		}
		if !oauth2.IsText(id) || !oauth2.IsText(secret) {
			return
		}
		enc := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
		if gotID, gotSecret, err := parseBasic(enc); err != nil || gotID != id || gotSecret != secret {
			t.Fatalf("%q:%q encoded reads as %q, %q, %v", id, secret, gotID, gotSecret, err)
		}
	})
}

// FuzzParseForwardedCert: a proxy's header never panics, and a chain read
// from it holds the client's certificate and at most maxForwardedChain in
// all (peerChain takes the first).
func FuzzParseForwardedCert(f *testing.F) {
	f.Add("-----BEGIN CERTIFICATE-----%0AMIIB%0A-----END CERTIFICATE-----")
	f.Add("MIIB")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "job"}, NotBefore: now, NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		f.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	other := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")})
	for _, v := range [][]byte{cert, slices.Concat(cert, cert), slices.Concat(other, cert), slices.Repeat(cert, maxForwardedChain+1)} {
		f.Add(url.QueryEscape(string(v)))
	}
	f.Add(base64.StdEncoding.EncodeToString(der))
	f.Fuzz(func(t *testing.T, s string) {
		chain, err := parseForwardedCert(s)
		if err == nil && (len(chain) == 0 || len(chain) > maxForwardedChain || slices.Contains(chain, nil)) {
			t.Fatalf("parseForwardedCert(%.100q) = %d certificates", s, len(chain))
		}
	})
}

// Each form a proxy forwards a certificate in reads as that certificate:
// base64 DER as HAProxy sends it, whose + is no escaped space, among them.
func TestParseForwardedCertForms(t *testing.T) {
	var der []byte
	for der == nil || !bytes.Contains([]byte(base64.StdEncoding.EncodeToString(der)), []byte("+")) {
		der = selfSigned(t, "job").Leaf.Raw // until its base64 has a + (nearly always the first)
	}
	b64 := base64.StdEncoding.EncodeToString(der)
	block := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	for name, v := range map[string]string{
		"URL-encoded PEM (nginx)":                  strings.ReplaceAll(url.PathEscape(block), "+", "%2B"),
		"URL-encoded PEM, space as +":              url.QueryEscape(block),
		"PEM":                                      block,
		"base64 DER (HAProxy)":                     b64,
		"URL-encoded base64 DER":                   url.QueryEscape(b64),
		"base64url DER without padding":            base64.RawURLEncoding.EncodeToString(der),
		"base64 DER between spaces":                " " + b64 + " ",
		"PEM with spaces for line breaks (Apache)": strings.ReplaceAll(strings.TrimSpace(block), "\n", " "),
		"URL-encoded PEM, + not encoded":           url.PathEscape(block),
	} {
		chain, err := parseForwardedCert(v)
		if err != nil || len(chain) != 1 || !bytes.Equal(chain[0].Raw, der) {
			t.Errorf("%s: %d certificates, %v; want the certificate", name, len(chain), err)
		}
	}
}

// The pooled HMAC hashes as HashSecret does, however often it is reused;
// a hash it returned stays as it was when the HMAC hashes again (it is a
// copy of the buffer kept with the HMAC, which is cleared, holding no
// secret's hash in the pool), and the secret, whose bytes it is given in
// place (unsafe.Slice), stays as it was.
func TestHashSecretPooled(t *testing.T) {
	pepper := []byte("0123456789abcdef0123456789abcdef")
	a := New(Config{Pepper: pepper}, nil)
	secrets := []string{"kw_first", "", "kw_second", "kw_first", strings.Repeat("x", 1000)}
	var sums [][]byte
	for _, s := range secrets {
		got, want := a.hashSecret(s), HashSecret(pepper, s)
		if !bytes.Equal(got[:], want) {
			t.Errorf("hashSecret(%q) = %x, HashSecret = %x", s, got, want)
		}
		sums = append(sums, got[:])
	}
	for i, s := range secrets {
		if want := HashSecret(pepper, s); !bytes.Equal(sums[i], want) {
			t.Errorf("hashSecret(%q) changed to %x after later hashes, want %x", s, sums[i], want)
		}
	}
	if want := []string{"kw_first", "", "kw_second", "kw_first", strings.Repeat("x", 1000)}; !slices.Equal(secrets, want) {
		t.Errorf("the secrets hashed changed to %q", secrets)
	}
	if m, _ := a.hashers.Get().(*pooledHMAC); m != nil && m.sum != [len(m.sum)]byte{} {
		t.Errorf("the pooled HMAC's buffer holds %x, want it cleared", m.sum)
	}
}

// TestHashSecretPoolHoldsNoSecret: the HMAC put back in the pool holds
// no byte of the secret it hashed. Its inner SHA-256 keeps the bytes of
// an unfinished block, a Keyward secret whole, until it is reset.
func TestHashSecretPoolHoldsNoSecret(t *testing.T) {
	a := New(Config{Pepper: []byte("0123456789abcdef0123456789abcdef")}, nil)
	secret := "kw_" + "a-secret-that-must-not-stay-in-the-pool-0123"
	a.hashSecret(secret)
	m, _ := a.hashers.Get().(*pooledHMAC)
	if m == nil {
		t.Skip("the pool dropped the HMAC (as under the race detector)")
	}
	if holdsBytes(reflect.ValueOf(m), []byte(secret), map[uintptr]bool{}) {
		t.Error("the pooled HMAC holds the secret it hashed")
	}
}

// holdsBytes reports whether b is in a byte array or slice that v holds,
// through pointers, interfaces, structs, arrays and slices, exported or
// not.
func holdsBytes(v reflect.Value, b []byte, seen map[uintptr]bool) bool {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return false
		}
		seen[v.Pointer()] = true
		return holdsBytes(v.Elem(), b, seen)
	case reflect.Interface:
		return !v.IsNil() && holdsBytes(v.Elem(), b, seen)
	case reflect.Struct:
		for i := range v.NumField() {
			if holdsBytes(v.Field(i), b, seen) {
				return true
			}
		}
	case reflect.Array, reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			data := make([]byte, v.Len())
			for i := range data {
				data[i] = byte(v.Index(i).Uint())
			}
			return bytes.Contains(data, b)
		}
		for i := range v.Len() {
			if holdsBytes(v.Index(i), b, seen) {
				return true
			}
		}
	}
	return false
}

// The pooled HMAC hashes a secret without copying it, and returns the
// hash as an array: no allocation. Every client_secret authentication
// hashes one.
func TestHashSecretAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("under the race detector a sync.Pool drops what it is given at random")
	}
	a := New(Config{Pepper: []byte("0123456789abcdef0123456789abcdef")}, nil)
	secret := "kw_" + strings.Repeat("Z", 43)
	a.hashSecret(secret) // the pool's HMAC exists
	if n := testing.AllocsPerRun(100, func() { a.hashSecret(secret) }); n != 0 {
		t.Errorf("hashSecret: %v allocations, want 0", n)
	}
}

func BenchmarkHashSecret(b *testing.B) {
	pepper := []byte("0123456789abcdef0123456789abcdef")
	secret := "kw_" + strings.Repeat("Z", 43)
	b.Run("new HMAC", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			HashSecret(pepper, secret)
		}
	})
	b.Run("pooled HMAC", func(b *testing.B) {
		a := New(Config{Pepper: pepper}, nil)
		b.ReportAllocs()
		for b.Loop() {
			a.hashSecret(secret)
		}
	})
}

// The throttle check of a client that is let through allocates nothing:
// it runs on every token request, and its key is built on the stack.
func TestThrottledAllocs(t *testing.T) {
	a := New(Config{Pepper: []byte("0123456789abcdef0123456789abcdef")}, nil)
	a.Throttled("10.0.0.1", "577436518023140401823") // the limiters' entries exist
	if n := testing.AllocsPerRun(100, func() {
		if err := a.Throttled("10.0.0.1", "577436518023140401823"); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Throttled allocates %v times, want 0", n)
	}
}

// cachedDir is a fakeDir whose accounts are all in memory, as the storage
// cache's are once read: CachedAccount gives them without a lookup.
type cachedDir struct{ *fakeDir }

func (d cachedDir) CachedAccount(name string) (storage.Account, bool) {
	for _, a := range d.accounts {
		if a.ID == name || a.Email == name {
			return a, true
		}
	}
	return storage.Account{}, false
}

// An account's failures count under its ID whether the request names it
// by email or by ID, so alternating the two gets one allowance, not two,
// with every method; and a private_key_jwt assertion counts under the
// account its iss names, client_id or not (before, without client_id it
// counted under the address only, and got the address's allowance). With
// the directory's memory the ID is known before any lookup, and the
// lookup is not made.
func TestThrottleEmailOrID(t *testing.T) {
	w := newWorld(t)
	pkjwt := func(clientID, iss string, key *ecdsa.PrivateKey) request {
		f := url.Values{"client_assertion_type": {oauth2.ClientAssertionJWT}, "client_assertion": {assertionJWT(t, key, claims(iss, nil))}}
		if clientID != "" {
			f.Set("client_id", clientID)
		}
		return request{form: f}
	}
	post := func(id, secret string) request {
		return request{form: url.Values{"client_id": {id}, "client_secret": {secret}}}
	}
	byBasic := func(id, secret string) request {
		return request{header: http.Header{"Authorization": {basic(id, secret)}}}
	}
	tests := []struct {
		name  string
		wrong [2]request // by email, by ID
		right request
	}{
		{"client_secret_basic", [2]request{byBasic("job@p.iam.test", "kw_wrong"), byBasic("111", "kw_wrong")}, byBasic("111", goodSecret)},
		{"client_secret_post", [2]request{post("job@p.iam.test", "kw_wrong"), post("111", "kw_wrong")}, post("job@p.iam.test", goodSecret)},
		{"private_key_jwt with client_id", [2]request{pkjwt("job@p.iam.test", "job@p.iam.test", w.otherKey), pkjwt("111", "111", w.otherKey)},
			pkjwt("111", "111", w.jobKey)},
		{"private_key_jwt without client_id", [2]request{pkjwt("", "job@p.iam.test", w.otherKey), pkjwt("", "111", w.otherKey)},
			pkjwt("", "job@p.iam.test", w.jobKey)},
		{"private_key_jwt with another's client_id", [2]request{pkjwt("222", "job@p.iam.test", w.otherKey), pkjwt("other@p.iam.test", "111", w.otherKey)},
			pkjwt("", "111", w.jobKey)},
	}
	const burst = 10 // the per-client allowance at one address
	for _, tt := range tests {
		for _, cached := range []bool{false, true} {
			t.Run(tt.name+map[bool]string{false: "/store", true: "/cache"}[cached], func(t *testing.T) {
				w.dir.lookups = 0
				dir := Directory(w.dir)
				if cached {
					dir = cachedDir{w.dir}
				}
				a := New(w.authenticator().cfg, dir)
				var oe *oauth2.Error
				for i := range burst {
					r := tt.wrong[i%2]
					r.remote = "198.51.100.7"
					if _, err := r.run(a); !errors.As(err, &oe) || oe.Code != oauth2.ErrInvalidClient {
						t.Fatalf("failure %d: %v, want invalid_client", i, err)
					}
				}
				for i, r := range append(tt.wrong[:], tt.right) {
					r.remote = "198.51.100.7"
					if _, err := r.run(a); !errors.As(err, &oe) || oe.HTTPStatus() != http.StatusTooManyRequests {
						t.Errorf("request %d after %d failures by email and ID: %v, want 429", i, burst, err)
					}
				}
				r := tt.right
				r.remote = "203.0.113.5"
				if c, err := r.run(a); err != nil || c.Account.ID != "111" {
					t.Fatalf("from another address: %v, want account 111", err)
				}
				if cached && w.dir.lookups != 0 {
					t.Errorf("%d account lookups with the account in memory, want 0", w.dir.lookups)
				}
			})
		}
	}
}

// A credential sent where the client ID goes — a client secret as the
// Basic user name or in client_id, an access token or a JWT in client_id —
// is not recorded in the Attempt, which the audit log keeps as the
// client_id of the refusal; a client ID that names no account is.
func TestAttemptRecordsNoCredential(t *testing.T) {
	w := newWorld(t)
	secret := "kw_" + strings.Repeat("Zs9", 14) + "x"
	token := oauth2.OpaqueTokenPrefix + strings.Repeat("Tk4", 14) + "y"
	jwtRaw := assertionJWT(t, w.jobKey, claims("111", nil))
	tests := []struct {
		name   string
		req    request
		secret string // must not be in the Attempt; "" means want is
		want   string
	}{
		{name: "secret as the Basic user name", req: request{header: http.Header{"Authorization": {basic(secret, "")}}}, secret: secret},
		{name: "secret and client ID swapped in Basic", req: request{header: http.Header{"Authorization": {basic(secret, "111")}}}, secret: secret},
		{name: "secret as client_id", req: request{form: url.Values{"client_id": {secret}, "client_secret": {secret}}}, secret: secret},
		{name: "access token as client_id", req: request{form: url.Values{"client_id": {token}, "client_secret": {"kw_wrong"}}}, secret: token},
		{name: "JWT as client_id", req: request{form: url.Values{"client_id": {jwtRaw}, "client_secret": {"kw_wrong"}}}, secret: jwtRaw},
		// Read from a file with its line break, as the old prefix check saw.
		{name: "secret with a line break as client_id", req: request{form: url.Values{"client_id": {secret + "\n"}, "client_secret": {"kw_wrong"}}}, secret: secret},
		{name: "secret with a space as the Basic user name", req: request{header: http.Header{"Authorization": {basic(" "+secret, "")}}}, secret: secret},
		{name: "JWT as client_id with a certificate", req: request{cert: w.strayCert.Leaf, form: url.Values{"client_id": {jwtRaw}}}, secret: jwtRaw},
		{name: "unknown email", req: request{header: http.Header{"Authorization": {basic("nobody@p.iam.test", "kw_wrong")}}}, want: "nobody@p.iam.test"},
		{name: "unknown ID", req: request{form: url.Values{"client_id": {"999"}, "client_secret": {"kw_wrong"}}}, want: "999"},
		{name: "unknown name", req: request{form: url.Values{"client_id": {"orders-job"}, "client_secret": {"kw_wrong"}}}, want: "orders-job"},
		// Shaped as oauth2.IsCredential says, as in the request log's path:
		// a dotted name or one starting kw_ without a secret's length is a
		// name, recorded.
		{name: "dotted name", req: request{form: url.Values{"client_id": {"orders.prod.job"}, "client_secret": {"kw_wrong"}}}, want: "orders.prod.job"},
		{name: "short kw_ name", req: request{form: url.Values{"client_id": {"kw_billing"}, "client_secret": {"kw_wrong"}}}, want: "kw_billing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, form, _ := tt.req.build("/token")
			var att Attempt
			c, err := w.authenticator().Authenticate(context.Background(), req, form, "192.0.2.1", &att)
			if err == nil {
				t.Fatalf("Authenticate = %v, want a failure", c)
			}
			if tt.secret == "" {
				if att.ClientID != tt.want {
					t.Errorf("Attempt.ClientID = %q, want %q", att.ClientID, tt.want)
				}
				return
			}
			if att.ClientID == "" || strings.Contains(att.ClientID, tt.secret[:16]) || strings.Contains(tt.secret, strings.TrimSuffix(att.ClientID, "…")) {
				t.Errorf("Attempt.ClientID = %q: holds the credential sent as the client ID, or nothing", att.ClientID)
			}
		})
	}
}

// The 429 of a client sending a credential as its ID names no credential
// in its cause, which the token endpoint logs: the throttle key holds the
// client ID as sent.
func TestThrottledCauseHoldsNoCredential(t *testing.T) {
	w := newWorld(t)
	secret := "kw_" + strings.Repeat("Zs9", 14) + "x"
	for _, hdr := range []string{basic(secret, ""), basic(secret, "111")} {
		a := w.authenticator()
		req := request{header: http.Header{"Authorization": {hdr}}, remote: "198.51.100.7"}
		var last error
		for range 20 {
			_, last = req.run(a)
		}
		var oe *oauth2.Error
		if !errors.As(last, &oe) || oe.HTTPStatus() != http.StatusTooManyRequests {
			t.Fatalf("after 20 failures: %v, want 429", last)
		}
		if strings.Contains(last.Error(), secret[:16]) {
			t.Errorf("the throttled answer's error holds the secret: %v", last)
		}
	}
}

// failingUsageStore fails its first fails flushes and records the rest.
type failingUsageStore struct {
	fails int
	got   []map[string]time.Time
}

func (s *failingUsageStore) TouchSecrets(_ context.Context, m map[string]time.Time) error {
	if s.fails > 0 {
		s.fails--
		return errors.New("store unavailable")
	}
	s.got = append(s.got, m)
	return nil
}

func TestFlushUsageKeepsTimesOfAFailedFlush(t *testing.T) {
	a := New(Config{}, nil)
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	a.usage.record("s1", t0)
	a.usage.record("s2", t0)
	st := &failingUsageStore{fails: 1}
	if err := a.FlushUsage(context.Background(), st); err == nil {
		t.Fatal("FlushUsage: want the store's error")
	}
	// s2 is used again between the failed flush and the next.
	a.usage.record("s2", t0.Add(time.Minute))
	if err := a.FlushUsage(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{"s1": t0, "s2": t0.Add(time.Minute)}
	if len(st.got) != 1 || fmt.Sprint(st.got[0]) != fmt.Sprint(want) {
		t.Fatalf("flushed %v, want [%v]", st.got, want)
	}
}

// TestParseBasicAllocs: Basic credentials of a usual size are decoded on
// the stack; the string the ID and secret are cut from is the one
// allocation. Longer ones are still read whole.
func TestParseBasicAllocs(t *testing.T) {
	id, secret := "sa-0123456789@project.keyward.example", "kw_"+strings.Repeat("Z", 43)
	enc := base64.StdEncoding.EncodeToString([]byte(id + ":" + secret))
	if n := testing.AllocsPerRun(100, func() { parseBasic(enc) }); n > 1 {
		t.Errorf("parseBasic: %v allocations, want 1", n)
	}
	long := strings.Repeat("s", 1000)
	if gotID, gotSecret, err := parseBasic(base64.StdEncoding.EncodeToString([]byte(id + ":" + long))); err != nil || gotID != id || gotSecret != long {
		t.Errorf("parseBasic of a %d-byte secret = %q, %d bytes, %v; want %q and the secret", len(long), gotID, len(gotSecret), err, id)
	}
}
