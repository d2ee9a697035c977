package redact

import (
	"strings"
	"testing"
)

func TestDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://keyward:s3cret@db:5432/k?sslmode=verify-full", "postgres://keyward:xxxxx@db:5432/k?sslmode=verify-full"},
		{"postgres://keyward@db/k?password=s3cret&sslmode=require", "postgres://keyward@db/k?password=xxxxx&sslmode=require"},
		{"postgres://db/k?sslpassword=s3cret", "postgres://db/k?sslpassword=xxxxx"},
		{"postgres://db/k", "postgres://db/k"},
		{"host=db user=keyward password=s3cret dbname=k", "host=db user=keyward password=xxxxx dbname=k"},
		{"host=db password = 's3 cret' dbname=k", "host=db password = xxxxx dbname=k"},
		// A "://" in a key=value string makes it no URL: pgx reads it as
		// key=value, its password there.
		{"host=/var/run/postgresql password=s3cret application_name=https://ci/job", "host=/var/run/postgresql password=xxxxx application_name=https://ci/job"},
		// A backslash escapes a space or a line break, quoted or not.
		{`host=db password=s3\ cret dbname=k`, "host=db password=xxxxx dbname=k"},
		{"host=db password='s3\\\ncret' dbname=k", "host=db password=xxxxx dbname=k"},
		// A quote not closed (a typo pgx refuses) runs to the end: the
		// rest of the string may be the password.
		{"host=db password='s3 cret dbname=k", "host=db password=xxxxx"},
		{"postgres://u:s3cret@db:bad port/k", "(a database URL that does not parse)"},
		// A query with a pair that does not parse: that pair is hidden
		// whole, the others are kept, their passwords hidden.
		{"postgres://db/k?sslmode=disable&password=s3;cret", "postgres://db/k?sslmode=disable&xxxxx"},
		{"postgres://db/k?password=%zzs3cret&sslmode=require", "postgres://db/k?xxxxx&sslmode=require"},
		{"postgres://db/k?a=1;password=s3cret&sslpassword=s3cret&sslmode=verify-full", "postgres://db/k?xxxxx&sslpassword=xxxxx&sslmode=verify-full"},
		{"postgres://db/k?p%61ssword=s3cret&x=%zz", "postgres://db/k?p%61ssword=xxxxx&xxxxx"},
		{"postgres://db/k?%zzpassword=s3cret", "postgres://db/k?xxxxx"},
		{"postgres://db/k#password=s3cret", "postgres://db/k#xxxxx"},
	}
	for _, tt := range tests {
		got := DSN(tt.in)
		if strings.Contains(got, "s3") || got != tt.want {
			t.Errorf("DSN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
