package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/capool"
	kwoauth2 "github.com/keyward/keyward/internal/oauth2"
)

// clientFlags are the flags of every command that talks to the admin API.
type clientFlags struct {
	server      string
	credentials string
	caCert      string
	output      string
	// ifMatch is --if-match of the command that runs, if it has the flag
	// (see ifMatchFlag).
	ifMatch string
	// noEnvCA keeps an empty caCert from defaulting to KEYWARD_CA_CERT:
	// for bench's own server, which the environment is not about.
	noEnvCA bool
}

func (f *clientFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.server, "server", "", "Keyward base URL (default: $KEYWARD_SERVER, else the server named in the credentials file)")
	pf.StringVar(&f.credentials, "credentials", "", "administrator key file (default: $KEYWARD_CREDENTIALS, else ./keyward-data/admin-key.json)")
	pf.StringVar(&f.caCert, "ca-cert", "", "PEM file of the CA that signed the server's TLS certificate (default: $KEYWARD_CA_CERT, else the system's)")
	addOutputFlag(pf, &f.output)
}

type flagAdder interface {
	StringVarP(p *string, name, shorthand, value, usage string)
}

func addOutputFlag(fs flagAdder, p *string) {
	fs.StringVarP(p, "output", "o", "table", "output format: table or json")
}

func checkOutput(o string) error {
	if o != "table" && o != "json" {
		return usageError{fmt.Errorf("--output %q must be table or json", o)}
	}
	return nil
}

// adminClient calls the admin REST API with an access token it obtains
// from the administrator key file, as any service account would.
type adminClient struct {
	base string
	// from names where base came from: --server, KEYWARD_SERVER or the
	// key file's token_uri.
	from   string
	http   *http.Client
	output string
	out    io.Writer
	// ifMatch, if set, is sent as If-Match with every request but a GET.
	ifMatch string
	// etag is the ETag of the last response, if it had one: show prints
	// it with the resource.
	etag string
	// date is the Date of the last response, the server's clock when it
	// answered (to the second), if it had a valid one: audit list pins
	// a duration ago by it for its later pages, and --follow tells by it
	// whether --until is past for the server.
	date time.Time
	// probes keeps what the TLS probe found of a host, asked once per
	// command (audit list --follow retries); nil keeps nothing.
	probes *tlsProbes
}

func (f *clientFlags) client(cmd *cobra.Command) (*adminClient, error) {
	if err := checkOutput(f.output); err != nil {
		return nil, err
	}
	creds := firstNonEmpty(f.credentials, os.Getenv("KEYWARD_CREDENTIALS"))
	if creds == "" {
		def := filepath.Join(DefaultConfig().DataDir, "admin-key.json")
		if !fileExists(def) {
			return nil, fmt.Errorf("no credentials: %s (the default) does not exist; pass --credentials FILE or set KEYWARD_CREDENTIALS to an administrator key file (keyward serve writes one to <data-dir>/admin-key.json on first start)", def)
		}
		creds = def
	}
	data, err := readKeyFile(creds)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	kf, err := client.ParseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", creds, unprefixed(err))
	}
	server, from := f.server, "--server"
	if server == "" {
		server, from = os.Getenv("KEYWARD_SERVER"), "KEYWARD_SERVER"
	}
	var base, tokenURL string // tokenURL "": the key file's token_uri
	if server != "" {
		if err := checkServerURL(from, server); err != nil {
			return nil, usageError{err}
		}
		// Talk to this server (a replica, say) but keep the assertion's
		// audience: the issuer's token endpoint named in the key file.
		base = strings.TrimRight(server, "/")
		tokenURL = base + kwoauth2.TokenPath
	} else {
		if err := checkTokenURI(creds+": token_uri", kf.TokenURI); err != nil {
			return nil, fmt.Errorf("%w; pass --server with the server's URL", err)
		}
		if err := plainHTTPTokenURI(kf.TokenURI, "get a key file of the server's https:// issuer ('keyward keys create', or 'keyward recover-admin' for the administrator's), or pass --server with the server's URL to call it over plain HTTP all the same"); err != nil {
			return nil, fmt.Errorf("%s: %w", creds, err)
		}
		base, from = strings.TrimSuffix(kf.TokenURI, kwoauth2.TokenPath), creds+": token_uri"
	}
	caCert := f.caCert
	if !f.noEnvCA {
		caCert = firstNonEmpty(caCert, os.Getenv("KEYWARD_CA_CERT"))
	}
	transport, err := httpTransport(caCert)
	if err != nil {
		return nil, err
	}
	ctx := cmd.Context()
	ts, err := client.JWTBearer(ctx, client.JWTBearerConfig{KeyFile: data, Scopes: []string{"keyward.admin"}, TokenURL: tokenURL,
		HTTPClient: &http.Client{Timeout: tokenTimeout, Transport: transport}})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", creds, unprefixed(err))
	}
	hc := &http.Client{Timeout: adminTimeout, Transport: &oauth2.Transport{Source: ts, Base: transport},
		CheckRedirect: sameHostRedirects}
	return &adminClient{base: base, from: from, http: hc, output: f.output, out: cmd.OutOrStdout(), ifMatch: f.ifMatch, probes: &tlsProbes{}}, nil
}

// checkServerURL says what is wrong with raw, named by name, as the URL of
// a Keyward server: it must be http or https and name a host.
func checkServerURL(name, raw string) error {
	return checkURL(name, raw, "a base URL", "https://keyward.internal")
}

// checkTokenURI says what is wrong with raw, named by name, as a key
// file's token_uri: the server's token endpoint, whose base URL the admin
// commands derive from it.
func checkTokenURI(name, raw string) error {
	const example = "https://keyward.internal/token"
	if err := checkURL(name, raw, "the token endpoint's URL", example); err != nil {
		return err
	}
	// The base URL is what comes before /token: of any other path, the
	// admin API's paths would be appended to the token endpoint's. raw
	// itself must end so (not /%74oken), as it is what is cut off.
	if u, _ := url.Parse(raw); !strings.HasSuffix(u.Path, kwoauth2.TokenPath) || !strings.HasSuffix(raw, kwoauth2.TokenPath) {
		return fmt.Errorf("%s %q must be Keyward's token endpoint, whose path ends in /token, such as %s", name, raw, example)
	}
	return nil
}

// plainHTTPTokenURI refuses a key file's token_uri, where token requests
// are to go, that is plain http:// to a host that is not loopback, as the
// client package does, with remedy, what to do in the CLI's terms.
func plainHTTPTokenURI(uri, remedy string) error {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || kwoauth2.IsLoopbackHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("the key file's token_uri %q is plain http:// to a host that is not loopback, so the signed assertion and the token would cross the network unencrypted: %s", kwoauth2.RedactURL(uri), remedy)
}

// checkURL checks raw as checkServerURL does; what and example word the
// error for the URL it should be.
func checkURL(name, raw, what, example string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s %q must be an http:// or https:// URL with a host, such as %s", name, kwoauth2.RedactURL(raw), example)
	}
	// Paths are appended to it: a query or fragment would end up in the
	// middle of them, and a user name and password would go to the token
	// endpoint as client credentials (and into its error, to the screen).
	// An empty fragment ("…/token#") leaves u.Fragment empty too.
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		shown := raw // u.String() drops an empty fragment's "#"
		if u.User != nil {
			shown = u.Redacted()
		}
		return fmt.Errorf("%s %q must be %s without a user name, password, query or fragment, such as %s", name, shown, what, example)
	}
	return nil
}

// sameHostRedirects follows redirects within the server only: the
// transport would add the administrator's token to a request to any other
// host it were sent to.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Scheme != via[0].URL.Scheme || req.URL.Host != via[0].URL.Host {
		return fmt.Errorf("refusing to follow a redirect to %s://%s: the administrator's token would go with it; point --server at the server itself", req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// httpTransport trusts caFile, if given, for the server's certificate.
func httpTransport(caFile string) (http.RoundTripper, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	if caFile == "" {
		return t, nil
	}
	pem, err := readKeyFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-cert: %w", err)
	}
	pool, err := capool.Parse("--ca-cert", caFile, pem)
	if err != nil {
		return nil, err
	}
	t.TLSClientConfig = &tls.Config{RootCAs: pool}
	return t, nil
}

// maxKeyFile bounds what is read of a key, certificate, credentials or
// settings file: the largest such file (a CA bundle) is a few hundred KiB,
// so a larger one was named by mistake, and it was read whole (a /dev/zero
// until memory ran out).
const maxKeyFile = 1 << 20

// readKeyFile reads the key, certificate or credentials file path, of at
// most maxKeyFile bytes.
func readKeyFile(path string) ([]byte, error) {
	return readSmallFile(path, "a key or certificate file")
}

// readSmallFile reads path, of at most maxKeyFile bytes; what names the
// kind of file it should be ("a settings file").
func readSmallFile(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readUpTo(f, path, what, maxKeyFile)
}

// readUpTo reads r, named name, of at most limit bytes; what names the
// kind of file it should be.
func readUpTo(r io.Reader, name, what string, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d MiB, far more than %s holds: is it the right file?", name, limit>>20, what)
	}
	return b, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// apiError is an error response of the admin API.
type apiError struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
	// foreign, if set, is the answer, which was not the admin API's JSON
	// error: what Error says.
	foreign *foreignAnswer
}

// Error is printed on the operator's terminal: what the server sent is
// quoted if it holds anything unprintable, such as an escape sequence.
func (e *apiError) Error() string {
	switch {
	case e.foreign != nil:
		return e.foreign.Error()
	case e.Description != "" && e.Code != "":
		return cell(e.Description) + " (" + cell(e.Code) + ")"
	case e.Description != "":
		return cell(e.Description)
	}
	return fmt.Sprintf("%s (HTTP %d)", cell(e.Code), e.Status)
}

// foreignAnswer is an answer that is not the admin API's JSON (a proxy's
// login or error page, another web server's), or, of a status of 300 or
// more, JSON without the admin API's "error".
type foreignAnswer struct {
	url         string
	status      int
	contentType string
	body        []byte
	// from names where the base URL came from (adminClient.from).
	from string
}

func (a *foreignAnswer) Error() string {
	ct := "no Content-Type"
	if a.contentType != "" {
		ct = "Content-Type " + bodyStart([]byte(a.contentType))
	}
	begins := "The answer was empty."
	if s := bodyStart(a.body); s != "" {
		begins = "The answer begins: " + s
	}
	return fmt.Sprintf("the server at %s answered %s with %s, not the admin API's JSON: is %s Keyward's URL, or does a proxy in front of it answer instead? %s",
		a.url, httpStatus(a.status), ct, a.from, begins)
}

// httpStatus is "HTTP 502 Bad Gateway", or "HTTP 599" of a status Go has
// no name for.
func httpStatus(st int) string {
	if text := http.StatusText(st); text != "" {
		return fmt.Sprintf("HTTP %d %s", st, text)
	}
	return fmt.Sprintf("HTTP %d", st)
}

// bodyStart is the start of an answer's body to show on the operator's
// terminal: its runs of white space made one space, clipped to 80
// characters, and passed through cell.
func bodyStart(b []byte) string {
	const max = 80
	s := strings.Join(strings.Fields(string(b[:min(len(b), 4*max)])), " ")
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return cell(s)
}

// tokenTimeout and adminTimeout bound a token request and an admin API
// request (with the token request it may make); connProblem names them.
var (
	tokenTimeout = 30 * time.Second
	adminTimeout = 60 * time.Second
	// dialTimeout bounds the making of a connection (http.DefaultTransport's).
	dialTimeout = 30 * time.Second
)

// unreachableError is a request that got no complete answer: the server is
// down or restarting, or the connection broke.
type unreachableError struct {
	base string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach Keyward at %s: %s", e.base, connProblem(e.err))
}

// connProblem words err, of a request that got no answer: the cause alone,
// not each request that led to it ('Get ".../v1/...": Post ".../token":
// dial tcp ...' is the same URL twice over), with what to do where the
// cause says it.
func connProblem(err error) string {
	var tlsErr speaksTLSError
	if errors.As(err, &tlsErr) {
		var re *oauth2.RetrieveError
		if errors.As(tlsErr.err, &re) {
			// Its words are the server's, Go's "Client sent an HTTP
			// request to an HTTPS server", say.
			return fmt.Sprintf("it answered HTTP %d; %s", retrieveStatus(re), tlsErr.hint())
		}
		return connProblem(tlsErr.err) + "; " + tlsErr.hint()
	}
	reqURL := ""
	for {
		ue, ok := err.(*url.Error)
		if !ok {
			break
		}
		err, reqURL = ue.Err, ue.URL
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" && op.Timeout() {
		// Go's words are "dial tcp ...: i/o timeout".
		return fmt.Sprintf("could not connect within %v: the host is down, or a firewall on the way drops the connection", dialTimeout)
	}
	if reqURL != "" && timedOut(err) {
		// Go's words are "context deadline exceeded (Client.Timeout
		// exceeded while awaiting headers)".
		d := adminTimeout
		if u, perr := url.Parse(reqURL); perr == nil && strings.HasSuffix(u.Path, kwoauth2.TokenPath) {
			d = tokenTimeout
		}
		return fmt.Sprintf("no answer within %v: the server is overloaded or stuck, or a firewall or proxy on the way holds the request", d)
	}
	// errors.As finds it inside a *tls.CertificateVerificationError too.
	var unknownCA x509.UnknownAuthorityError
	hint := ""
	switch {
	case errors.As(err, &unknownCA):
		hint = "; if a private CA signed the server's certificate, pass it with --ca-cert (or KEYWARD_CA_CERT)"
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		hint = "; the server speaks plain HTTP: use an http:// URL"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// Go's words are a bare "EOF".
		return "the connection was closed without an answer: the server stopped or restarted meanwhile, or what listens there is not Keyward (or is a proxy that dropped the request)"
	}
	// The client package's refusal of a redirect, say.
	return unprefixed(err).Error() + hint
}

func (e *unreachableError) Unwrap() error { return e.err }

// timedOut says whether err is a request's time running out (an
// http.Client's Timeout), not the command's context ended.
func timedOut(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, context.Canceled)
}

// speaksTLSError is err, of a plain-HTTP request to a server found to
// speak TLS on that port.
type speaksTLSError struct {
	err error
	// keyFile, if set, is the key file whose token_uri is the URL: the
	// operator gave none. serverFlag says the command takes --server.
	keyFile    string
	serverFlag bool
}

func (e speaksTLSError) Error() string { return e.err.Error() }

// hint says what to do about the URL: of a key file's token_uri, which
// is also the aud of the assertion the key file signs (the issuer's token
// endpoint, checked by the server), a new key file; --server with the
// https:// URL is heard only while the server's issuer is the old one.
func (e speaksTLSError) hint() string {
	if e.keyFile == "" {
		return "the server speaks TLS: use an https:// URL"
	}
	h := fmt.Sprintf("the server speaks TLS, but the token_uri of the key file %s is an http:// URL, which is also the aud of the assertions it signs: "+
		"get a new key file, whose token_uri is the server's https:// one ('keyward keys create', or 'keyward recover-admin' for the administrator's)", e.keyFile)
	if e.serverFlag {
		h += "; while the server's --issuer is still the http:// one, --server with its https:// URL works too"
	}
	return h
}

// ofKeyFile returns err, if a speaksTLSError, as one of the token_uri of
// keyFile; serverFlag says the command takes --server.
func ofKeyFile(err error, keyFile string, serverFlag bool) error {
	if st, ok := err.(speaksTLSError); ok {
		st.keyFile, st.serverFlag = keyFile, serverFlag
		return st
	}
	return err
}
func (e speaksTLSError) Unwrap() error { return e.err }

// proxyFor is the proxy that carries a request, as httpTransport's
// (http.DefaultTransport's) Proxy picks it: nil for none.
var proxyFor = http.ProxyFromEnvironment

// tlsProbeTimeout bounds probeTLS.
const tlsProbeTimeout = 3 * time.Second

// tlsProbes keeps what probeTLS found of each host:port, so that a
// command asks a host once. A nil *tlsProbes keeps nothing.
type tlsProbes struct {
	mu    sync.Mutex
	found map[string]bool
}

// plainToTLS returns err as a speaksTLSError if it is the failure of a
// request to base, an http:// URL, whose host answers a TLS handshake:
// a TLS server answers plain HTTP with a reset, a TLS alert net/http
// calls a "malformed HTTP response", or Go's "Client sent an HTTP request
// to an HTTPS server", which of them depending on the server and timing,
// so the port is asked rather than the error read. A complete HTTP
// answer other than Go's 400 is of a server that speaks plain HTTP, and
// is not followed by a probe: against such a server, which waits for a
// request line, the probe would wait out tlsProbeTimeout.
func (p *tlsProbes) plainToTLS(ctx context.Context, base string, err error) error {
	u, perr := url.Parse(base)
	var re *oauth2.RetrieveError
	if perr != nil || u.Scheme != "http" || timedOut(err) || errors.Is(err, context.Canceled) ||
		(errors.As(err, &re) && (re.ErrorCode != "" || re.Response != nil && !tlsPortAnswer(re))) || notTokenAnswer(err) {
		return err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return err // nothing listens there, or the host is unknown
	}
	if p, perr := proxyFor(&http.Request{URL: u}); perr != nil || p != nil {
		// A proxy carries the request: the host may be reachable only
		// through it, and a probe would dial it past the proxy.
		return err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	if p.probe(ctx, host, u.Hostname()) {
		return speaksTLSError{err: err}
	}
	return err
}

// probe is probeTLS of hostport, asked once: a later call answers what
// the first found.
func (p *tlsProbes) probe(ctx context.Context, hostport, serverName string) bool {
	if p == nil {
		return probeTLS(ctx, hostport, serverName)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if speaks, ok := p.found[hostport]; ok {
		return speaks
	}
	speaks := probeTLS(ctx, hostport, serverName)
	if ctx.Err() != nil {
		return speaks // cut short: not an answer to keep
	}
	if p.found == nil {
		p.found = make(map[string]bool)
	}
	p.found[hostport] = speaks
	return speaks
}

// tlsPortAnswer says whether re is Go's answer, on a TLS port, to a
// plain-HTTP request: 400 "Client sent an HTTP request to an HTTPS
// server."
func tlsPortAnswer(re *oauth2.RetrieveError) bool {
	return retrieveStatus(re) == http.StatusBadRequest &&
		strings.Contains(strings.ToLower(string(re.Body)), "client sent an http request to an https server")
}

// probeTLS says whether hostport completes a TLS handshake, or answers
// one with a TLS alert (it wants a client certificate, say). It gives up
// when ctx, the command's, ends (Ctrl-C).
func probeTLS(ctx context.Context, hostport, serverName string) bool {
	ctx, cancel := context.WithTimeout(ctx, tlsProbeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return false
	}
	defer conn.Close()
	// Only whether it speaks TLS is asked; nothing is sent over it.
	tc := tls.Client(conn, &tls.Config{ServerName: serverName, InsecureSkipVerify: true}) //nolint:gosec // a probe, no data sent
	err = tc.HandshakeContext(ctx)
	var alert tls.AlertError
	return err == nil || errors.As(err, &alert)
}

// transient says whether err may go away by itself: the server could not
// be reached, or answered that it is overloaded or restarting. A server
// that speaks TLS to an http:// URL is a wrong URL, not an outage.
func transient(err error) bool {
	var ue *unreachableError
	var ae *apiError
	var st speaksTLSError
	switch {
	case errors.As(err, &st):
		return false
	case errors.As(err, &ue):
		return true
	case errors.As(err, &ae):
		switch ae.Status {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}

// maxAnswer is the most of an admin API answer do reads.
const maxAnswer = 16 << 20

// do sends a JSON request and decodes the JSON response into out.
func (c *adminClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+escapeDotSegments(path), body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.ifMatch != "" && method != http.MethodGet {
		req.Header.Set("If-Match", c.ifMatch)
	}
	c.etag, c.date = "", time.Time{}
	resp, err := c.http.Do(req)
	if err != nil {
		var re *oauth2.RetrieveError
		if err2 := c.probes.plainToTLS(ctx, c.base, err); err2 != err {
			if keyFile, ok := strings.CutSuffix(c.from, ": token_uri"); ok {
				err2 = ofKeyFile(err2, keyFile, true)
			}
			return &unreachableError{base: c.base, err: err2}
		}
		if errors.As(err, &re) {
			if st := retrieveStatus(re); st >= 500 || st == http.StatusTooManyRequests {
				// The server failed or is overloaded, not the credentials:
				// an apiError, so that transient sees it (audit --follow).
				e := &apiError{Status: st, Code: re.ErrorCode, Description: fmt.Sprintf("%s could not issue the administrator's token: HTTP %d", c.base+kwoauth2.TokenPath, st)}
				if e.Code == "" {
					e.Code = http.StatusText(st)
				}
				if re.ErrorDescription != "" {
					e.Description += ": " + re.ErrorDescription
				}
				return e
			}
			if notTokenEndpoint(re) {
				got := fmt.Sprintf("HTTP %d", retrieveStatus(re))
				if re.ErrorCode != "" {
					got += " " + cell(re.ErrorCode)
				}
				return c.notKeyward(got)
			}
			return fmt.Errorf("the administrator credentials were refused: %w", retrieveError(c.base+kwoauth2.TokenPath, err))
		}
		if notTokenAnswer(err) {
			return c.notKeyward("its answer is not an OAuth token response")
		}
		return &unreachableError{base: c.base, err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return &unreachableError{base: c.base, err: fmt.Errorf("the answer was cut off: %w", err)}
	}
	if len(b) > maxAnswer {
		// Cut here, it would read as an answer that is not JSON, from
		// something other than Keyward.
		u := *resp.Request.URL
		u.RawQuery = ""
		return fmt.Errorf("the server at %s answered %s with more than %d MiB, more than this client reads (of audit list, give a smaller --limit)",
			u.Redacted(), httpStatus(resp.StatusCode), maxAnswer>>20)
	}
	foreign := func() *foreignAnswer {
		u := *resp.Request.URL
		u.RawQuery = ""
		return &foreignAnswer{url: u.Redacted(), status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: b, from: c.from}
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || e.Code == "" {
			*e = apiError{Status: resp.StatusCode, foreign: foreign()}
		}
		return e
	}
	// Every answer of the admin API with a body is JSON: one that is
	// not, even of a request that wants none back, came from something
	// else, which did not do what was asked.
	if len(b) > 0 && !json.Valid(b) {
		return foreign()
	}
	c.etag = resp.Header.Get("ETag")
	c.date, _ = http.ParseTime(resp.Header.Get("Date"))
	if out == nil || len(b) == 0 {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], b...)
		return nil
	}
	return json.Unmarshal(b, out)
}

// escapeDotSegments escapes the segments "." and ".." of path (up to its
// query), which url.PathEscape leaves as they are: an argument that is one
// of them names itself, not the path's parent. Unescaped, the server
// redirects the request to the clean path and it is sent there ('keys
// delete SA ..' deleted the account, 'keys disable SA ..' disabled it).
func escapeDotSegments(path string) string {
	p, query, hasQuery := strings.Cut(path, "?")
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if s == "." || s == ".." {
			segs[i] = strings.Repeat("%2E", len(s))
		}
	}
	p = strings.Join(segs, "/")
	if hasQuery {
		p += "?" + query
	}
	return p
}

// notTokenEndpoint says whether a failed token request was answered by
// something other than a token endpoint: Keyward's answers a token request
// it refuses with 400 or 401 and an RFC 6749 §5.2 code, never 404 or 405,
// nor with the admin API's invalid_token or not_found (a --server with a
// path, such as .../v1).
func notTokenEndpoint(re *oauth2.RetrieveError) bool {
	switch st := retrieveStatus(re); {
	case st == http.StatusNotFound, st == http.StatusMethodNotAllowed:
		return true
	case re.ErrorCode == "invalid_token", re.ErrorCode == "not_found":
		return true
	}
	return false
}

// notTokenAnswer says whether err, of a token request, is an answer of
// success that is not a token response (a web server's HTML page, say):
// golang.org/x/oauth2 reports it in words alone, the client package as
// client.ErrNotTokenResponse (an answer that is no JSON object).
func notTokenAnswer(err error) bool {
	for {
		ue, ok := err.(*url.Error)
		if !ok {
			break
		}
		err = ue.Err
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "oauth2: cannot parse ") || msg == "oauth2: server response missing access_token" ||
		errors.Is(err, client.ErrNotTokenResponse)
}

// notKeyward is the error for a token request that no token endpoint
// answered: the base URL is wrong, not the credentials. got says what
// came back instead ("HTTP 404").
func (c *adminClient) notKeyward(got string) error {
	if strings.HasSuffix(c.from, "token_uri") {
		return fmt.Errorf("%s is not Keyward's token endpoint (%s): %s is wrong; pass --server with Keyward's base URL, such as https://keyward.internal", c.base+kwoauth2.TokenPath, got, c.from)
	}
	return fmt.Errorf("%s is not Keyward's token endpoint (%s): %s %q must be Keyward's base URL, under which /token and /v1/ are, such as https://keyward.internal", c.base+kwoauth2.TokenPath, got, c.from, c.base)
}

// retrieveStatus is the HTTP status of a failed token request, 0 if unknown.
func retrieveStatus(re *oauth2.RetrieveError) int {
	if re.Response == nil {
		return 0
	}
	return re.Response.StatusCode
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// show prints v as JSON with -o json, or as a table drawn by table. When
// the response v came in had an ETag (an account, an API, an
// organization, a key or a secret), the JSON object gets it as a last
// member "etag", and the table as a last line "ETag:", to pass to
// --if-match.
func (c *adminClient) show(v any, table func(w *tabwriter.Writer)) error {
	if c.output == "json" {
		if c.etag == "" {
			return printJSON(c.out, v)
		}
		return printJSON(c.out, withETag{v, c.etag})
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	table(tw)
	if c.etag != "" {
		fmt.Fprintf(tw, "ETag:\t%s\n", c.etag)
	}
	return tw.Flush()
}

// withETag marshals as the JSON object v with a last member "etag".
type withETag struct {
	v    any
	etag string
}

func (w withETag) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(w.v)
	if err != nil {
		return nil, err
	}
	tag, err := json.Marshal(w.etag)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '{' {
		return nil, fmt.Errorf("cannot add an etag to %s", b)
	}
	sep := ","
	if bytes.Equal(b, []byte("{}")) {
		sep = ""
	}
	return fmt.Appendf(b[:len(b)-1:len(b)-1], `%s"etag":%s}`, sep, tag), nil
}

// ifMatchFlag gives cmd, whose request the admin API makes only if the
// resource is still as --if-match says, that flag, and turns a 412 into
// what to do: reread gives the arguments of the keyward command that shows
// the resource as it is.
func ifMatchFlag(f *clientFlags, cmd *cobra.Command, what string, reread func(args []string) []string) {
	var tag string
	cmd.Flags().StringVar(&tag, "if-match", "", "act only if the "+what+" is still as `ETAG` (from its 'get', quotes optional) says; if it changed since, nothing is done (HTTP 412)")
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		// The HTTP client refuses such a header before sending it, which
		// would be reported as the server being unreachable.
		if strings.ContainsFunc(tag, unicode.IsControl) {
			return usageError{fmt.Errorf("--if-match %q is not an ETag: give it as its 'get' shows it", tag)}
		}
		f.ifMatch = ifMatchValue(tag)
		err := run(cmd, args)
		if ae, ok := errors.AsType[*apiError](err); ok && ae.Status == http.StatusPreconditionFailed {
			return &staleError{ae, shellCommand(append([]string{"keyward"}, reread(args)...)...)}
		}
		return err
	}
}

// ifMatchValue is --if-match as a header value: an entity tag keeps its
// quotes (and a W/ its weakness, which never matches), "*" stays, and a
// bare tag, its quotes lost to the shell, is quoted.
func ifMatchValue(tag string) string {
	tag = strings.TrimSpace(tag)
	if tag == "" || tag == "*" || strings.HasPrefix(tag, `"`) || strings.HasPrefix(tag, `W/"`) {
		return tag
	}
	return `"` + tag + `"`
}

// staleError is a 412: the resource changed since the ETag given.
type staleError struct {
	*apiError
	reread string
}

func (e *staleError) Error() string {
	return fmt.Sprintf("%s\nNothing was done. To see it as it is now, with the ETag to pass to --if-match if your change still applies, run: %s",
		e.apiError.Error(), e.reread)
}

func (e *staleError) Unwrap() error { return e.apiError }

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func splitList(s []string) []string {
	var out []string
	for _, v := range s {
		for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			out = append(out, p)
		}
	}
	return out
}

// itemCommand is a command that sends method to the path built from its
// arguments and shows the one resource (or one list) the admin API
// returns.
func itemCommand[T any](f *clientFlags, use, short string, nargs int, method string, path func(args []string) string, table func(*tabwriter.Writer, T)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(nargs),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var v T
			if err := c.do(cmd.Context(), method, path(args), nil, &v); err != nil {
				return err
			}
			return c.show(v, func(w *tabwriter.Writer) { table(w, v) })
		},
	}
}

// accountPath is the admin API path of an account's sub-resource.
func accountPath(sa string, parts ...string) string {
	p := "/v1/service-accounts/" + url.PathEscape(sa)
	for _, part := range parts {
		p += "/" + url.PathEscape(part)
	}
	return p
}
