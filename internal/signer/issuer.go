package signer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// IssuerName names the sealed value that records the issuer the store's
// servers use: every server sharing a store must use the same one.
const IssuerName = "issuer"

// RecordIssuer returns the issuer the store has recorded. A store without
// one records issuer first, unless it is "" (a server started without
// --issuer, whose issuer is only its listener's address), and returns
// it. A server has one issuer (--issuer given several times is its last),
// so the store records one: that of the first start that gave --issuer.
// A store with one keeps it whatever issuer is, and returns it, for the
// caller to compare: a later start's other --issuer is warned of, never
// recorded, until the recorded one is deleted; recover-admin, passing "",
// writes its key file for it. The value is sealed as the pepper is, so
// that `keyward master-key rotate` re-seals it with the rest.
func RecordIssuer(ctx context.Context, st PepperStore, sealer *Sealer, issuer string, now time.Time) (string, error) {
	aad := storage.SealedValueAAD(IssuerName)
	v, err := st.GetSealedValue(ctx, IssuerName)
	if errors.Is(err, storage.ErrNotFound) {
		if issuer == "" {
			return "", nil
		}
		err = st.CreateSealedValue(ctx, storage.SealedValue{Name: IssuerName, Sealed: sealer.Seal(aad, []byte(issuer)), CreatedAt: now},
			storage.AuditEvent{Time: now, Action: "sealed_value.create", Outcome: storage.OutcomeSuccess, Actor: "system",
				Data: map[string]string{"name": IssuerName}})
		if !errors.Is(err, storage.ErrAlreadyExists) {
			return issuer, err
		}
		// Another server recorded its own first: compare with theirs.
		v, err = st.GetSealedValue(ctx, IssuerName)
	}
	if err != nil {
		return "", fmt.Errorf("load the recorded issuer: %w", err)
	}
	b, err := sealer.Open(aad, v.Sealed)
	if err != nil {
		return "", fmt.Errorf("open the recorded issuer: %w", err)
	}
	return string(b), nil
}
