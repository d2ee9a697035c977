package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

func newSACommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:     "sa",
		Aliases: []string{"service-accounts"},
		Short:   "Manage service accounts",
		Long: `A service account is a machine identity: NAME@PROJECT.<domain>, with a
21-digit numeric client ID, the scopes it may request and the lifetime of
its tokens. Accounts are named by email or client ID in every command.`,
	}
	f.register(cmd)

	var (
		in       admin.AccountInput
		lifetime time.Duration
	)
	create := &cobra.Command{
		Use:     "create NAME --project P [--scopes s1,s2]",
		Short:   "Create a service account",
		Example: `  keyward sa create nightly-report --project billing --scopes orders.read`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			in.Name = args[0]
			in.Scopes = splitList(in.Scopes)
			if in.TokenLifetimeSeconds, err = lifetimeSeconds(lifetime); err != nil {
				return err
			}
			var a admin.AccountView
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/service-accounts", in, &a); err != nil {
				return err
			}
			return c.show(a, func(w *tabwriter.Writer) { accountTable(w, a) })
		},
	}
	create.Flags().StringVar(&in.Project, "project", "", "project the account belongs to (required)")
	create.Flags().StringSliceVar(&in.Scopes, "scopes", nil, "scopes the account may request, comma-separated")
	create.Flags().StringVar(&in.DisplayName, "display-name", "", "human-friendly name")
	create.Flags().StringVar(&in.Description, "description", "", "what the account is for")
	create.Flags().DurationVar(&lifetime, "token-lifetime", 0, "lifetime of the account's access tokens, 1m to the server's --max-token-lifetime (default, or 0: the server's --default-token-lifetime, 1h unless set)")
	create.Flags().StringVar(&in.TokenFormat, "token-format", "", "override the APIs' token format for this account: jwt or opaque")
	create.MarkFlagRequired("project")

	var project string
	list := &cobra.Command{
		Use:   "list",
		Short: "List service accounts",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			type page struct {
				Accounts []admin.AccountView `json:"service_accounts"`
				Next     string              `json:"next_page_token"`
			}
			// all is every page's accounts: an empty list is [], and
			// there is no next page to name.
			var all struct {
				Accounts []admin.AccountView `json:"service_accounts"`
			}
			all.Accounts = []admin.AccountView{}
			q := url.Values{"limit": {"1000"}}
			if project != "" {
				q.Set("project", project)
			}
			for {
				var p page
				if err := c.do(cmd.Context(), http.MethodGet, "/v1/service-accounts?"+q.Encode(), nil, &p); err != nil {
					return err
				}
				all.Accounts = append(all.Accounts, p.Accounts...)
				if p.Next == "" {
					break
				}
				q.Set("page_token", p.Next)
			}
			return c.show(all, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "EMAIL\tCLIENT ID\tDISABLED\tSCOPES")
				for _, a := range all.Accounts {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", cell(a.Email), cell(a.ClientID), yesNo(a.Disabled), cell(strings.Join(a.Scopes, ",")))
				}
			})
		},
	}
	list.Flags().StringVar(&project, "project", "", "only accounts of this project")

	one := func(use, short, method string, action ...string) *cobra.Command {
		return itemCommand(&f, use+" SA", short, 1, method, func(args []string) string { return accountPath(args[0], action...) }, accountTable)
	}
	get := one("get", "Show a service account", http.MethodGet)
	disable := one("disable", "Disable an account: no new tokens, introspection says inactive", http.MethodPost, "disable")
	revokeTokens := one("revoke-tokens", "Revoke every token issued to the account until now", http.MethodPost, "revoke-tokens")
	revokeTokens.Long = `Revoke every token issued to the account until now; the tokens it gets
from now on are valid ('keyward sa disable' stops those too). Introspection
reports the revoked tokens inactive at once; APIs that verify JWTs locally
do not see revocations: use introspection for them, or keep token
lifetimes short.`
	enable := one("enable", "Enable a disabled service account", http.MethodPost, "enable")

	var (
		upScopes, upMethods      []string
		upDisplay, upDescription string
		upLifetime               time.Duration
		upTLS                    storage.TLSBinding
		upTLSClear               bool
		upFormat                 string
	)
	update := &cobra.Command{
		Use:   "update SA",
		Short: "Change an account's scopes, names, token settings, auth methods",
		Example: `  keyward sa update nightly-report@billing.iam.keyward.internal \
    --scopes orders.read,orders.write`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var up admin.AccountUpdate
			fl := cmd.Flags()
			if fl.Changed("scopes") {
				s := splitList(upScopes)
				if s == nil {
					s = []string{}
				}
				up.Scopes = &s
			}
			if fl.Changed("display-name") {
				up.DisplayName = &upDisplay
			}
			if fl.Changed("description") {
				up.Description = &upDescription
			}
			if fl.Changed("token-lifetime") {
				secs, err := lifetimeSeconds(upLifetime)
				if err != nil {
					return err
				}
				up.TokenLifetimeSeconds = &secs
			}
			if fl.Changed("token-format") {
				up.TokenFormat = &upFormat
			}
			if fl.Changed("auth-methods") {
				m := splitList(upMethods)
				if m == nil {
					m = []string{}
				}
				up.AuthMethods = &m
			}
			for _, name := range []string{"tls-subject-dn", "tls-san-dns", "tls-san-uri", "tls-san-ip", "tls-san-email"} {
				if v, _ := fl.GetString(name); fl.Changed(name) && v == "" {
					// Empty, it would be dropped unsaid, the binding kept.
					return usageError{fmt.Errorf("--%s is empty: give the value to bind to, or --tls-clear to remove the account's TLS binding", name)}
				}
			}
			if upTLSClear || !upTLS.IsZero() {
				if upTLSClear && !upTLS.IsZero() {
					return usageError{fmt.Errorf("--tls-clear and a --tls-* binding exclude each other")}
				}
				up.TLS = &upTLS
			}
			if up == (admin.AccountUpdate{}) {
				return usageError{fmt.Errorf("nothing to update: give --scopes, --auth-methods, --tls-* (or --tls-clear), --display-name, --description, --token-lifetime or --token-format")}
			}
			// The flags first: a usage mistake is said as one (exit 2)
			// whatever the credentials.
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var a admin.AccountView
			if err := c.do(cmd.Context(), http.MethodPatch, "/v1/service-accounts/"+url.PathEscape(args[0]), up, &a); err != nil {
				return err
			}
			return c.show(a, func(w *tabwriter.Writer) { accountTable(w, a) })
		},
	}
	update.Flags().StringSliceVar(&upScopes, "scopes", nil, "the new set of allowed scopes, comma-separated")
	update.Flags().StringVar(&upDisplay, "display-name", "", "new display name")
	update.Flags().StringVar(&upDescription, "description", "", "new description")
	update.Flags().DurationVar(&upLifetime, "token-lifetime", 0, "new access-token lifetime, 1m to the server's --max-token-lifetime; 0 resets it to the server's --default-token-lifetime")
	update.Flags().StringSliceVar(&upMethods, "auth-methods", nil, "client authentication methods the account may use: "+strings.Join(storage.AuthMethods, ", "))
	update.Flags().StringVar(&upTLS.SubjectDN, "tls-subject-dn", "", "tls_client_auth: the client certificate's subject DN (RFC 4514), e.g. CN=job,O=Example")
	update.Flags().StringVar(&upTLS.SANDNS, "tls-san-dns", "", "tls_client_auth: a DNS name in the certificate's SAN")
	update.Flags().StringVar(&upTLS.SANURI, "tls-san-uri", "", "tls_client_auth: a URI in the certificate's SAN (e.g. a SPIFFE ID)")
	update.Flags().StringVar(&upTLS.SANIP, "tls-san-ip", "", "tls_client_auth: an IP address in the certificate's SAN")
	update.Flags().StringVar(&upTLS.SANEmail, "tls-san-email", "", "tls_client_auth: an email address in the certificate's SAN")
	update.Flags().BoolVar(&upTLSClear, "tls-clear", false, "remove the account's TLS certificate binding")
	update.Flags().StringVar(&upFormat, "token-format", "", "override the APIs' token format: jwt, opaque, or \"\" to follow the APIs")

	del := simpleDelete(&f, "delete SA", "Delete a service account with its keys, secrets and delegations", 1, func(args []string) string { return "/v1/service-accounts/" + url.PathEscape(args[0]) })
	reread := func(args []string) []string { return []string{"sa", "get", args[0]} }
	for _, c := range []*cobra.Command{update, disable, enable, del} {
		ifMatchFlag(&f, c, "service account", reread)
	}
	cmd.AddCommand(create, list, get, update, disable, enable, revokeTokens, del)
	return cmd
}

func accountTable(w *tabwriter.Writer, a admin.AccountView) {
	fmt.Fprintf(w, "Email:\t%s\n", cell(a.Email))
	fmt.Fprintf(w, "Client ID:\t%s\n", cell(a.ClientID))
	if a.DisplayName != "" {
		fmt.Fprintf(w, "Display name:\t%s\n", shown(a.DisplayName))
	}
	if a.Description != "" {
		fmt.Fprintf(w, "Description:\t%s\n", shown(a.Description))
	}
	fmt.Fprintf(w, "Scopes:\t%s\n", cell(dash(strings.Join(a.Scopes, ", "))))
	fmt.Fprintf(w, "Token lifetime:\t%s\n", time.Duration(a.TokenLifetimeSeconds)*time.Second)
	fmt.Fprintf(w, "Auth methods:\t%s\n", cell(dash(strings.Join(a.AuthMethods, ", "))))
	if a.TLS != nil && !a.TLS.IsZero() {
		fmt.Fprintf(w, "TLS binding:\t%s\n", cell(tlsBindingText(*a.TLS)))
	}
	if a.TokenFormat != "" {
		fmt.Fprintf(w, "Token format:\t%s\n", cell(a.TokenFormat))
	}
	if a.TokensRevokedBefore != nil {
		fmt.Fprintf(w, "Tokens revoked before:\t%s\n", fmtTime(*a.TokensRevokedBefore))
	}
	if a.CertTokensRevokedBefore != nil {
		fmt.Fprintf(w, "Certificate tokens revoked before:\t%s\n", fmtTime(*a.CertTokensRevokedBefore))
	}
	fmt.Fprintf(w, "Disabled:\t%s\n", yesNo(a.Disabled))
	fmt.Fprintf(w, "Created:\t%s\n", fmtTime(a.CreatedAt))
}

// tlsBindingText words b as 'subject DN CN=job,O=Example; SAN DNS
// job.internal', each part as sa update's --tls-… flag names it. A value
// that holds a ';' or a '"' (a DN's escaped "\;", or what an import only
// warned of) is quoted, as cell quotes one that is not printable, so that
// "CN=job\; SAN DNS evil.example" does not read as two parts.
func tlsBindingText(b storage.TLSBinding) string {
	var parts []string
	for _, p := range []struct{ name, value string }{
		{"subject DN", b.SubjectDN}, {"SAN DNS", b.SANDNS}, {"SAN URI", b.SANURI}, {"SAN IP", b.SANIP}, {"SAN email", b.SANEmail},
	} {
		if p.value == "" {
			continue
		}
		v := p.value
		if !printable(v) || strings.ContainsAny(v, `;"`) {
			v = strconv.Quote(v)
		}
		parts = append(parts, p.name+" "+v)
	}
	return strings.Join(parts, "; ")
}

// lifetimeSeconds turns --token-lifetime into the whole seconds the admin
// API takes, where 0 means the server's default: a duration under a
// second would silently mean that default, so it is refused.
func lifetimeSeconds(d time.Duration) (int64, error) {
	if d < 0 || (d > 0 && d < time.Second) {
		return 0, usageError{fmt.Errorf("--token-lifetime %s is not a token lifetime: give one such as 15m or 1h (or 0 for the server's default)", d)}
	}
	return int64(d / time.Second), nil
}
