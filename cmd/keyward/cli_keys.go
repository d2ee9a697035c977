package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/admin"
)

func newKeysCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage service-account keys",
		Long: `A service account signs JWT-bearer assertions with its keys. 'keys create'
generates a key pair on the server and returns a JSON key file in Google's
format: the file holds the only copy of the private key. 'keys upload'
registers a public key whose private half you keep.

An account has at most 10 keys, disabled and expired ones included:
'keys create' and 'keys upload' are refused for an eleventh until you
delete one ('keys delete'); disabling a key does not make room. An
account with more from before the cap keeps them, all working.`,
	}
	f.register(cmd)

	var (
		out       string
		force     bool
		expiresIn time.Duration
	)
	create := &cobra.Command{
		Use:   "create SA --out key.json",
		Short: "Generate a key pair and write the JSON key file",
		Long: `Generate an RSA-2048 key pair for the account and write its JSON key file
(mode 0600). Only the public key is kept on the server: the file is the only
copy of the private key. Google's client libraries read the file unchanged.
If the file cannot be written, no key is left behind: an unwritable --out is
refused before the key is created, and a key whose file could not be
written after all is deleted again, with the file if it was written but
could not be made durable (its directory not synced); a file it replaced
with --force is then gone too. Without --force an --out that exists is
refused, one made while the key was created too: it is left as it is, and
the key deleted again.`,
		Example: `  keyward keys create nightly-report@billing.iam.keyward.internal --out key.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("--out is required: the file to write the key to, or - for standard output")}
			}
			secs, err := expirySeconds(expiresIn)
			if err != nil {
				return err
			}
			if out != "-" {
				// The key is created before the file is written: find out now
				// that the file cannot be (a directory, say, which --force
				// would not overwrite either).
				if err := checkWritable(out, force); err != nil {
					return fmt.Errorf("cannot write the key file, no key was created: %w", err)
				}
				// Lstat: a symbolic link is in the way too, dangling or not.
				if _, err := os.Lstat(out); err == nil && !force {
					return fmt.Errorf("%s exists; pass --force to overwrite it", out)
				}
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var kf json.RawMessage
			body := admin.KeyRequest{ExpiresInSeconds: secs}
			if err := c.do(cmd.Context(), http.MethodPost, accountPath(args[0], "keys"), body, &kf); err != nil {
				return err
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, kf, "", "  "); err != nil {
				return fmt.Errorf("the server sent a malformed key file: %w", err)
			}
			pretty.WriteByte('\n')
			var meta struct {
				ID    string `json:"private_key_id"`
				Email string `json:"client_email"`
			}
			json.Unmarshal(kf, &meta)
			replacing := false // a file is there for --force to replace
			write := func() error {
				_, lerr := os.Lstat(out)
				replacing = force && lerr == nil
				err := writeKeyOut(out, pretty.Bytes(), force)
				if errors.Is(err, fs.ErrExist) && !force {
					// Made since it was checked for, and left as it is.
					err = sayInstead(fmt.Errorf("%s already exists (made while the key was created); name a new file, or pass --force to overwrite it", out), err)
				} else if errors.Is(err, fs.ErrExist) {
					// --force renames over a file, but not over a
					// directory with something in it.
					err = sayInstead(fmt.Errorf("%s is a directory (made while the key was created), which --force does not replace; name a new file", out), err)
				}
				return err
			}
			if out == "-" {
				// A write to a closed pipe fails rather than kill the
				// command with SIGPIPE before it deletes the key.
				signal.Ignore(syscall.SIGPIPE)
				write = func() error {
					_, err := c.out.Write(pretty.Bytes())
					return err
				}
			}
			// Written, but its temporary file, a second name of it
			// with the private key, could not be removed: the key is
			// kept, and that file named in a warning.
			err, tempLeft := writtenTempLeft(write())
			if err != nil {
				// Without its file the key is of no use to anyone: delete it,
				// and the file, if it was written but not made durable.
				file := ""
				if out != "-" {
					// Its temporary file, if left, is named with what
					// became of the file, not in the cause.
					lt, _ := err.(*tempLeftError)
					err, _ = splitTempLeft(err)
					file = "; " + removeKeyOut(out, err, replacing, lt)
				}
				if derr := c.do(context.WithoutCancel(cmd.Context()), http.MethodDelete, accountPath(args[0], "keys", meta.ID), nil, nil); derr != nil {
					return fmt.Errorf("writing the key file failed: %w%s; key %s exists on the server without its private key, and deleting it failed (%v); to delete it, run: %s",
						err, file, meta.ID, derr, shellCommand("keyward", "keys", "delete", args[0], meta.ID))
				}
				return fmt.Errorf("writing the key file failed, so key %s was deleted again: %w%s", meta.ID, err, file)
			}
			if out == "-" {
				return nil
			}
			warnTempLeft(cmd.ErrOrStderr(), out, tempLeft)
			return c.show(map[string]string{"key_id": meta.ID, "file": out}, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "wrote key %s of %s to %s\n", cell(meta.ID), cell(meta.Email), out)
			})
		},
	}
	create.Flags().StringVar(&out, "out", "", "file to write the key file to, - for standard output (required)")
	create.Flags().BoolVar(&force, "force", false, "overwrite --out if it exists")
	create.Flags().DurationVar(&expiresIn, "expires-in", 0, "the key expires after this long, from 1s to 100 years, 876000h (default: never)")

	var (
		pubFile   string
		upExpires time.Duration
	)
	upload := &cobra.Command{
		Use:   "upload SA --public-key FILE",
		Short: "Register a public key or certificate you hold the private key of",
		Long: `Register a PEM public key (PUBLIC KEY or RSA PUBLIC KEY) or X.509 certificate.
RSA keys need 2048 to 8192 bits and sign RS256; EC keys must be P-256 and
sign ES256. A certificate's expiry becomes the key's. One key a file: a
certificate may be followed by its chain (ignored), but a file with two
public keys, or a public key and a certificate, is refused.`,
		Example: `  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out job.key
  openssl pkey -in job.key -pubout -out job.pub
  keyward keys upload job@billing.iam.keyward.internal --public-key job.pub`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if pubFile == "" {
				return usageError{errors.New("--public-key is required")}
			}
			pem, err := readKeyFile(pubFile)
			if err != nil {
				return fmt.Errorf("--public-key: %w", err)
			}
			// The server refuses a private key too, but it would have
			// been sent to it: a PEM block, or a JSON key file's.
			if bytes.Contains(pem, []byte("PRIVATE KEY-----")) {
				return fmt.Errorf("--public-key %s holds a private key, which was not sent: upload only the public key or certificate (openssl pkey -in KEY -pubout writes the public key of a PEM private key), and keep the private key to yourself", pubFile)
			}
			// DER, which the server would refuse only as a request body
			// holding a NUL character, naming neither file nor remedy.
			if !bytes.Contains(pem, []byte("-----BEGIN")) && (bytes.IndexByte(pem, 0) >= 0 || !utf8.Valid(pem)) {
				convert := shellCommand("openssl", "pkey", "-pubin", "-inform", "DER", "-in", pubFile, "-out", pubFile+".pem")
				if _, err := x509.ParseCertificate(pem); err == nil {
					convert = shellCommand("openssl", "x509", "-inform", "DER", "-in", pubFile, "-out", pubFile+".pem")
				}
				return fmt.Errorf("--public-key %s is binary, not PEM: keys upload takes a PEM PUBLIC KEY or CERTIFICATE; write this one as PEM with: %s", pubFile, convert)
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			secs, err := expirySeconds(upExpires)
			if err != nil {
				return err
			}
			var k admin.KeyView
			body := admin.KeyRequest{PublicKeyPEM: string(pem), ExpiresInSeconds: secs}
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/service-accounts/"+url.PathEscape(args[0])+"/keys/upload", body, &k); err != nil {
				return err
			}
			return c.show(k, func(w *tabwriter.Writer) { keyTable(w, []admin.KeyView{k}) })
		},
	}
	upload.Flags().StringVar(&pubFile, "public-key", "", "PEM file with the public key or certificate (required)")
	upload.Flags().DurationVar(&upExpires, "expires-in", 0, "the key expires after this long, from 1s to 100 years, 876000h (default: never, or the certificate's expiry)")

	list := itemCommand(&f, "list SA", "List an account's keys", 1, http.MethodGet,
		func(args []string) string { return accountPath(args[0], "keys") },
		func(w *tabwriter.Writer, resp struct {
			Keys []admin.KeyView `json:"keys"`
		}) {
			keyTable(w, resp.Keys)
		})

	keyOp := func(use, short, method string, action ...string) *cobra.Command {
		return itemCommand(&f, use+" SA KEY_ID", short, 2, method,
			func(args []string) string {
				return accountPath(args[0], append([]string{"keys", args[1]}, action...)...)
			},
			func(w *tabwriter.Writer, k admin.KeyView) { keyTable(w, []admin.KeyView{k}) })
	}
	disable := keyOp("disable", "Disable a key: assertions it signs are refused (disabled_client)", http.MethodPost, "disable")
	enable := keyOp("enable", "Enable a disabled key", http.MethodPost, "enable")
	del := simpleDelete(&f, "delete SA KEY_ID", "Delete a key for good", 2, func(args []string) string { return accountPath(args[0], "keys", args[1]) })
	for _, c := range []*cobra.Command{disable, enable, del} {
		ifMatchFlag(&f, c, "key", func(args []string) []string { return []string{"keys", "get", args[0], args[1]} })
	}
	cmd.AddCommand(create, upload, list, keyOp("get", "Show a key", http.MethodGet), disable, enable, del)
	return cmd
}

// writeKeyOut writes a key file (a variable for tests). An interrupt
// does not stop it: the key is made already, and its private half is in
// this file alone.
var writeKeyOut = func(path string, data []byte, replace bool) error {
	return writeOutFile(context.Background(), path, data, replace)
}

// removeKeyOut removes the key file path if writing it failed with
// writeErr only once it was in place (its directory could not be
// synced), and says what became of it: it held the private key of a key
// that is being deleted, or is of no use without the command's success.
// Another file there now is left. replaced tells that the write was to
// replace a file at path (--force): removed, the new file takes that one
// with it. lt, if not nil, is the write's temporary file, left with the
// private key in it; one that could not be removed either is named with
// path, in one instruction.
func removeKeyOut(path string, writeErr error, replaced bool, lt *tempLeftError) string {
	var said string
	tempLeft := ""
	if lt != nil {
		tempLeft = lt.Left()
	}
	switch left, err := removeWrittenFile(path, writtenBy(writeErr)); {
	case err != nil && lt != nil:
		said = fmt.Sprintf("%s may hold its private key and could not be removed (%v), nor could its temporary file %s, which holds it too (%v): delete both", path, err, lt.tmp, lt.remove)
		tempLeft = ""
	case err != nil:
		said = fmt.Sprintf("%s may hold its private key and could not be removed (%v): delete it", path, err)
	case left != writtenRemoved:
		said = "no key file of it was left at " + path
	case replaced:
		said = path + ", written but not made durable, was removed, and the file it had replaced there is gone too"
	default:
		said = path + ", written but not made durable, was removed"
	}
	if tempLeft != "" {
		said += ", but " + tempLeft // with the private key in it
	}
	return said
}

// checkWritable checks that a file can be written at path as
// writeOutFile writes it: a temporary file next to it, renamed over it
// (replace), or else given the name path without replacing a file there,
// by a hard link or a rename that does not replace. A file system may
// support neither (writeOutFile then fails with a *noLinkError): the
// temporary file is given a second name that way too, so that the
// command fails before it creates anything (a key) that it would then
// have to delete again.
func checkWritable(path string, replace bool) error {
	f, err := createTempFor(path)
	if err != nil {
		return err
	}
	f.Close()
	defer os.Remove(f.Name())
	if replace {
		return nil
	}
	// The second name is another temporary file's, freed: no longer than
	// the one writeOutFile gives its own (a name made longer, such as the
	// first's with .new, could exceed the file system's limit for an
	// --out that can be written), and none a file holds. One made there
	// meanwhile refuses it (fs.ErrExist), and is left as it is.
	g, err := createTempFor(path)
	if err != nil {
		return err
	}
	g.Close()
	probe := g.Name()
	if err := os.Remove(probe); err != nil {
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			err = pe.Err
		}
		return fmt.Errorf("cannot create %s: %w", path, err)
	}
	// A name of the probe left (its temporary file's, which the
	// deferred removal tries again) is no failure to write path.
	if err, _ = writtenTempLeft(publishNew(f.Name(), probe)); err == nil {
		os.Remove(probe)
	}
	if nle, ok := errors.AsType[*noLinkError](err); ok {
		return fmt.Errorf("%w, or pass --force to replace any file there", &noLinkError{path, nle.link, nle.rename})
	}
	if pe, ok := errors.AsType[*fs.PathError](err); ok && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cannot create %s: %w", path, pe.Err)
	}
	return nil
}

// expirySeconds turns an --expires-in duration into the whole seconds the
// admin API takes; 0 means never. The API counts in seconds, so a
// positive duration under one would silently mean never: it is refused.
func expirySeconds(d time.Duration) (int64, error) {
	switch {
	case d < 0:
		return 0, usageError{fmt.Errorf("--expires-in %s is negative; give a positive duration such as 720h, or 0 for never", d)}
	case d > 0 && d < time.Second:
		return 0, usageError{fmt.Errorf("--expires-in %s is under a second, the smallest lifetime; give at least 1s, or 0 for never", d)}
	}
	return int64(d / time.Second), nil
}

func keyTable(w *tabwriter.Writer, keys []admin.KeyView) {
	fmt.Fprintln(w, "KEY ID\tALG\tORIGIN\tDISABLED\tEXPIRES\tCREATED")
	for _, k := range keys {
		exp := "never"
		if k.ExpiresAt != nil {
			exp = fmtTime(*k.ExpiresAt)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(k.KeyID), cell(k.Algorithm), cell(k.Origin), yesNo(k.Disabled), exp, fmtTime(k.CreatedAt))
	}
	// The columns end here: the ETag line show adds after them (of one
	// item) is not a row, and aligned with them its value stood under
	// the second column's heading.
	w.Flush()
}
