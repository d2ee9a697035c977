package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/admin"
)

func newSecretsCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Manage client secrets for the client-credentials grant",
		Long: `A client secret lets a service account authenticate with client_secret_basic
or client_secret_post. Keyward generates it (256 random bits, prefixed kw_ so
secret scanners recognise it), shows it once and stores only a keyed hash.

An account may have two active secrets at once, for rotation without
downtime: create the new secret, deploy it, then delete the old one.
'secrets create' and 'secrets enable' are refused for a third. An account
has at most 10 secrets in all, disabled and expired ones included:
'secrets create' is refused for an eleventh until you delete one
('secrets delete'); disabling a secret does not make room.`,
	}
	f.register(cmd)

	var expiresIn time.Duration
	create := &cobra.Command{
		Use:   "create SA",
		Short: "Generate a client secret; it is shown only once",
		Example: `  keyward secrets create nightly-report@billing.iam.keyward.internal
  curl -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
    http://127.0.0.1:8080/token`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			secs, err := expirySeconds(expiresIn)
			if err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var s admin.SecretView
			body := admin.KeyRequest{ExpiresInSeconds: secs}
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/service-accounts/"+url.PathEscape(args[0])+"/secrets", body, &s); err != nil {
				return err
			}
			// A write to a closed pipe fails rather than kill the command
			// with SIGPIPE before it deletes the secret.
			signal.Ignore(syscall.SIGPIPE)
			err = c.show(s, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "Client ID:\t%s\n", s.ClientID)
				fmt.Fprintf(w, "Client secret:\t%s\n", s.Secret)
				fmt.Fprintf(w, "Secret ID:\t%s\n", s.SecretID)
				if s.ExpiresAt != nil {
					fmt.Fprintf(w, "Expires:\t%s\n", fmtTime(*s.ExpiresAt))
				}
				fmt.Fprintln(w, "\nThe secret is shown only this once; Keyward keeps only a hash of it.")
			})
			if err != nil {
				// Not shown, the secret is of no use to anyone, and it
				// would hold one of the account's two active places.
				if derr := c.do(context.WithoutCancel(cmd.Context()), http.MethodDelete, accountPath(args[0], "secrets", s.SecretID), nil, nil); derr != nil {
					return fmt.Errorf("showing the secret failed: %w; secret %s exists on the server without anyone having seen it, and deleting it failed (%v); to delete it, run: %s",
						err, s.SecretID, derr, shellCommand("keyward", "secrets", "delete", args[0], s.SecretID))
				}
				return fmt.Errorf("showing the secret failed, so secret %s was deleted again: %w", s.SecretID, err)
			}
			return nil
		},
	}
	create.Flags().DurationVar(&expiresIn, "expires-in", 0, "the secret expires after this long, from 1s to 100 years, 876000h (default: never)")

	list := itemCommand(&f, "list SA", "List an account's secrets (never their values)", 1, http.MethodGet,
		func(args []string) string { return accountPath(args[0], "secrets") },
		func(w *tabwriter.Writer, resp struct {
			Secrets []admin.SecretView `json:"secrets"`
		}) {
			secretTable(w, resp.Secrets)
		})
	op := func(use, short, method string, action ...string) *cobra.Command {
		return itemCommand(&f, use+" SA SECRET_ID", short, 2, method,
			func(args []string) string {
				return accountPath(args[0], append([]string{"secrets", args[1]}, action...)...)
			},
			func(w *tabwriter.Writer, s admin.SecretView) { secretTable(w, []admin.SecretView{s}) })
	}
	disable := op("disable", "Disable a secret: it no longer authenticates", http.MethodPost, "disable")
	enable := op("enable", "Enable a disabled secret", http.MethodPost, "enable")
	del := simpleDelete(&f, "delete SA SECRET_ID", "Delete a secret for good", 2, func(args []string) string { return accountPath(args[0], "secrets", args[1]) })
	for _, c := range []*cobra.Command{disable, enable, del} {
		ifMatchFlag(&f, c, "secret", func(args []string) []string { return []string{"secrets", "get", args[0], args[1]} })
	}
	cmd.AddCommand(create, list, op("get", "Show a secret (never its value)", http.MethodGet), disable, enable, del)
	return cmd
}

func secretTable(w *tabwriter.Writer, secrets []admin.SecretView) {
	fmt.Fprintln(w, "SECRET ID\tHINT\tDISABLED\tEXPIRES\tLAST USED\tCREATED")
	for _, s := range secrets {
		exp, used := "never", "never"
		if s.ExpiresAt != nil {
			exp = fmtTime(*s.ExpiresAt)
		}
		if s.LastUsedAt != nil {
			used = fmtTime(*s.LastUsedAt)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(s.SecretID), cell(s.Hint), yesNo(s.Disabled), exp, used, fmtTime(s.CreatedAt))
	}
	// The columns end here: the ETag line show adds after them (of one
	// item) is not a row, and aligned with them its value stood under
	// the second column's heading.
	w.Flush()
}
