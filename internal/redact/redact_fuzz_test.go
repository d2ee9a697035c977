package redact

import (
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// FuzzDSN: the --db connection string is shown in logs, in the
// hints of the CLI and in the refusal of a string that is no postgres://
// URL. Whatever it is, the password PostgreSQL's own driver reads from it
// (pgconn.ParseConfig, the reference) is not in what DSN shows, as
// written or escaped.
func FuzzDSN(f *testing.F) {
	for _, s := range []string{
		"postgres://keyward:s3cret@db:5432/k?sslmode=verify-full",
		"postgres://keyward@db/k?password=s3cret&sslmode=require",
		"postgresql://db/k?sslpassword=s3cret&password=s3cret",
		"postgres://u:s3%20cret@db/k", "postgres://u:s3@cret@db/k",
		"postgres://db/k?sslmode=disable&password=s3;cret",
		"postgres://db/k?p%61ssword=s3cret&x=%zz",
		"host=db user=keyward password=s3cret dbname=k",
		"host=db password = 's3 cret' dbname=k",
		`host=db password='s3\' cret' dbname=k`,
		"host=/var/run/postgresql password=s3cret application_name=https://ci.example/job",
		"host=db password=s3cret options=-csearch_path=a://b",
		`host=db password=s3\ cret\ word dbname=k`, "host=db password='s3\\\ncret word' dbname=k",
	} {
		f.Add(s)
	}
	// The reference reads the password from the environment or a
	// password file when the string has none: neither is the string's.
	f.Setenv("PGPASSWORD", "")
	f.Setenv("PGPASSFILE", os.DevNull)
	f.Setenv("PGSERVICEFILE", os.DevNull)
	f.Fuzz(func(t *testing.T, dsn string) {
		shown := DSN(dsn)
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			return
		}
		pw := cfg.Password
		// A password short enough to be anywhere by chance, or one that
		// is in the string elsewhere too (host=s3cret password=s3cret),
		// proves nothing.
		if len(pw) < 4 || strings.Count(dsn, pw) > 1 || strings.Contains(Placeholder+"(a database URL that does not parse)", pw) {
			return
		}
		for _, form := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw)} {
			if strings.Contains(shown, form) {
				t.Fatalf("DSN(%q) = %q, which shows the password %q", dsn, shown, pw)
			}
		}
		// Nor any word of it: a password with spaces is not hidden by
		// hiding its first word.
		for _, word := range strings.Fields(pw) {
			if len(word) >= 4 && strings.Count(dsn, word) <= 1 && !strings.Contains(Placeholder, word) && strings.Contains(shown, word) {
				t.Fatalf("DSN(%q) = %q, which shows %q of the password %q", dsn, shown, word, pw)
			}
		}
	})
}
