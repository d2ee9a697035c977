// Package masterkey reads the master key that seals the server's signing
// keys and secrets at rest (see the signer package), as an operator
// gives it: in a file, an environment variable or on standard input.
package masterkey

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Size is the size of a master key: AES-256.
const Size = 32

// Parse reads a master key of Size bytes given raw, as hex or as base64
// (standard or URL alphabet, padded or not), the hex or base64 with
// surrounding space, such as a line break, allowed.
func Parse(b []byte) ([]byte, error) {
	if len(b) == Size {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	if k, err := hex.DecodeString(s); err == nil && len(k) == Size {
		return k, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == Size {
			return k, nil
		}
	}
	return nil, fmt.Errorf("the master key must be %d bytes, raw or as hex or base64", Size)
}
