package masterkey

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// FuzzParse: whatever the master key file holds, Parse never panics
// and accepts only a key of exactly 32 bytes, refusing the rest in words
// that name the size; and a key written in each of the
// documented encodings (raw, hex, base64, as 'openssl rand -hex 32' or
// '-base64 32' writes it, with a line break) reads as the same key.
func FuzzParse(f *testing.F) {
	key := make([]byte, Size)
	rand.Read(key)
	for _, enc := range masterKeyEncodings(key) {
		f.Add(enc)
	}
	for _, seed := range []string{
		"", "\n", strings.Repeat("0", 63), strings.Repeat("0", 65), strings.Repeat("00", 31) + "0g",
		strings.Repeat("A", 43), strings.Repeat("A", 44), strings.Repeat("A", 42) + "==",
		base64.StdEncoding.EncodeToString(make([]byte, 31)), base64.StdEncoding.EncodeToString(make([]byte, 33)),
		hex.EncodeToString(make([]byte, 33)), strings.Repeat(" ", 32), strings.Repeat("\xff", 33),
		" " + hex.EncodeToString(key) + " \r\n", hex.EncodeToString(key)[:40] + "\n" + hex.EncodeToString(key)[40:],
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		k, err := Parse(data)
		if !bytes.Equal(data, in) {
			t.Fatalf("Parse changed its input")
		}
		if err != nil {
			if k != nil {
				t.Fatalf("refused with a key: %x", k)
			}
			if !strings.Contains(err.Error(), "32 bytes") {
				t.Fatalf("the refusal does not say the size: %v", err)
			}
		} else if len(k) != Size {
			t.Fatalf("accepted a key of %d bytes", len(k))
		}

		// Each encoding of a key reads as that key: the one accepted, or
		// one derived from the input.
		if err != nil {
			s := sha256.Sum256(data)
			k = s[:]
		}
		for _, enc := range masterKeyEncodings(k) {
			got, err := Parse(enc)
			if err != nil || !bytes.Equal(got, k) {
				t.Fatalf("%q read as %x, %v; want %x", enc, got, err, k)
			}
		}
	})
}

// masterKeyEncodings is key written in each of the documented ways.
func masterKeyEncodings(key []byte) [][]byte {
	h := hex.EncodeToString(key)
	var out [][]byte
	for _, s := range []string{
		string(key),
		h, h + "\n", strings.ToUpper(h) + "\n",
		base64.StdEncoding.EncodeToString(key), base64.StdEncoding.EncodeToString(key) + "\n",
		base64.URLEncoding.EncodeToString(key), base64.RawStdEncoding.EncodeToString(key),
		base64.RawURLEncoding.EncodeToString(key) + "\n",
	} {
		out = append(out, []byte(s))
	}
	return out
}
