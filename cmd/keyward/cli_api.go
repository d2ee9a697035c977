package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/admin"
)

func newAPICommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Manage the APIs (resource servers) tokens are issued for",
		Long: `An API is a resource server: an identifier (the audience of its tokens,
a URI such as https://orders.internal) and the scopes it defines. Each scope
belongs to exactly one API, so a token's aud follows from its scopes.`,
	}
	f.register(cmd)

	var in admin.APIInput
	create := &cobra.Command{
		Use:   "create NAME --identifier URI --scopes s1,s2",
		Short: "Register an API and its scopes",
		Example: `  keyward api create orders --identifier https://orders.internal \
    --scopes orders.read,orders.write`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			in.Name = args[0]
			in.Scopes = splitList(in.Scopes)
			var a admin.APIView
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/apis", in, &a); err != nil {
				return err
			}
			return c.show(a, func(w *tabwriter.Writer) { apiTable(w, a) })
		},
	}
	create.Flags().StringVar(&in.Identifier, "identifier", "", "the API's identifier URI: the aud of its tokens, not this server's own URL (required)")
	create.Flags().StringSliceVar(&in.Scopes, "scopes", nil, "scopes the API defines, comma-separated (required)")
	create.Flags().StringVar(&in.Description, "description", "", "what the API is")
	create.Flags().StringVar(&in.TokenFormat, "token-format", "jwt", "format of the API's tokens: jwt (verified locally) or opaque (verified by introspection)")
	create.MarkFlagRequired("identifier")
	create.MarkFlagRequired("scopes")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the APIs",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var resp struct {
				APIs []admin.APIView `json:"apis"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/apis", nil, &resp); err != nil {
				return err
			}
			return c.show(resp, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "NAME\tIDENTIFIER\tSCOPES")
				for _, a := range resp.APIs {
					fmt.Fprintf(w, "%s\t%s\t%s\n", cell(a.Name), cell(a.Identifier), cell(strings.Join(a.Scopes, ",")))
				}
			})
		},
	}
	get := itemCommand(&f, "get NAME", "Show an API", 1, http.MethodGet, func(args []string) string { return "/v1/apis/" + url.PathEscape(args[0]) }, apiTable)
	del := simpleDelete(&f, "delete NAME", "Delete an API; its scopes can no longer be requested", 1, func(args []string) string { return "/v1/apis/" + url.PathEscape(args[0]) })
	del.Long = `Delete an API; its scopes can no longer be requested. An API whose scopes are
still granted to service accounts or in domain-wide delegations is not
deleted: the error lists who holds them. Remove the scopes from those
accounts and delegations first, so that no grant lingers to come back to
life if an API with the same scopes is created again.`
	var (
		upDescription, upFormat   string
		upIntrospectors, upScopes []string
	)
	update := &cobra.Command{
		Use:   "update NAME",
		Short: "Change an API's scopes, token format, introspectors or description",
		Long: `Change an API's scopes, its token format (jwt or opaque) or the service
accounts allowed to introspect its tokens at /introspect (RFC 7662). An
introspector learns only about tokens whose audience is one of its APIs; the
keyward.introspect scope lets an account introspect every token.

--scopes is the API's new full list, in order: scopes not in it are removed,
new ones added. A scope still granted to service accounts or in domain-wide
delegations is not removed (the error lists who holds it: remove it from
them first), and a scope another API has is not added: each scope belongs
to one API. A new scope can be granted, and requested, at once. The scopes
of the built-in API (keyward) do not change.`,
		Example: `  keyward api update orders --scopes orders.read,orders.write,orders.refund
  keyward api update orders --token-format opaque \
    --introspectors orders-api@shop.iam.keyward.internal`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var up admin.APIUpdate
			fl := cmd.Flags()
			if fl.Changed("description") {
				up.Description = &upDescription
			}
			if fl.Changed("token-format") {
				up.TokenFormat = &upFormat
			}
			if fl.Changed("introspectors") {
				l := splitList(upIntrospectors)
				if l == nil {
					l = []string{}
				}
				up.Introspectors = &l
			}
			if fl.Changed("scopes") {
				l := splitList(upScopes)
				if l == nil {
					l = []string{} // refused: an API needs a scope
				}
				up.Scopes = &l
			}
			if up == (admin.APIUpdate{}) {
				return usageError{fmt.Errorf("nothing to update: give --scopes, --token-format, --introspectors or --description")}
			}
			var a admin.APIView
			if err := c.do(cmd.Context(), http.MethodPatch, "/v1/apis/"+url.PathEscape(args[0]), up, &a); err != nil {
				return err
			}
			return c.show(a, func(w *tabwriter.Writer) { apiTable(w, a) })
		},
	}
	update.Flags().StringVar(&upDescription, "description", "", "new description")
	update.Flags().StringVar(&upFormat, "token-format", "", "jwt or opaque")
	update.Flags().StringSliceVar(&upScopes, "scopes", nil, "the scopes the API defines, comma-separated, in order; the new full list")
	update.Flags().StringSliceVar(&upIntrospectors, "introspectors", nil, "service accounts (email or client ID) that may introspect this API's tokens; the new full list")
	reread := func(args []string) []string { return []string{"api", "get", args[0]} }
	ifMatchFlag(&f, update, "API", reread)
	ifMatchFlag(&f, del, "API", reread)
	cmd.AddCommand(create, list, get, update, del)
	return cmd
}

func apiTable(w *tabwriter.Writer, a admin.APIView) {
	fmt.Fprintf(w, "Name:\t%s\n", cell(a.Name))
	fmt.Fprintf(w, "Identifier:\t%s\n", cell(a.Identifier))
	fmt.Fprintf(w, "Scopes:\t%s\n", cell(dash(strings.Join(a.Scopes, ", "))))
	fmt.Fprintf(w, "Token format:\t%s\n", cell(a.TokenFormat))
	if len(a.Introspectors) > 0 {
		fmt.Fprintf(w, "Introspectors:\t%s\n", cell(strings.Join(a.Introspectors, ", ")))
	}
	if a.Description != "" {
		fmt.Fprintf(w, "Description:\t%s\n", shown(a.Description))
	}
	fmt.Fprintf(w, "Created:\t%s\n", fmtTime(a.CreatedAt))
}
