package signer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"

	"github.com/keyward/keyward/internal/masterkey"
)

// MasterKeySize is the size of the master key: AES-256.
const MasterKeySize = masterkey.Size

// Sealer encrypts signing keys and other server secrets at rest with
// AES-256-GCM under the master key. A key's ID (or a value's name) is
// authenticated data, so a sealed item cannot be swapped for another one's
// in the database unnoticed.
type Sealer struct{ aead cipher.AEAD }

// NewSealer returns a Sealer for a 32-byte master key.
func NewSealer(master []byte) (*Sealer, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("the master key must be %d bytes, got %d", MasterKeySize, len(master))
	}
	block, err := aes.NewCipher(master)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext for the key with the given ID.
func (s *Sealer) Seal(id string, plaintext []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plaintext, []byte(id))
}

// ErrWrongMasterKey means a sealed key could not be opened: the master key
// is not the one it was sealed with, or the data was altered. Test for it
// with errors.Is; a package that should not import signer can find it with
// errors.As on an interface{ WrongMasterKey() bool }.
var ErrWrongMasterKey error = wrongMasterKeyError{}

// wrongMasterKeyError is the type of ErrWrongMasterKey.
type wrongMasterKeyError struct{}

func (wrongMasterKeyError) Error() string {
	return "cannot decrypt it: wrong master key, or the stored data was altered"
}

// WrongMasterKey reports that the error is ErrWrongMasterKey.
func (wrongMasterKeyError) WrongMasterKey() bool { return true }

// Open decrypts what Seal produced for the same ID.
func (s *Sealer) Open(id string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrWrongMasterKey
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(id))
	if err != nil {
		return nil, ErrWrongMasterKey
	}
	return pt, nil
}
