package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// backlog is how many expired rows of each table the garbage-collection
// tests leave: more than two of the batches the SQL backends delete in one
// transaction each (1000), the last one partial; half as many revocations, more than one.
const backlog = 2100

// writeBacklog stores backlog used JTIs and opaque tokens and backlog/2
// revocations, the i-th expiring i seconds after t0, oldest first, and
// one of each that expires only after t0+24h.
func writeBacklog(t *testing.T, s storage.Storage) {
	t.Helper()
	ctx := context.Background()
	jti := func(i int) string { return fmt.Sprintf("gc-%05d", i) }
	var writes []storage.Write
	flush := func() {
		res, err := s.Commit(ctx, writes)
		mustNil(t, err)
		for i, r := range res {
			if r != nil {
				t.Fatalf("write %d of the backlog: %v", i, r)
			}
		}
		writes = writes[:0]
	}
	for i := range backlog + 1 {
		exp := t0.Add(time.Duration(i) * time.Second)
		if i == backlog {
			exp = t0.Add(48 * time.Hour)
		}
		tok := storage.TokenRecord{Hash: []byte(jti(i)), ID: jti(i), AccountID: "acct", Subject: "acct", Scope: "orders.read",
			Audience: []string{"https://orders.internal"}, IssuedAt: t0, ExpiresAt: exp}
		writes = append(writes, storage.Write{JTIs: []storage.UsedJTI{{Issuer: "acct", JTI: jti(i), ExpiresAt: exp}}, Token: &tok})
		if len(writes) == 500 || i == backlog {
			flush()
		}
		if i%2 == 0 || i == backlog {
			r := storage.Revocation{JTI: jti(i), AccountID: "acct", RevokedAt: t0, ExpiresAt: exp}
			mustNil(t, s.Revoke(ctx, r, ev("token.revoke")))
		}
	}
}

// testDeleteExpiredBacklog: a backlog of expired rows larger than a batch
// is deleted whole by one call, which counts every row, and what has not
// expired stays.
func testDeleteExpiredBacklog(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	writeBacklog(t, s)
	n, err := s.DeleteExpired(ctx, t0.Add(24*time.Hour))
	mustNil(t, err)
	if want := int64(backlog + backlog + backlog/2); n != want {
		t.Errorf("DeleteExpired = %d, want %d", n, want)
	}
	for _, i := range []int{0, 999, 1000, 1001, 2000, backlog - 1} {
		jti := fmt.Sprintf("gc-%05d", i)
		if _, err := s.GetTokenByID(ctx, jti); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("expired token %s: %v, want ErrNotFound", jti, err)
		}
		if revoked, err := s.IsRevoked(ctx, jti); err != nil || revoked {
			t.Errorf("IsRevoked(%s) = %v, %v after its expiry was collected", jti, revoked, err)
		}
		res, err := s.Commit(ctx, []storage.Write{{JTIs: []storage.UsedJTI{{Issuer: "acct", JTI: jti, ExpiresAt: t0.Add(48 * time.Hour)}}}})
		mustNil(t, err)
		if res[0] != nil {
			t.Errorf("expired JTI %s is still used: %v", jti, res[0])
		}
	}
	kept := fmt.Sprintf("gc-%05d", backlog)
	if _, err := s.GetTokenByID(ctx, kept); err != nil {
		t.Errorf("unexpired token: %v", err)
	}
	if revoked, err := s.IsRevoked(ctx, kept); err != nil || !revoked {
		t.Errorf("unexpired revocation: IsRevoked = %v, %v", revoked, err)
	}
	n, err = s.DeleteExpired(ctx, t0.Add(24*time.Hour))
	mustNil(t, err)
	if n != 0 {
		t.Errorf("DeleteExpired again = %d, want 0", n)
	}
}

// ExpiredInBatches checks that DeleteExpired deletes a backlog in
// transactions of its own, oldest first, so that other writes commit
// between them: refuseDelete makes the store fail the deletion of the used
// JTI given (a trigger), here the newest expired one, and what the batches
// before it deleted stays deleted.
func ExpiredInBatches(t *testing.T, s storage.Storage, refuseDelete func(t *testing.T, jti string)) {
	ctx := context.Background()
	writeBacklog(t, s)
	refuseDelete(t, fmt.Sprintf("gc-%05d", backlog-1))
	n, err := s.DeleteExpired(ctx, t0.Add(24*time.Hour))
	if err == nil {
		t.Fatal("DeleteExpired succeeded though the store refused to delete a used JTI")
	}
	if n < 1000 {
		t.Errorf("DeleteExpired = %d, %v; want the rows of the batches before the failing one counted", n, err)
	}
	res, err := s.Commit(ctx, []storage.Write{{JTIs: []storage.UsedJTI{{Issuer: "acct", JTI: "gc-00000", ExpiresAt: t0.Add(48 * time.Hour)}}}})
	mustNil(t, err)
	if res[0] != nil {
		t.Errorf("the oldest expired JTI is still used after the first batch: %v", res[0])
	}
}
