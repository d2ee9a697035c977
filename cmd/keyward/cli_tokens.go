package main

import (
	"fmt"
	"net/http"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/admin"
)

func newTokensCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Revoke issued access tokens",
		Long: `Revoke a single access token by its ID (the jti claim of a JWT, or the jti
that introspection reports for an opaque token). Introspection reports a
revoked token inactive at once. APIs that verify JWTs locally do not see
revocations: use introspection for them, or keep token lifetimes short.

Keyward stores opaque tokens but not JWTs, so it cannot tell a JWT's ID
from a mistyped one: an ID it has no record of is put on the revocation
list anyway, and the command says that no token with it is on record.

To revoke every token of a service account, use 'keyward sa revoke-tokens'.`,
	}
	f.register(cmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "revoke JTI",
		Short: "Revoke one token by its ID",
		Long: `Revoke one token by its ID: the jti claim of a JWT, the jti introspection
reports, or the Token ID 'keyward whoami' shows. Introspection reports it
inactive at once; APIs that verify JWTs locally do not see revocations:
use introspection for them, or keep token lifetimes short.

IDs Keyward issues now never start with '-';
one issued by an older version may: put it after --, as in
'keyward tokens revoke -- -Xb3…'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var resp admin.RevokeResponse
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/tokens/revoke", admin.RevokeRequest{JTI: args[0]}, &resp); err != nil {
				return err
			}
			return c.show(resp, func(w *tabwriter.Writer) { fmt.Fprintf(w, "%s: %s\n", args[0], resp.Note) })
		},
	})
	return cmd
}
