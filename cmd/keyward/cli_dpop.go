package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/dpop"
	"github.com/keyward/keyward/internal/keyfile"
)

func newDPoPCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dpop",
		Short: "Make DPoP keys and proofs, for DPoP-bound tokens (RFC 9449)",
		Long: `A DPoP-bound token is useless without the private key it is bound to: each
request carries, besides the token, a fresh proof signed with that key for
the request's method and URL. These commands make the key and the proofs,
for trying a DPoP-protected API with curl; 'keyward token --dpop-key' gets
the token.`,
		Example: `  keyward dpop keygen --out dpop.pem
  T=$(keyward token --key-file key.json --scopes orders.read \
    --dpop-key dpop.pem)
  U=https://orders.internal/v1/orders
  curl -H "Authorization: DPoP $T" \
    -H "DPoP: $(keyward dpop proof --dpop-key dpop.pem --url "$U" \
      --token "$T")" \
    "$U"`,
	}
	cmd.AddCommand(newDPoPKeygenCommand(), newDPoPProofCommand())
	return cmd
}

// dpopKeyAlgs are the keys 'dpop keygen' makes, by the algorithm their
// proofs are signed with (dpop.NewProver picks it from the key).
var dpopKeyAlgs = map[string]func() (crypto.Signer, error){
	"ES256": func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) },
	"ES384": func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) },
	"EdDSA": func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	},
	"RS256": func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) },
}

func dpopKeyAlgNames() []string {
	names := make([]string, 0, len(dpopKeyAlgs))
	for n := range dpopKeyAlgs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func newDPoPKeygenCommand() *cobra.Command {
	var out, alg, output string
	cmd := &cobra.Command{
		Use:   "keygen --out dpop.pem",
		Short: "Generate a DPoP private key and write it to a PEM file",
		Long: `Generate a private key for DPoP proofs and write it, PKCS #8 PEM, to a new
file with mode 0600; an existing file is never overwritten, since tokens may
be bound to the key in it. Print the key's JWK thumbprint: the cnf.jkt of
the tokens bound to it.

The key stays on this machine: the server learns only its public half, from
the proofs. Any PKCS #8 key of these types works as well, such as one from
'openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256'.`,
		Example: `  keyward dpop keygen --out dpop.pem
  keyward dpop keygen --out dpop.pem --alg EdDSA`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			switch out {
			case "":
				return usageError{errors.New("--out is required: the file to write the new key to")}
			case "-":
				return usageError{errors.New("--out must be a file: the key is written only to a new file of mode 0600")}
			}
			i := slices.IndexFunc(dpopKeyAlgNames(), func(n string) bool { return strings.EqualFold(n, alg) })
			if i < 0 {
				return usageError{fmt.Errorf("--alg %q must be one of %s", alg, strings.Join(dpopKeyAlgNames(), ", "))}
			}
			alg = dpopKeyAlgNames()[i]
			// Lstat: a directory or a symbolic link, dangling or not, is
			// in the way too.
			if _, err := os.Lstat(out); err == nil {
				return errKeygenExists(out)
			}
			gen := dpopKeyAlgs[alg]
			key, err := gen()
			if err != nil {
				return err
			}
			p, err := dpop.NewProver(key)
			if err != nil {
				return err
			}
			der, err := x509.MarshalPKCS8PrivateKey(key)
			if err != nil {
				return err
			}
			err, tempLeft := writtenTempLeft(writeNewFile(out, func(w io.Writer) error {
				return pem.Encode(w, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
			}))
			if errors.Is(err, fs.ErrExist) {
				return sayInstead(errKeygenExists(out), err) // made meanwhile, and left as it is
			}
			if err != nil {
				return err
			}
			// Its temporary file, a second name of it, is left.
			warnTempLeft(cmd.ErrOrStderr(), out, tempLeft)
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), map[string]string{"file": out, "alg": alg, "jkt": p.JKT()})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote a new %s DPoP key to %s; its thumbprint, the cnf.jkt of tokens bound to it: %s\n", alg, out, p.JKT())
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the key to (mode 0600; must not exist) (required)")
	cmd.Flags().StringVar(&alg, "alg", "ES256", "signature algorithm of the proofs, which decides the key: "+strings.Join(dpopKeyAlgNames(), ", ")+" (RSA 2048 bits)")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

// errKeygenExists is dpop keygen's refusal of an --out that exists. A
// directory is not a key to keep: it is a name for a file that was missed.
func errKeygenExists(out string) error {
	if fi, err := os.Lstat(out); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory; name a file for the new key with --out", out)
	}
	return fmt.Errorf("%s exists: keygen never overwrites a key, since tokens may be bound to it; remove the file first, or choose another --out", out)
}

func newDPoPProofCommand() *cobra.Command {
	var keyPath, method, rawURL, token, tokenFile, nonce string
	cmd := &cobra.Command{
		Use:   "proof --dpop-key dpop.pem --url URL",
		Short: "Print a fresh DPoP proof for one request, for its DPoP header",
		Long: `Print a DPoP proof (RFC 9449 §4): a JWT signed with the key of --dpop-key for
one request, by its method and URL (the query and fragment are left out of
the proof, as the RFC says). With --token, the access token sent with the
request (or --token-file, a file of at most 64 KiB holding it, - for
standard input), the proof carries the token's hash (ath), as APIs
require for a DPoP-bound token. An empty --token (--token "$T" after the
command that set T failed) or --token-file is refused, not taken for a
proof without ath.

Make a new proof for every request: an API accepts each proof once, and
only for about a minute after it is made. The URL must be the one the API
is called by; behind a proxy, the one clients use. A server that requires
nonces (RFC 9449 §8, §9) answers use_dpop_nonce with a DPoP-Nonce header:
make a new proof with that value in --nonce.`,
		Example: `  T=$(keyward token --key-file key.json --scopes orders.read \
    --dpop-key dpop.pem)
  U=https://orders.internal/v1/orders
  curl -H "Authorization: DPoP $T" \
    -H "DPoP: $(keyward dpop proof --dpop-key dpop.pem --url "$U" \
      --token "$T")" \
    "$U"
  curl -X POST -H "Authorization: DPoP $T" \
    -H "DPoP: $(keyward dpop proof --dpop-key dpop.pem --method POST \
      --url "$U" --token "$T")" \
    -d @order.json "$U"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyPath == "" {
				return usageError{errors.New("--dpop-key is required: the PEM file of the DPoP private key (make one with 'keyward dpop keygen --out dpop.pem')")}
			}
			if rawURL == "" {
				return usageError{errors.New("--url is required: the URL of the request the proof is for")}
			}
			if _, err := dpop.NormalizeURL(rawURL); err != nil {
				return usageError{fmt.Errorf("--url %q: %v; give the request's full URL, such as https://orders.internal/v1/orders", rawURL, err)}
			}
			if err := checkMethod(method); err != nil {
				return err
			}
			source := "--token"
			if token == "" && cmd.Flags().Changed("token") {
				// --token "$T" where the command that set T failed: a
				// proof without ath, which an API refuses for a DPoP-bound
				// token, would hide that.
				return usageError{errors.New("--token is empty: give the access token (did the command that got it fail?), or leave --token out for a proof without ath")}
			}
			if tokenFile != "" {
				if token != "" {
					return usageError{errors.New("give the token with --token or --token-file, not both")}
				}
				source = "--token-file " + tokenFile
				var r io.Reader = cmd.InOrStdin()
				if tokenFile != "-" {
					f, err := os.Open(tokenFile)
					if err != nil {
						return fmt.Errorf("--token-file: %w", err)
					}
					defer f.Close()
					r = f
				}
				data, err := io.ReadAll(io.LimitReader(r, maxTokenFile+1))
				if err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
				if len(data) > maxTokenFile {
					return fmt.Errorf("%s is larger than %d KiB: it must hold an access token alone", source, maxTokenFile>>10)
				}
				if token = strings.TrimSpace(string(data)); token == "" {
					return fmt.Errorf("%s holds no token", source)
				}
			}
			if !validAccessToken(token) {
				return usageError{fmt.Errorf("%s must be the access token alone: printable ASCII, without a scheme such as 'DPoP ' and without spaces", source)}
			}
			if !validNonce(nonce) {
				return usageError{errors.New("--nonce must be the value of the server's DPoP-Nonce header: printable ASCII, without spaces, quotes or backslashes (RFC 9449 §8.1)")}
			}
			_, p, err := readDPoPKey(keyPath)
			if err != nil {
				return err
			}
			proof, err := p.ProofWithNonce(method, rawURL, token, nonce, time.Now())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), proof)
			return err
		},
	}
	cmd.Flags().StringVar(&keyPath, "dpop-key", "", "PEM file of the DPoP private key (PKCS #8; 'keyward dpop keygen' makes one) (required)")
	cmd.Flags().StringVar(&rawURL, "url", "", "the request's URL, as the API is called: http or https (required)")
	cmd.Flags().StringVar(&method, "method", "GET", "the request's HTTP method (case-sensitive)")
	cmd.Flags().StringVar(&token, "token", "", "the access token sent with the request; the proof then carries its hash (ath)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "read the access token from this file (- for standard input) instead of --token, which other users of the machine can see in the process list")
	cmd.Flags().StringVar(&nonce, "nonce", "", "the nonce the server asked for in its DPoP-Nonce header, if it requires one")
	return cmd
}

// validNonce reports whether s is empty or a nonce as RFC 9449 §8.1
// allows: one or more NQCHAR (printable ASCII but space, '"' and '\').
func validNonce(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// checkMethod checks that m is an HTTP method (RFC 9110 §9.1: a token,
// case-sensitive). A proof's htm must be the method exactly: 'post' is not
// POST.
func checkMethod(m string) error {
	if m == "" {
		return usageError{errors.New("--method is empty: give the request's HTTP method, such as GET or POST")}
	}
	for _, c := range []byte(m) {
		if !isTokenChar(c) {
			return usageError{fmt.Errorf("--method %q is not an HTTP method", m)}
		}
	}
	switch up := strings.ToUpper(m); up {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		if up != m {
			return usageError{fmt.Errorf("--method %q: HTTP methods are case-sensitive; did you mean %s?", m, up)}
		}
	}
	return nil
}

// isTokenChar reports whether c may be in an RFC 9110 token (§5.6.2).
func isTokenChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// readDPoPKey reads the DPoP private key of path, PEM, and returns it with
// the prover of its proofs. A missing file is an error: a key made here
// silently, for a mistyped path say, would bind tokens to a key nobody
// meant to keep.
func readDPoPKey(path string) (crypto.Signer, *dpop.Prover, error) {
	data, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("--dpop-key %s does not exist; to make a key there, run: %s", path, shellCommand("keyward", "dpop", "keygen", "--out", path))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--dpop-key: %w", err)
	}
	key, err := keyfile.ParsePrivateKey(data)
	if err != nil {
		return nil, nil, fmt.Errorf("--dpop-key %s: %w", path, err)
	}
	p, err := dpop.NewProver(key)
	if err != nil {
		return nil, nil, fmt.Errorf("--dpop-key %s: %s; DPoP keys are EC P-256 (ES256) or P-384 (ES384), Ed25519 (EdDSA), or RSA of 2048 to 8192 bits (RS256)",
			path, strings.TrimPrefix(err.Error(), "dpop: "))
	}
	return key, p, nil
}

// maxTokenFile bounds what dpop proof reads from --token-file.
const maxTokenFile = 64 << 10

// validAccessToken reports whether t (empty: no token) could be an access
// token sent as "Authorization: DPoP t": visible ASCII, no spaces
// (RFC 9449 §7.1, RFC 6750 §2.1's b64token and more).
func validAccessToken(t string) bool {
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] > '~' {
			return false
		}
	}
	return true
}
