package main

import (
	"fmt"
	"net/http"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/admin"
)

func newSigningKeysCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "signing-keys",
		Short: "Inspect and rotate the server's token-signing keys",
		Long: `Keyward signs access tokens with its current signing key and publishes the
next, current and previous keys in its JWKS, so verifiers never meet an
unknown kid. Keys rotate on a schedule (--signing-key-rotation) and on demand.`,
	}
	f.register(cmd)
	show := func(c *adminClient, resp any, keys []admin.SigningKeyView) error {
		return c.show(resp, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "KEY ID\tALG\tSTATE\tCREATED\tACTIVATED\tRETIRED")
			for _, k := range keys {
				act, ret := "-", "-"
				if k.ActivatedAt != nil {
					act = fmtTime(*k.ActivatedAt)
				}
				if k.RetiredAt != nil {
					ret = fmtTime(*k.RetiredAt)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(k.KeyID), cell(k.Algorithm), cell(k.State), fmtTime(k.CreatedAt), act, ret)
			}
		})
	}
	op := func(use, short, method, path string) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := f.client(cmd)
				if err != nil {
					return err
				}
				var resp struct {
					Keys []admin.SigningKeyView `json:"signing_keys"`
				}
				if err := c.do(cmd.Context(), method, path, nil, &resp); err != nil {
					return err
				}
				return show(c, resp, resp.Keys)
			},
		}
	}
	cmd.AddCommand(
		op("list", "List the signing keys", http.MethodGet, "/v1/signing-keys"),
		op("rotate", "Make the next key current now and create a new next key", http.MethodPost, "/v1/signing-keys/rotate"),
	)
	return cmd
}
