package transfer_test

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/transfer"
)

// TestImportOldExportPepper: a file from a release that exported no
// pepper, whose server (master key B) hashed secrets with the pepper it
// derived from B, imported over a stopped first start that sealed its
// own pepper and signing key under master key A: a server started with
// B, as the docs say, gets the pepper the old release hashed the file's
// secrets with, and stores it; one with A opens nothing. Every server on
// the store then hashes secrets alike. It seals and derives as the
// servers do (signer.LoadPepper), not with stand-in bytes.
func TestImportOldExportPepper(t *testing.T) {
	masterA, masterB := bytes.Repeat([]byte{0xa}, 32), bytes.Repeat([]byte{0xb}, 32)
	sealerA, _ := signer.NewSealer(masterA)
	sealerB, _ := signer.NewSealer(masterB)
	oldPepper, err := hkdf.Key(sha256.New, masterB, nil, "keyward client-secret pepper", 32)
	if err != nil {
		t.Fatal(err)
	}
	ev := storage.AuditEvent{Time: t0, Action: "x", Outcome: storage.OutcomeSuccess}
	for _, target := range targets {
		t.Run(target.name, func(t *testing.T) {
			ctx := context.Background()
			dump := exported(t)
			dump.SealedValues = nil
			for i, k := range dump.SigningKeys {
				dump.SigningKeys[i].Sealed = sealerB.Seal(k.ID, []byte("private key "+k.ID))
			}
			if len(dump.SigningKeys) == 0 || len(dump.Secrets) == 0 {
				t.Fatal("the export has no signing key or no secret")
			}
			dump.Secrets[0].Hash = clientauth.HashSecret(oldPepper, "the old release's secret")

			dst := target.open(t)
			// The first start with A: its pepper, then a signing key.
			if _, err := signer.LoadPepper(ctx, dst, masterA, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			first := storage.SigningKey{ID: "first", Algorithm: "ES256", Sealed: sealerA.Seal("first", []byte("k")), CreatedAt: t0, ActivatedAt: t0}
			if _, err := dst.UpdateSigningKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, error) { return []storage.SigningKey{first}, nil }, ev); err != nil {
				t.Fatal(err)
			}

			if err := transfer.Import(ctx, dst, dump, t0); err != nil {
				t.Fatalf("import of a file without a pepper over a first start: %v", err)
			}
			if _, err := signer.LoadPepper(ctx, dst, masterA, t0); err == nil {
				t.Fatal("the first start's master key opens the store after the import")
			}
			if _, err := dst.GetSealedValue(ctx, signer.PepperName); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("a server with the wrong master key stored a pepper: %v", err)
			}
			for range 2 { // derived and stored, then read back
				pepper, err := signer.LoadPepper(ctx, dst, masterB, t0)
				if err != nil {
					t.Fatalf("a server with the file's master key: %v", err)
				}
				if !bytes.Equal(clientauth.HashSecret(pepper, "the old release's secret"), dump.Secrets[0].Hash) {
					t.Fatal("a server with the file's master key hashes the old release's secret differently")
				}
			}
		})
	}
}
