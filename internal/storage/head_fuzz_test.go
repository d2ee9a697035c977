package storage

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// FuzzParseHead: whatever an operator gives as audit verify --head,
// ParseHead never panics; it accepts only a sequence number of at least 1
// and a hash of 32 bytes, and what it accepts, written back as audit
// verify prints a head (SEQ:HASH), reads as the same head; it refuses
// the rest with an error that quotes the value and says the form.
func FuzzParseHead(f *testing.F) {
	hash := bytes.Repeat([]byte{0xab}, 32)
	for _, seed := range []string{
		"1:" + hex.EncodeToString(hash), "9223372036854775807:" + strings.ToUpper(hex.EncodeToString(hash)),
		"", ":", "1:", ":" + hex.EncodeToString(hash), "0:" + hex.EncodeToString(hash), "-1:" + hex.EncodeToString(hash),
		"+7:" + hex.EncodeToString(hash), "9223372036854775808:" + hex.EncodeToString(hash),
		"1:" + hex.EncodeToString(hash)[:63], "1:" + hex.EncodeToString(hash) + "00", "1:" + hex.EncodeToString(hash)[:62] + "zz",
		"1:" + hex.EncodeToString(hash) + ":2", " 1:" + hex.EncodeToString(hash), "1 :" + hex.EncodeToString(hash),
		"1:" + hex.EncodeToString(hash) + "\n", "\x00:\xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		seq, h, err := ParseHead(s)
		if err != nil {
			if seq != 0 || h != nil {
				t.Fatalf("refused %q with a head: %d, %x", s, seq, h)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) || !strings.Contains(err.Error(), "SEQ:HASH") {
				t.Fatalf("the refusal of %q does not quote it and say the form: %v", s, err)
			}
			return
		}
		if seq < 1 || len(h) != 32 {
			t.Fatalf("ParseHead(%q) accepted sequence %d with a hash of %d bytes", s, seq, len(h))
		}
		seq2, h2, err := ParseHead(fmt.Sprintf("%d:%x", seq, h))
		if err != nil || seq2 != seq || !bytes.Equal(h2, h) {
			t.Fatalf("ParseHead(%q) = %d, %x, but its head as printed reads as %d, %x, %v", s, seq, h, seq2, h2, err)
		}
	})
}
