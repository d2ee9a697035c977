package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/dpop"
)

func newTokenCommand() *cobra.Command {
	var (
		path, caCert string
		scopes       []string
		output       string
		dpopKey      string
	)
	cmd := &cobra.Command{
		Use:   "token --key-file key.json --scopes s1,s2 [--dpop-key dpop.pem]",
		Short: "Print an access token for a service account, from its key file",
		Long: `Sign a JWT-bearer assertion with the key file's private key, exchange it at
the key file's token_uri, and print the access token, as
'gcloud auth print-access-token' does. No admin credentials are needed.

With --dpop-key, the token request carries a DPoP proof (RFC 9449) of that
private key, and the token is bound to the key (token_type DPoP): send it as
'Authorization: DPoP <token>' with a fresh proof from 'keyward dpop proof'
for each request. The key file must exist: make one with
'keyward dpop keygen'; the command never creates a key itself.`,
		Example: `  curl -H "Authorization: Bearer $(keyward token --key-file key.json \
    --scopes orders.read)" https://orders.internal/v1/orders

  keyward dpop keygen --out dpop.pem
  T=$(keyward token --key-file key.json --scopes orders.read \
    --dpop-key dpop.pem)
  U=https://orders.internal/v1/orders
  curl -H "Authorization: DPoP $T" \
    -H "DPoP: $(keyward dpop proof --dpop-key dpop.pem --url "$U" \
      --token "$T")" \
    "$U"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			from := "--key-file" // what named path, for errors
			if path == "" {
				path, from = os.Getenv("KEYWARD_CREDENTIALS"), "KEYWARD_CREDENTIALS"
			}
			if path == "" {
				return usageError{errors.New("--key-file is required (or set KEYWARD_CREDENTIALS)")}
			}
			s := splitList(scopes)
			if len(s) == 0 {
				return usageError{errors.New("--scopes is required: the scopes the token should carry")}
			}
			data, err := readKeyFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s %s does not exist; to make a key file there, run: %s", from, path, shellCommand("keyward", "keys", "create", "SA_EMAIL", "--out", path))
			}
			if err != nil {
				return fmt.Errorf("key file: %w", err)
			}
			kf, err := client.ParseKeyFile(data)
			if err != nil {
				return fmt.Errorf("%s: %w", path, unprefixed(err))
			}
			if err := plainHTTPTokenURI(kf.TokenURI, "get a key file of the server's https:// issuer ('keyward keys create', or 'keyward recover-admin' for the administrator's)"); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			transport, err := httpTransport(firstNonEmpty(caCert, os.Getenv("KEYWARD_CA_CERT")))
			if err != nil {
				return err
			}
			hc := &http.Client{Timeout: tokenTimeout, Transport: transport}
			if dpopKey != "" {
				key, _, err := readDPoPKey(dpopKey)
				if err != nil {
					return err
				}
				d, err := client.NewDPoP(key)
				if err != nil {
					return fmt.Errorf("--dpop-key %s: %w", dpopKey, unprefixed(err))
				}
				// The proof's htu is the request's URL, the key file's
				// token_uri: the token endpoint the server's metadata names.
				hc = d.HTTPClient(hc)
			}
			ts, err := client.JWTBearer(cmd.Context(), client.JWTBearerConfig{KeyFile: data, Scopes: s, HTTPClient: hc})
			if err != nil {
				return fmt.Errorf("%s: %w", path, unprefixed(err))
			}
			tok, err := ts.Token()
			if err != nil {
				return retrieveError(kf.TokenURI, ofKeyFile((*tlsProbes)(nil).plainToTLS(cmd.Context(), kf.TokenURI, err), path, false))
			}
			// A server that does not know DPoP ignores the proof and
			// issues a bearer token: not what was asked for.
			if dpopKey != "" && !strings.EqualFold(tok.Type(), dpop.Scheme) {
				return fmt.Errorf("%s issued a %s token, not a DPoP-bound one: the server does not support DPoP (RFC 9449)", kf.TokenURI, tok.Type())
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), map[string]any{
					"access_token": tok.AccessToken, "token_type": tok.TokenType,
					"expires_in": int64(time.Until(tok.Expiry).Round(time.Second) / time.Second), "scope": tok.Extra("scope"),
				})
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(tok.AccessToken))
			return err
		},
	}
	cmd.Flags().StringVar(&path, "key-file", "", "service-account JSON key file (default: $KEYWARD_CREDENTIALS)")
	cmd.Flags().StringSliceVar(&scopes, "scopes", nil, "scopes to request, comma-separated (required)")
	cmd.Flags().StringVar(&dpopKey, "dpop-key", "", "bind the token to this DPoP private key, a PEM file ('keyward dpop keygen' makes one)")
	cmd.Flags().StringVar(&caCert, "ca-cert", "", "PEM file of the CA that signed the server's TLS certificate (default: $KEYWARD_CA_CERT, else the system's)")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

// reworded is err told in words of its own; errors.Is and errors.As still
// see err.
type reworded struct {
	msg string
	err error
}

func (e reworded) Error() string { return e.msg }
func (e reworded) Unwrap() error { return e.err }

// unprefixed is err, of the client package, without the package's
// "client: " prefix, which means nothing to an operator; errors.Is and
// errors.As still see err. The package's errors keep it for its users.
func unprefixed(err error) error {
	if msg, ok := strings.CutPrefix(err.Error(), "client: "); ok {
		return reworded{msg, err}
	}
	return err
}

// retrieveError describes a failed token request with the server's OAuth
// error code and description, or, without an answer, the cause alone.
func retrieveError(tokenURL string, err error) error {
	var re *oauth2.RetrieveError
	if notTokenAnswer(err) {
		return reworded{fmt.Sprintf("%s answered with something other than an OAuth token response: is it Keyward's token endpoint?", tokenURL), err}
	}
	if !errors.As(err, &re) {
		return reworded{fmt.Sprintf("cannot get a token from %s: %s", tokenURL, connProblem(err)), err}
	}
	if re.ErrorCode == "" {
		return fmt.Errorf("%s refused the request: HTTP %d", tokenURL, re.Response.StatusCode)
	}
	// Shown as cell shows text: what a server (or a proxy before it) says
	// reaches the operator's terminal, escape sequences and all, otherwise.
	return fmt.Errorf("%s refused the request: %s: %s", tokenURL, cell(re.ErrorCode), cell(re.ErrorDescription))
}
