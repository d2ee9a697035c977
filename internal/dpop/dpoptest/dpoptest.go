// Package dpoptest holds helpers for the tests of packages that make or
// check DPoP proofs.
package dpoptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/keyward/keyward/internal/dpop"
)

// NewProver returns a Prover of a new EC P-256 key (ES256), the key
// clients make by default.
func NewProver(t testing.TB) *dpop.Prover {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dpop.NewProver(k)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
