// Package testkeys makes keys for tests. It imports only the standard
// library, so the tests of any package can use it without an import cycle.
package testkeys

import (
	"crypto/rand"
	"crypto/rsa"
	"math/big"
)

// RSAPublic returns an RSA public key whose modulus has exactly bits bits:
// a random odd number, no product of two primes, which is all a check of
// a key's size needs (generating a key of 8200 bits takes minutes). It
// panics if bits is under 2 or crypto/rand fails.
func RSAPublic(bits int) *rsa.PublicKey {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits-1)))
	if err != nil {
		panic("testkeys: " + err.Error())
	}
	n.SetBit(n, bits-1, 1).SetBit(n, 0, 1)
	return &rsa.PublicKey{N: n, E: 65537}
}
