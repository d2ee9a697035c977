package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/sakey"
	"github.com/keyward/keyward/internal/testkeyward"
)

// A key file saved for an administrator account another replica created
// first is removed, unless the file now holds another key (a data
// directory shared with that replica, which wrote its own since); the
// warning says which.
func TestDiscardKeyFile(t *testing.T) {
	ours := sakey.KeyFile{PrivateKeyID: "ours"}
	for _, tt := range []struct {
		name    string
		onDisk  *sakey.KeyFile
		removed bool
		says    string
	}{
		{"ours", &ours, true, "this server's was removed"},
		{"the other replica's", &sakey.KeyFile{PrivateKeyID: "theirs"}, false, "this server's holds another key now, and was left"},
		{"gone", nil, false, "this server's is gone"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "admin-key.json")
			if tt.onDisk != nil {
				if err := writeKeyFile(path, *tt.onDisk); err != nil {
					t.Fatal(err)
				}
			}
			var log testkeyward.SyncBuffer
			data, err := keyFileJSON(ours)
			if err != nil {
				t.Fatal(err)
			}
			discardKeyFile(path, data, slog.New(slog.NewTextHandler(&log, nil)))
			_, err = os.Stat(path)
			if gone := os.IsNotExist(err); gone != (tt.removed || tt.onDisk == nil) {
				t.Fatalf("file gone %v, want %v", gone, tt.removed || tt.onDisk == nil)
			}
			if want := map[bool]string{true: "removed=true", false: "removed=false"}[tt.removed]; !strings.Contains(log.String(), want) || !strings.Contains(log.String(), "at the same time") || !strings.Contains(log.String(), tt.says) {
				t.Errorf("logged %q, want the warning with %s, saying %q", log.String(), want, tt.says)
			}
		})
	}
}
