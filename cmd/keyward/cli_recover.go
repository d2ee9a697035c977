package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/sakey"
	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/storage"
)

func newRecoverAdminCommand() *cobra.Command {
	cfg := DefaultConfig()
	var (
		applyConfig func() error
		keyFile     string
		enable      bool
	)
	cmd := &cobra.Command{
		Use:   "recover-admin --key-file FILE",
		Short: "Give the administrator a new key, directly in the database",
		Long: `The way back in when every administrator key file is lost, or the
administrator account was disabled or lost its admin scope: working straight
on the database (--data-dir or --db, or the server's --config; no server and
no credentials needed), give the administrator account a new key and write
its key file to --key-file, which must not exist yet. The account gets the
admin scope back if it lost it; --enable also enables it if it is disabled.

The key file is written before the key is stored, so the key never exists
without its private key. Existing keys stay: list them with 'keyward keys
list' and delete the lost ones. The new key is added even to an account that
has the most keys the admin API allows (10). The audit log records the
change with the local user and host that ran this command.

Use the same --config, --issuer and --account-domain as the server, so the
key file names the server's token endpoint and the right account. Without
--issuer or --listen, the key file is for the issuer the store recorded
from the servers' --issuer (read with the master key, found as serve finds
it), else for the one derived from --listen's default, 127.0.0.1:8080; the
output says which issuer the key file is for. With --listen and without
--issuer, a recorded issuer that differs from the derived one is warned
of. Without --issuer, a master key found that does not open the store is
refused before anything is written. A running server picks up the new key
at once; an enabled account within --cache-ttl on SQLite, at once on
PostgreSQL.

` + storeSettingsHelp + `

--key-file and --enable are taken from the command line alone.`,
		Example: `  keyward recover-admin --data-dir keyward-data --key-file admin-key-new.json
  keyward recover-admin --config /etc/keyward/keyward.yaml \
    --key-file /root/admin-key.json --enable`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(); err != nil {
				return err
			}
			// The server's settings name the token endpoint the key file
			// points to (token_uri): a bad --issuer or --listen would make
			// a key file that cannot be used, with its key stored.
			if err := cfg.Validate(); err != nil {
				return usageError{fmt.Errorf("invalid configuration:\n%w", indent(err))}
			}
			if keyFile == "" {
				return usageError{errors.New("--key-file is required: where to write the new key file")}
			}
			_, err := os.Lstat(keyFile)
			inTheWay := err == nil
			// Interrupted, it says so and what became of the key, not
			// the store's "context canceled".
			isInterrupt := func(err error) bool {
				ctxErr := cmd.Context().Err()
				return ctxErr != nil && errors.Is(err, ctxErr)
			}
			st, err := openMaintenanceStore(cmd.Context(), cfg, commandLogger(cmd))
			if err != nil {
				if inTheWay {
					return fmt.Errorf("--key-file %s already exists; name a new file", keyFile)
				}
				if isInterrupt(err) {
					return errors.New("recover-admin interrupted: nothing was changed")
				}
				return err
			}
			defer st.Close()
			if inTheWay {
				// Not a usage error: the command line may be right, the
				// file in the way (as writeNewFile would find it). Before
				// the issuer is looked up: its warnings would not apply.
				email := admin.NewService(st, admin.Config{AccountDomain: cfg.AccountDomain}).Email(admin.AdminAccountName, admin.AdminProject)
				return keyFileInTheWay(cmd.Context(), st, email, keyFile)
			}
			issuer, source, hint, err := recoverIssuer(cmd.Context(), cmd.Flags(), cfg, st, cmd.ErrOrStderr(), commandLogger(cmd))
			if err != nil {
				// A master key that does not open the store: refused
				// before the key file is written, as a start with it is.
				return fmt.Errorf("%w; nothing was changed", err)
			}
			svc := admin.NewService(recoverStore(st), admin.Config{Issuer: issuer, AccountDomain: cfg.AccountDomain,
				DefaultTokenLifetime: cfg.DefaultTokenTTL, MaxTokenLifetime: cfg.MaxTokenTTL})
			var written os.FileInfo // the key file, once written
			var tempLeft string     // its temporary file's note, if left (writtenTempLeft)
			r, err := svc.RecoverAdmin(cmd.Context(), admin.Actor{ID: localOperator("keyward recover-admin")}, enable, func(kf sakey.KeyFile) error {
				b, err := keyFileJSON(kf)
				if err != nil {
					return err
				}
				fi, err := writeNewFileAs(keyFile, writeBytes(b))
				err, tempLeft = writtenTempLeft(err)
				if errors.Is(err, fs.ErrExist) {
					// Made since it was checked for, and left as it is.
					return sayInstead(fmt.Errorf("--key-file %s already exists; name a new file", keyFile), err)
				} else if err != nil {
					return err
				}
				written = fi
				return nil
			})
			// A key that may be stored keeps its key file, its one copy.
			kept := fmt.Sprintf("its key file %s is kept: run recover-admin again with the same --key-file to see (it says whether the store has the key)", keyFile)
			if err != nil && isInterrupt(err) {
				switch {
				case r.KeyStored:
					err = fmt.Errorf("recover-admin interrupted: the new key is stored and its key file written to %s, but the administrator account may not be enabled or hold the %s scope yet", keyFile, admin.AdminScope)
				case errors.Is(err, admin.ErrKeyStoredUnknown):
					err = errors.New("recover-admin interrupted, maybe as the store committed: whether the new key was stored is not known, so " + kept)
				case written != nil:
					err = errors.New("recover-admin interrupted: " + removeUnstoredKeyFile(keyFile, written))
				default:
					err = errors.New("recover-admin interrupted: nothing was changed")
				}
				if tempLeft != "" {
					err = fmt.Errorf("%w; %s", err, tempLeft)
				}
				return err
			}
			if err != nil {
				if errors.Is(err, admin.ErrKeyStoredUnknown) {
					err = fmt.Errorf("%w; the store may have committed it, so %s", err, kept)
				} else if written != nil && !r.KeyStored {
					err = fmt.Errorf("%w; %s", err, removeUnstoredKeyFile(keyFile, written))
				}
				if tempLeft != "" {
					err = fmt.Errorf("%w; %s", err, tempLeft)
				}
				switch {
				case errors.Is(err, admin.ErrAdminDisabled):
					return fmt.Errorf("%w; run again with --enable to enable it", err)
				case r.KeyStored:
					return fmt.Errorf("the new key is stored and its key file written to %s, but: %w", keyFile, err)
				}
				return err
			}
			// The email is the store's, shown as the tables show one,
			// and quoted for the shell in the commands to paste.
			out, email := cmd.OutOrStdout(), r.Account.Email
			fmt.Fprintf(out, "wrote a new key for %s to %s\n", cell(email), keyFile)
			fmt.Fprintf(out, "the key file is for the issuer %s, %s; for a server with another issuer, give recover-admin its %s\n", issuer, source, hint)
			warnTempLeft(cmd.ErrOrStderr(), keyFile, tempLeft)
			// Only the keys that still work stay valid: a disabled or
			// expired one, often the reason for the recovery, opens nothing.
			valid := 0
			for _, k := range r.OtherKeys {
				if !k.Disabled && !k.Expired(time.Now()) {
					valid++
				}
			}
			if valid > 0 {
				others, which := fmt.Sprintf("%d other keys stay", valid), "one"
				if valid == 1 {
					others, which = "other key stays", "it"
				}
				fmt.Fprintf(out, "its %s valid; if %s was lost or leaked, find its KEY_ID and disable it:\n  %s\n  %s\n",
					others, which, shellCommand("keyward", "keys", "list", email), shellCommand("keyward", "keys", "disable", email, "KEY_ID"))
			}
			return nil
		},
	}
	applyConfig = cfg.addServerSettings(cmd.Flags(), "directory of the SQLite database", "issuer", "listen", "tls-cert", "tls-key", "insecure-http", "account-domain", "master-key-file")
	// Nothing listens here: these are the server's settings, which name
	// the key file's token_uri, and are checked as serve checks them.
	for name, usage := range map[string]string{
		"issuer":          "the server's --issuer: the key file's token_uri is it and /token (default: without --listen, the issuer the store recorded from the servers' --issuer; else derived from --listen)",
		"listen":          "the server's --listen, from which the issuer is derived without --issuer (and, not given, without one recorded in the store); checked as serve checks it (not loopback: give --tls-cert and --tls-key, or --insecure-http)",
		"tls-cert":        "the server's --tls-cert (give --tls-key with it): an issuer derived from --listen is then https; with --issuer, or without --listen an issuer the store recorded, that one is used as it is",
		"tls-key":         "the server's --tls-key, which goes with --tls-cert",
		"insecure-http":   "the server's --insecure-http, for a --listen that is not loopback without --tls-cert",
		"master-key-file": "the server's --master-key-file (or KEYWARD_MASTER_KEY; default: <data-dir>/master.key), read only for the issuer the store recorded: used without --issuer or --listen, warned of when it differs from the one --listen gives; without --issuer, one that does not open the store is refused",
	} {
		cmd.Flags().Lookup(name).Usage = usage
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "where to write the new key file (mode 0600; must not exist) (required)")
	cmd.Flags().BoolVar(&enable, "enable", false, "also enable the administrator account if it is disabled")
	return cmd
}

// keyFileInTheWay is recover-admin's error for a --key-file, path, that
// exists. When it is a key file of the administrator account, email,
// whose key the store does not hold, it says so: that is what a
// recover-admin killed between writing the file and storing its key
// leaves (one that fails otherwise removes it), and it opens nothing
// ("Invalid JWT Signature."), though it looks like the key file asked for.
// Only a regular file is read, as such a run leaves one: a named pipe or
// a device (/dev/stdout) would wait for a writer or for typing.
func keyFileInTheWay(ctx context.Context, st storage.Storage, email, path string) error {
	inTheWay := fmt.Errorf("--key-file %s already exists; name a new file", path)
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		return inTheWay
	}
	b, err := readKeyFile(path)
	if err != nil {
		return inTheWay
	}
	var kf sakey.KeyFile
	if json.Unmarshal(b, &kf) != nil || kf.PrivateKeyID == "" || kf.ClientEmail != email {
		return inTheWay
	}
	if _, err := st.GetKey(ctx, kf.PrivateKeyID); err == nil {
		// What a recover-admin whose commit's answer was lost keeps.
		return fmt.Errorf("--key-file %s already exists, and holds a key of %s that the store has: keep it, it is the one copy of that key's private key; name a new file",
			path, cell(email))
	} else if !errors.Is(err, storage.ErrNotFound) {
		return inTheWay
	}
	return fmt.Errorf("--key-file %s already exists, and holds a key of %s that the store does not have (a recover-admin stopped before it stored the key leaves one): it opens nothing; delete it, or name a new file",
		path, cell(email))
}

// recoverIssuer is the issuer recover-admin's key file is for, where it
// came from, for its output, and the settings that give another: the
// --issuer given; without --issuer or --listen, the one the store recorded
// from the servers' --issuer; else the one derived from --listen (its
// default unless given). A recorded issuer that cannot be read is warned
// of on stderr; a master key file others may read, on log. A master key
// found that does not open the store is the error (signer.CheckMasterKey's,
// signer.ErrWrongMasterKey), with or without --listen.
func recoverIssuer(ctx context.Context, flags *pflag.FlagSet, c Config, st storage.Storage, stderr io.Writer, log *slog.Logger) (issuer, source, hint string, err error) {
	if c.Issuer != "" {
		return c.Issuer, "from " + c.flag("issuer"), "--issuer", nil
	}
	recorded, rerr := recordedIssuer(ctx, c, st, log)
	if errors.Is(rerr, signer.ErrWrongMasterKey) {
		return "", "", "", rerr
	}
	if !flags.Changed("listen") {
		if rerr != nil {
			fmt.Fprintf(stderr, "warning: could not read the issuer recorded in the store (%v); the key file is for the one derived from --listen\n", rerr)
		}
		if recorded != "" {
			return recorded, "recorded in the store by the server's --issuer", "--issuer", nil
		}
	}
	issuer = c.issuer(c.Listen)
	source = fmt.Sprintf("derived from %s %s", c.flag("listen"), c.Listen)
	if !flags.Changed("listen") {
		source += " (the default)"
	} else if rerr == nil && recorded != "" && recorded != issuer {
		// --listen given wins, but the servers' --issuer may be
		// another: the key file would then name a token endpoint they
		// refuse. One that cannot be read goes unsaid: --listen was
		// given.
		fmt.Fprintf(stderr, "warning: the store records the issuer %s from the servers' --issuer, and the key file is for %s, %s: if the servers run with --issuer %s, give recover-admin %s\n",
			recorded, issuer, source, recorded, shellCommand("--issuer", recorded))
	}
	return issuer, source, "--issuer or --listen", nil
}

// recordedIssuer is the issuer the store recorded from the servers'
// --issuer (signer.RecordIssuer: the first start's that gave one), ""
// when it has none. One recorded while
// the master key, which seals it, is not to be found here (kept apart and
// not given) is an error saying so: the key file would be for the issuer
// derived from --listen, which the servers' is not. A master key found
// that does not open the store (signer.CheckMasterKey) is an error too,
// signer.ErrWrongMasterKey.
func recordedIssuer(ctx context.Context, c Config, st storage.Storage, log *slog.Logger) (string, error) {
	key, source, err := findMasterKey(c)
	if err != nil {
		return "", err
	}
	if key != nil && source != "" {
		checkMasterKeyMode(source, c.MasterKeyFile == "", log)
	}
	if key == nil {
		if _, err := st.GetSealedValue(ctx, signer.IssuerName); err == nil {
			return "", errors.New("the store records one, sealed with the master key, which is not found here: give recover-admin the server's --master-key-file or KEYWARD_MASTER_KEY, or its --issuer")
		}
		return "", nil
	}
	if err := signer.CheckMasterKey(ctx, st, key); err != nil {
		if source != "" {
			return "", fmt.Errorf("master key %s: %w", source, err)
		}
		return "", fmt.Errorf("%s: %w", masterKeyEnv, err)
	}
	sealer, err := signer.NewSealer(key)
	if err != nil {
		return "", err
	}
	// Given no issuer of its own, RecordIssuer records nothing: it reads.
	return signer.RecordIssuer(ctx, st, sealer, "", time.Now())
}

// localOperator names who ran command on this machine, for the audit log.
func localOperator(command string) string {
	name := "unknown user"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown host"
	}
	return operatorName(name, host, command)
}

// operatorName is localOperator's actor. The user and host names come
// from the system and need not be UTF-8: the store keeps U+FFFD in place
// of such bytes, as it does for every hashed text of an audit event
// (storage.AuditEvent.Prepare), and the admin service only compares an
// actor with account IDs, which a local operator never is.
func operatorName(user, host, command string) string {
	return fmt.Sprintf("local operator %s@%s (%s)", user, host, command)
}

// recoverStore is the store recover-admin changes; tests replace it to
// lose a commit's answer.
var recoverStore = func(st storage.Storage) storage.Storage { return st }

// removeUnstoredKeyFile removes the key file path that recover-admin
// wrote, written (writeNewFileAs's), for a key that was then not stored,
// and says what became of it. It is left if it is another file now.
func removeUnstoredKeyFile(path string, written os.FileInfo) string {
	switch left, err := removeWrittenFile(path, written); {
	case err != nil:
		return fmt.Sprintf("the key was not stored, and its key file %s could not be removed (%v): delete it, it opens nothing", path, err)
	case left == writtenGone:
		return "the key was not stored, and no key file of it was left at " + path
	case left == writtenReplaced:
		return "the key was not stored; " + path + " holds another file now, and was left as it is"
	}
	return "the key was not stored, and its key file " + path + " was removed again"
}

// writeNewFile writes a new file at path, mode 0600, with what write
// streams into it, as writeNewFileAtomic does: into a temporary file next
// to it, synced and then linked to path, so that path never holds part of
// it, even after a crash, and a file there, even one made meanwhile, is
// left as it is (the error is then fs.ErrExist). The directory is synced
// too, so that the new name survives a crash (fsync(2): syncing a file
// does not make its directory entry durable). On any failure path is not
// left: what the caller then does may rely on the file (audit prune
// --export deletes the events it wrote), so a directory that cannot be
// synced is a failure, and the file just put at path is removed again;
// the error says so. Its temporary file left once the file is in place
// is no failure (writtenTempLeft).
func writeNewFile(path string, write func(io.Writer) error) error {
	_, err := writeNewFileAs(path, write)
	return err
}

// writeNewFileAs is writeNewFile, and returns the file written too, as it
// was before it was given the name path, for removeWrittenFile.
func writeNewFileAs(path string, write func(io.Writer) error) (os.FileInfo, error) {
	var written os.FileInfo
	err := writeTempThen(path, 0o600, write, recordWritten(&written, publishNew))
	if dse, ok := errors.AsType[*dirSyncError](err); ok {
		// Its temporary file, if left, is named after what became of
		// the file, not in the cause.
		cause, tempLeft := splitTempLeft(err)
		var said string
		switch left, rerr := removeWrittenFile(path, dse.file); {
		case rerr != nil && tempLeft != "":
			// Both files hold what was written: one instruction names both.
			lt := err.(*tempLeftError)
			said = fmt.Sprintf("%s, written but not made durable, could not be removed (%v), nor could its temporary file %s, a second name of it (%v): delete both", path, rerr, lt.tmp, lt.remove)
			tempLeft = ""
		case rerr != nil:
			said = fmt.Sprintf("%s, written but not made durable, could not be removed (%v): delete it", path, rerr)
		case left == writtenGone:
			said = path + " is gone"
		case left == writtenReplaced:
			said = path + " is another file now, and was left as it is"
		default:
			said = path + ", written but not made durable, was removed"
		}
		if tempLeft != "" {
			said += ", but " + tempLeft
		}
		return nil, fmt.Errorf("%w; %s", cause, said)
	}
	return written, err
}

// syncDir makes the entries of the directory dir durable (a variable for
// tests).
var syncDir = syncDirectory
