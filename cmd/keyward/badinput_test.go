package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// runCLIErrWithin runs the CLI like runCLIErr, but gives up after d, so that a
// command that never ends fails the test instead of hanging it.
func runCLIErrWithin(t *testing.T, d time.Duration, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := newRootCommand()
	cmd.SetArgs(args)
	cmd.SetOut(new(strings.Builder))
	cmd.SetErr(new(strings.Builder))
	err := execute(ctx, cmd)
	if ctx.Err() != nil {
		t.Fatalf("keyward %s did not finish within %v", strings.Join(args, " "), d)
	}
	return err
}

// TestAuditPruneFarBack: a count of days so large that the cut-off overflows
// the store's timestamps is refused; it used to wrap round to a time to
// come, so that prune deleted its own audit.prune events without end.
func TestAuditPruneFarBack(t *testing.T) {
	m := startServer(t)
	for _, before := range []string{"999999999999d", "3652426d"} {
		err := runCLIErrWithin(t, 20*time.Second, "audit", "prune", "--data-dir", m.Config.DataDir, "--before", before)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "10000 years") {
			t.Errorf("prune --before %s: %v, want a usage error about 10000 years", before, err)
		}
	}
	if err := runCLIErrWithin(t, 20*time.Second, "audit", "prune", "--data-dir", m.Config.DataDir, "--before", "3652425d"); err != nil {
		t.Errorf("prune --before 3652425d: %v", err)
	}
}
