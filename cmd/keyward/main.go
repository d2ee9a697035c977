// Command keyward is the Keyward OAuth 2.0 authorization server for machine
// identities, and the command-line tool that manages it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "keyward:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "keyward:", err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line.
type usageError struct{ error }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "keyward",
		Short: "OAuth 2.0 authorization server for service accounts",
		Long: `Keyward issues short-lived, scoped access tokens to service accounts:
jobs, services and pipelines trade a key (JWT-bearer grant) for a token,
and APIs verify the token against Keyward's published keys.

Run the server with 'keyward serve'. The other commands manage it through
its admin API, authenticated with an administrator key file
(--credentials, or KEYWARD_CREDENTIALS; 'keyward serve' writes one to
<data-dir>/admin-key.json on first start).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nRun '%s --help' for usage.", err, c.CommandPath())}
	})
	root.AddCommand(
		newServeCommand(),
		newMigrateCommand(),
		newExportCommand(),
		newImportCommand(),
		newAPICommand(),
		newSACommand(),
		newKeysCommand(),
		newSecretsCommand(),
		newTokensCommand(),
		newOrgCommand(),
		newUsersCommand(),
		newDelegationCommand(),
		newAuditCommand(),
		newBenchCommand(),
		newTokenCommand(),
		newSigningKeysCommand(),
		newRecoverAdminCommand(),
		newMasterKeyCommand(),
	)
	return root
}
