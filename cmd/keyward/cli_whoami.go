package main

import (
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/admin"
)

func newWhoAmICommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show which administrator the credentials authenticate as",
		Long: `Ask the server (GET /v1/whoami) which administrator account the
credentials authenticate as, and show it with the access token the command
got with them: its ID (jti, which 'keyward tokens revoke' takes), format,
the credential it was got with ("key:ID", "secret:ID" or
"cert:THUMBPRINT"), scopes, and when it was issued and expires, by the
server's clock.

A check that the key file, server and CA certificate work together: it
fails as every admin command does if the server cannot be reached, or if
the server refuses the credentials, such as a key file of an account
without the keyward.admin scope, or of one disabled or deleted.`,
		Example: `  keyward whoami --credentials keyward-data/admin-key.json
  keyward whoami --server https://keyward.internal -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var v admin.WhoAmIView
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/whoami", nil, &v); err != nil {
				return err
			}
			return c.show(v, func(w *tabwriter.Writer) { whoAmITable(w, v) })
		},
	}
	f.register(cmd)
	return cmd
}

// whoAmITable shows the administrator and the token of GET /v1/whoami.
func whoAmITable(w *tabwriter.Writer, v admin.WhoAmIView) {
	fmt.Fprintf(w, "Email:\t%s\n", cell(v.Email))
	fmt.Fprintf(w, "Client ID:\t%s\n", cell(v.ClientID))
	if v.DisplayName != "" {
		fmt.Fprintf(w, "Display name:\t%s\n", shown(v.DisplayName))
	}
	fmt.Fprintf(w, "Name:\t%s\n", cell(v.Name))
	fmt.Fprintf(w, "Project:\t%s\n", cell(v.Project))
	t := v.Token
	fmt.Fprintf(w, "Token ID:\t%s\n", cell(t.ID))
	fmt.Fprintf(w, "Token format:\t%s\n", t.Format)
	if t.Credential != "" {
		fmt.Fprintf(w, "Token credential:\t%s\n", cell(t.Credential))
	}
	fmt.Fprintf(w, "Token scopes:\t%s\n", cell(strings.Join(t.Scopes, ", ")))
	fmt.Fprintf(w, "Token issued:\t%s\n", fmtTime(t.IssuedAt))
	fmt.Fprintf(w, "Token expires:\t%s (in %s)\n", fmtTime(t.ExpiresAt), time.Duration(t.ExpiresIn)*time.Second)
}
