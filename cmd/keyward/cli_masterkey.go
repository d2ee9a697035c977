package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/masterkey"
	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/storage"
)

func newMasterKeyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "master-key",
		Short: "Manage the master key that encrypts the server's own secrets",
		Args:  noArgs,
	}
	cmd.AddCommand(newMasterKeyRotateCommand())
	return cmd
}

func newMasterKeyRotateCommand() *cobra.Command {
	cfg := DefaultConfig()
	var (
		applyConfig func() error
		newKeyFile  string
	)
	cmd := &cobra.Command{
		Use:   "rotate --new-master-key-file FILE",
		Short: "Re-encrypt signing keys and secret pepper under a new master key",
		Long: `Re-encrypt everything the master key protects in the database — the
token-signing keys and the pepper that keys client-secret hashes — under a
new master key, in one transaction: afterwards only the new key opens the
store, and every client secret, key and token stays valid.

The current key is found as 'keyward serve' finds it (--master-key-file,
KEYWARD_MASTER_KEY or KEYWARD_MASTER_KEY_FILE, the --config file's
master-key-file, or <data-dir>/master.key); the new one is read from
--new-master-key-file (32 bytes: raw, hex or base64; e.g. made with
'openssl rand -hex 32'). A new key of 32 printable characters is refused:
it would be taken as 32 raw bytes (a passphrase, say), far fewer than 256
bits of randomness. The new key's file is synced to disk before the
database changes (on Unix). When the current key is <data-dir>/master.key,
the old key is kept beside it as master.key.old-<UTC time> and the new key
is written and synced next to it first (a data directory that cannot take
them is refused with nothing changed), and put in its place once the
database is re-encrypted. A master.key that is a symbolic link is refused,
nothing changed: rotate the file it names with --master-key-file, then
point the link at the new key's file.

Stop every server first (with SQLite the command refuses to run while a
server holds the data directory): one still running with the old key keeps
serving with the keys it holds, but can no longer load or add signing keys.
On PostgreSQL it waits for a server starting on the store (or an import
into it, or another rotate of it) to end, and a server starting meanwhile
waits for it, then loads the new <data-dir>/master.key or refuses the old
key.
Then start every server with the new key. Back-ups taken before the rotation
still need the old key.

` + storeSettingsHelp + `

--new-master-key-file is taken from the command line alone.`,
		Example: `  (umask 077; openssl rand -hex 32 > /etc/keyward/master.key.new)
  keyward master-key rotate --config /etc/keyward/keyward.yaml \
    --new-master-key-file /etc/keyward/master.key.new
  keyward master-key rotate --data-dir keyward-data \
    --new-master-key-file new.key`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(); err != nil {
				return err
			}
			if newKeyFile == "" {
				return usageError{errors.New("--new-master-key-file is required")}
			}
			b, err := readKeyFile(newKeyFile)
			if err != nil {
				return fmt.Errorf("new master key: %w", err)
			}
			newKey, err := masterkey.Parse(b)
			if err != nil {
				return fmt.Errorf("new master key %s: %w", newKeyFile, err)
			}
			if textMasterKey(newKey) {
				return usageError{fmt.Errorf("new master key %s: it is 32 printable characters, which would be taken as 32 raw bytes: a passphrase, or 16 bytes in hex, holds far fewer than 256 bits; make one with openssl rand -hex 32", newKeyFile)}
			}
			st, err := openMaintenanceStore(cmd.Context(), cfg, commandLogger(cmd))
			if err != nil {
				return err
			}
			defer st.Close()
			unlock, err := lockForRotate(cmd.Context(), cfg, st, commandLogger(cmd))
			if err != nil {
				return err
			}
			defer unlock()
			rotateLocked()
			oldKey, source, err := findMasterKey(cfg)
			if err != nil {
				return currentMasterKeyError(cfg, source, err)
			}
			if oldKey == nil {
				return currentMasterKeyError(cfg, source, nil)
			}
			if bytes.Equal(oldKey, newKey) {
				return usageError{errors.New("the new master key is the current one")}
			}
			if err := refuseLinkedMasterKey(cfg, source, newKeyFile); err != nil {
				return err
			}
			if source != "" {
				checkMasterKeyMode(source, cfg.MasterKeyFile == "", commandLogger(cmd))
			}
			checkMasterKeyMode(newKeyFile, false, commandLogger(cmd))
			// Once the store commits, only the new key opens it, and it
			// may be in --new-master-key-file alone, just written and
			// not yet on disk: a power failure then would leave a store
			// no key opens (master.key is replaced only after the
			// commit).
			if err := syncExistingFile(newKeyFile); err != nil {
				return fmt.Errorf("new master key %s: cannot make it durable before the store is sealed under it, nothing was changed: %w", newKeyFile, err)
			}
			now := time.Now()
			ev := storage.AuditEvent{Time: now, Action: "master_key.rotate", Outcome: storage.OutcomeSuccess,
				Actor: localOperator("keyward master-key rotate")}
			unchanged := false // reencrypt's error is of a store surely unchanged
			reencrypt := func() error {
				if err := rotateStore(cmd.Context(), st, oldKey, newKey, ev); err != nil {
					if errors.Is(err, signer.ErrWrongMasterKey) {
						unchanged = true
						return fmt.Errorf("the current master key does not open this store, nothing was changed: %w", err)
					}
					// The error may be the commit's lost answer (a cancel
					// or a dropped connection during COMMIT), the store
					// re-encrypted or not: it is read again to tell.
					interrupted := cmd.Context().Err() != nil && errors.Is(err, cmd.Context().Err())
					sealed := resealedUnder(st, oldKey, newKey)
					if sealed == sealedOld && errors.Is(err, storage.ErrCommitUnknown) {
						// A COMMIT sent, its answer lost (PostgreSQL):
						// the server may carry it out after the read.
						sealed = sealedUnknown
					}
					switch sealed {
					case sealedOld:
						unchanged = true
						if interrupted {
							return errors.New("master-key rotate interrupted: nothing was changed")
						}
						return fmt.Errorf("nothing was changed: %w", err)
					case sealedUnknown:
						what := fmt.Sprintf("master-key rotate failed (%v)", err)
						if interrupted {
							what = "master-key rotate interrupted"
						}
						return fmt.Errorf("%s, maybe as the store committed: whether the store was re-encrypted under the new master key is not known; keep both keys (the current one, from %s, and %s), start with the new one: %s, and if it is refused, with the current one",
							what, masterKeySourceName(source), newKeyFile, shellCommand("--master-key-file", newKeyFile))
					}
					// sealedNew: committed, its answer lost.
				}
				return nil
			}
			// checkNewKey checks, once the store committed, that it opens
			// with the new key. A failure is no sign the store does not
			// need it (the store may have become unreachable): it is said
			// to need it, naming holders, the files that hold it.
			checkNewKey := func(holders string) error {
				// Its own short context, as resealedUnder's: a cancel
				// after the commit is no sign the new key does not open
				// the store, which needs it now.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if _, err := signer.LoadPepper(ctx, st, newKey, now); err != nil {
					return fmt.Errorf("the store was re-encrypted and is sealed under the new master key, which %s, but reading it back with that key failed (%w): keep %s and start with: %s",
						holders, err, newKeyFile, shellCommand("--master-key-file", newKeyFile))
				}
				return nil
			}
			out := cmd.OutOrStdout()
			if source != generatedMasterKeyPath(cfg) {
				if err := reencrypt(); err != nil {
					return err
				}
				fmt.Fprintln(out, "re-encrypted the signing keys and the client-secret pepper under the new master key")
				// Servers still running need telling whether or not the
				// store reads back: it is sealed under the new key.
				err := checkNewKey(newKeyFile + " holds")
				if err == nil {
					fmt.Fprintf(out, "start every server with the new key (or its content in KEYWARD_MASTER_KEY): %s\n", shellCommand("--master-key-file", newKeyFile))
				}
				stillRunning(out, cfg)
				return err
			}
			// The old key, which master.key held alone, is kept beside it
			// (written and synced before the store changes): back-ups
			// taken before the rotation need it.
			// Never over another kept key (two rotations in one second, a
			// clock set back): a taken name gets a suffix, up to
			// -maxKeptSuffix. Rotations hold the locks of lockForRotate,
			// so none takes it meanwhile.
			stamp := source + ".old-" + now.UTC().Format("20060102T150405Z")
			kept := stamp
			for i := 2; ; i++ {
				if _, err := os.Lstat(kept); err != nil { // free; another error, the write says
					break
				}
				if i > maxKeptSuffix {
					return fmt.Errorf("the current key %s cannot be kept for the back-ups taken before: %s and %d names like it are taken (-2 to -%d), nothing was changed: move the kept keys elsewhere",
						source, stamp, maxKeptSuffix-1, maxKeptSuffix)
				}
				kept = fmt.Sprintf("%s-%d", stamp, i)
			}
			oldFile, err := os.ReadFile(source)
			if err == nil {
				err = writeTempThen(kept, 0o600, writeBytes(oldFile), renameFile)
			}
			if err != nil {
				return fmt.Errorf("the current key %s cannot be kept as %s, for the back-ups taken before, nothing was changed: %w", source, kept, err)
			}
			// The new master.key is written and synced next to it before
			// the store changes, and put in its place after: a data
			// directory that cannot take it (read-only, full) is found
			// with nothing changed, not once the store needs the new key.
			var reencryptErr error
			reencrypted := false
			err = writeTempThen(source, 0o600, writeBytes([]byte(fmt.Sprintf("%x\n", newKey))), func(tmp, path string) error {
				if reencryptErr = reencrypt(); reencryptErr != nil {
					return reencryptErr
				}
				reencrypted = true
				fmt.Fprintln(out, "re-encrypted the signing keys and the client-secret pepper under the new master key")
				return renameFile(tmp, path)
			})
			switch {
			case reencryptErr != nil:
				if unchanged {
					reencryptErr = removeKeptCopy(kept, reencryptErr)
				}
				// With the new key's temporary file, if left.
				return sayInstead(reencryptErr, err)
			case !reencrypted:
				return removeKeptCopy(kept, fmt.Errorf("the new key cannot be written in place of %s, nothing was changed: %w", source, err))
			case err != nil:
				// Only the new key's own file is sure: after a rename
				// left unsynced, the file holds the new key now, but
				// maybe the old one after a crash; after any other
				// failure, the old one.
				held := "still holds the old one, which could not be replaced"
				if _, ok := errors.AsType[*dirSyncError](err); ok {
					held = "holds the new one, but may hold the old one again after a crash"
				}
				return fmt.Errorf("the store now needs the new key, and %s %s (%w): keep %s and start with: %s",
					source, held, err, newKeyFile, shellCommand("--master-key-file", newKeyFile))
			}
			fmt.Fprintf(out, "replaced %s with the new key\n", source)
			fmt.Fprintf(out, "kept the old key as %s: back-ups taken before this rotation need it; move it where such keys are kept, or delete it once none does\n", kept)
			stillRunning(out, cfg)
			// After master.key is replaced: the store needs the new key
			// whatever the check finds.
			return checkNewKey(newKeyFile + " and " + source + " hold")
		},
	}
	applyConfig = cfg.addServerSettings(cmd.Flags(), "directory of the SQLite database, and of the generated master key if that is the current one", "master-key-file")
	cmd.Flags().StringVar(&newKeyFile, "new-master-key-file", "", "file with the new 32-byte master key: raw, hex or base64 (required)")
	return cmd
}

// stillRunning says, after a rotation on PostgreSQL, what becomes of
// servers that run on the store meanwhile (replicas not stopped first):
// they keep the old master key in memory, serving with what they hold but
// unable to load or add signing keys, until each is restarted with the new
// key. On SQLite the rotation refuses to run beside a server.
func stillRunning(out io.Writer, c Config) {
	if c.DB == "" {
		return
	}
	fmt.Fprintln(out, "servers still running on this store keep the old master key in memory: they go on serving with the signing keys and pepper they hold, but can no longer load or add signing keys (a signing-keys rotate asked of one is refused with 409 conflict); restart each one with the new key")
}

// refuseLinkedMasterKey refuses a rotation of the generated
// <data-dir>/master.key, source, when it is a symbolic link (to a secret
// mount, say): the new key would be renamed over the link, leaving a file
// of its own in the data directory and the old key where the link points,
// which the operator keeps. It says to rotate that file with
// --master-key-file, then point the link at the new key's file.
func refuseLinkedMasterKey(c Config, source, newKeyFile string) error {
	if source != generatedMasterKeyPath(c) {
		return nil
	}
	fi, err := os.Lstat(source)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return nil // findMasterKey has read it
	}
	target, err := filepath.EvalSymlinks(source)
	if err != nil {
		target, _ = os.Readlink(source)
	}
	return fmt.Errorf("%s is a symbolic link to %s, where the key is kept: a rotation would put a file of its own in place of the link and leave the old key in %s; nothing was changed: rotate that file with %s, then point the link at %s",
		source, target, target, shellCommand("--master-key-file", target, "--new-master-key-file", newKeyFile), newKeyFile)
}

// removeKeptCopy removes kept, the copy of the current master key that
// master-key rotate wrote before the store changed, when the rotation
// failed with err and nothing changed: the current key is still
// master.key. A copy that cannot be removed is named in the error.
func removeKeptCopy(kept string, err error) error {
	if rerr := os.Remove(kept); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return fmt.Errorf("%w (but its copy of the current key %s could not be removed: %v; delete it)", err, kept, rerr)
	}
	return err
}

// rotateLocked is called once master-key rotate holds its locks; tests
// start servers meanwhile.
var rotateLocked = func() {}

// maxKeptSuffix bounds the suffixes master-key rotate tries for the kept
// copy of the old key (master.key.old-<UTC time>-2, -3, …); a variable so
// that tests can lower it.
var maxKeptSuffix = 1000

// What a store holds sealed after a rotation's error: resealedUnder.
const (
	sealedUnknown = iota
	sealedOld
	sealedNew
)

// resealedUnder tells which of the two master keys opens the
// client-secret pepper st holds now, which a rotation re-encrypts with
// everything else in one transaction; sealedUnknown when it cannot be read
// (on a context of its own: the command's may be cancelled) or neither
// opens it.
func resealedUnder(st signer.PepperStore, oldKey, newKey []byte) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := st.GetSealedValue(ctx, signer.PepperName)
	if errors.Is(err, storage.ErrNotFound) {
		// The rotation stores the pepper before it re-encrypts.
		return sealedOld
	} else if err != nil {
		return sealedUnknown
	}
	for _, k := range []struct {
		key  []byte
		says int
	}{{newKey, sealedNew}, {oldKey, sealedOld}} {
		if sealer, err := signer.NewSealer(k.key); err == nil {
			if _, err := sealer.Open(storage.SealedValueAAD(signer.PepperName), v.Sealed); err == nil {
				return k.says
			}
		}
	}
	return sealedUnknown
}

// masterKeySourceName names where findMasterKey found the key: source,
// or the environment variable when source is "".
func masterKeySourceName(source string) string {
	if source == "" {
		return masterKeyEnv
	}
	return source
}

// rotateStore re-encrypts the store under the new master key; tests
// replace it to lose a commit's answer.
var rotateStore = signer.RotateMasterKey

// lockForRotate takes the locks a master-key rotate holds until it ends.
// With SQLite, the data directory's (lockForMaintenance): it refuses to
// run beside a server. With PostgreSQL, the store's first-start lock,
// which a server holds while it starts and an import while it loads, so
// that a server starting meanwhile waits for the rotation instead of
// loading the old pepper and signing keys and failing part way
// (checkNotReplaced); and before it, when the current key is
// <data-dir>/master.key, which the rotation replaces, the data
// directory's lock, as a server starting takes it (lockFirstStart), so
// that one starting on the same directory waits there, as for another
// start, and removes no temporary file of the rotation's. A rotation waits
// for a server holding either, saying so on stderr.
func lockForRotate(ctx context.Context, c Config, st storage.Storage, log *slog.Logger) (release func(), err error) {
	if c.DB == "" {
		return lockForMaintenance(c, rotateHolder)
	}
	releaseDir := func() {}
	if _, source, _ := findMasterKey(c); source == generatedMasterKeyPath(c) {
		r, err := lockFirstStart(ctx, c.DataDir, rotateHolder, log)
		if _, ok := errors.AsType[*lockRefusedError](err); ok {
			// A server starting waits for the store's lock below before
			// it reads master.key; and a data directory that cannot be
			// written is refused before the store changes, when the new
			// master.key is written next to the old.
			r, err = nil, nil
		}
		if err != nil {
			return nil, err
		}
		if r != nil {
			releaseDir = r
		}
	}
	unlock, err := st.LockFirstStart(ctx, func() {
		log.Warn("waiting for a server's start on this store, an import into it or another master-key rotate of it, to end: it holds the store's first-start lock (interrupt to stop the rotation)", "store", storeName(c))
	})
	if err != nil {
		releaseDir()
		return nil, fmt.Errorf("wait for a server's start, an import or another master-key rotate to end: %w", err)
	}
	return func() {
		unlock()
		releaseDir()
	}, nil
}

// currentMasterKeyError is rotate's error for a current master key it
// cannot read, err (nil: none is given, and source, <data-dir>/master.key,
// does not exist), with a hint when the key is missing, as serve gives
// one for a missing --master-key-file: where the servers' key is to be
// given, and that no new key stands in for it.
func currentMasterKeyError(c Config, source string, err error) error {
	const sealed = "no new key stands in for it: the store opens only with the key it was sealed with"
	switch {
	case err == nil:
		return fmt.Errorf("no current master key: neither --master-key-file nor %s is set, and %s does not exist: "+
			"give the key the store's servers start with, as they are given it (--master-key-file FILE, %[1]s, or their --config), "+
			"or the --data-dir whose master.key it is; "+sealed, masterKeyEnv, source)
	case errors.Is(err, fs.ErrNotExist) && c.MasterKeyFile != "":
		return fmt.Errorf("%w (%s, the current master key): give the file of the key the store's servers start with; "+sealed, err, c.flag("master-key-file"))
	}
	return err
}
