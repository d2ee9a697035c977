package keyfile_test

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/internal/assertion"
	"github.com/keyward/keyward/internal/keyfile"
	"github.com/keyward/keyward/internal/testkeys"
)

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func pkcs8(t testing.TB, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("PRIVATE KEY", der)
}

func TestNewSigner(t *testing.T) {
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name    string
		pem     string
		pub     crypto.PublicKey
		wantAlg jose.SignatureAlgorithm
		wantErr string
	}{
		{"RSA 2048", pkcs8(t, rsa2048), &rsa2048.PublicKey, jose.RS256, ""},
		{"RSA 2048 PKCS #1", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa2048)), &rsa2048.PublicKey, jose.RS256, ""},
		{"EC P-256", pkcs8(t, p256), &p256.PublicKey, jose.ES256, ""},
		{"RSA 1024", pkcs8(t, rsa1024), nil, "", "the RSA key has 1024 bits: Keyward accepts RS256 (RSA of 2048 to 8192 bits) and ES256 (P-256) keys"},
		{"RSA 1024 PKCS #1", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa1024)), nil, "", "1024 bits"},
		{"EC P-384", pkcs8(t, p384), nil, "", "the EC key is on P-384: Keyward accepts RS256 (RSA of 2048 to 8192 bits) and ES256 (P-256) keys"},
		{"Ed25519", pkcs8(t, ed), nil, "", "unsupported key type Ed25519: Keyward accepts"},
		{"garbage PEM", pemOf("PRIVATE KEY", []byte("junk")), nil, "", "neither a PKCS #8 nor a PKCS #1 key: its content is not a key's DER encoding"},
		{"not PEM", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", nil, "", "not PEM"},
		{"empty", "", nil, "", "not PEM"},
		{"public key", pemOf("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&p256.PublicKey))), nil, "", "the PEM block is a public key, not a private key"},
		{"certificate", pemOf("CERTIFICATE", []byte("der")), nil, "", "the PEM block is a certificate, not a private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := keyfile.NewSigner(tt.pem, "kid-1")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewSigner: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h := signAndVerify(t, s, tt.pub)
			if got := jose.SignatureAlgorithm(h.Algorithm); got != tt.wantAlg {
				t.Errorf("alg = %s, want %s", got, tt.wantAlg)
			}
			if !slices.Contains(assertion.Algorithms, tt.wantAlg) {
				t.Errorf("%s is not among the server's assertion algorithms %v", tt.wantAlg, assertion.Algorithms)
			}
			if h.KeyID != "kid-1" || h.ExtraHeaders[jose.HeaderType] != "JWT" {
				t.Errorf("header = kid %q, typ %v; want kid-1, JWT", h.KeyID, h.ExtraHeaders[jose.HeaderType])
			}
		})
	}
}

func TestNewSignerWithoutKeyID(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := keyfile.NewSigner(pkcs8(t, p256), "")
	if err != nil {
		t.Fatal(err)
	}
	if h := signAndVerify(t, s, &p256.PublicKey); h.KeyID != "" {
		t.Fatalf("kid = %q, want none", h.KeyID)
	}
}

// TestParsePrivateKey: ParsePrivateKey takes any key that signs, Ed25519
// too, which NewSigner refuses; for the PEM blocks of another format it
// says how to convert them.
func TestParsePrivateKey(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	tests := []struct {
		name    string
		pem     string
		want    crypto.PublicKey
		wantErr string
	}{
		{"EC P-256", pkcs8(t, p256), &p256.PublicKey, ""},
		{"Ed25519", pkcs8(t, ed), ed.Public(), ""},
		{"SEC 1", pemOf("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(p256))), nil, "(a SEC 1 EC key: write it as PKCS #8 with 'openssl pkey -in FILE -out NEW')"},
		{"openssl ecparam -genkey", pemOf("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}) + pemOf("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(p256))), nil, "(a SEC 1 EC key: write it as PKCS #8 with 'openssl pkey -in FILE -out NEW')"},
		{"EC parameters, then PKCS #8", pemOf("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}) + pkcs8(t, p256), &p256.PublicKey, ""},
		{"EC parameters alone", pemOf("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}), nil, "EC PARAMETERS and no private key"},
		{"encrypted", pemOf("ENCRYPTED PRIVATE KEY", []byte{0x30, 0x00}), nil, "(an encrypted key: write it unencrypted with 'openssl pkey"},
		{"X25519", pkcs8(t, x), nil, "unsupported key type *ecdh.PrivateKey, which cannot sign"},
		{"not PEM", "{}", nil, "not PEM: expected a PRIVATE KEY block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := keyfile.ParsePrivateKey([]byte(tt.pem))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePrivateKey: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(tt.want) {
				t.Fatalf("public key %v, want %v", key.Public(), tt.want)
			}
		})
	}
}

// TestParsePrivateKeyConvertHint: a private key in a format that needs
// converting is refused with the command that converts it, not also as
// "cut short or altered", which it is not.
func TestParsePrivateKeyConvertHint(t *testing.T) {
	encrypted := must(asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		Data      []byte
	}{pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}}, []byte("ciphertext")}))
	tests := []struct{ name, pem, want string }{
		{"encrypted PKCS #8", pemOf("ENCRYPTED PRIVATE KEY", encrypted), "(an encrypted key: write it unencrypted with 'openssl pkey -in FILE -out NEW')"},
		{"OpenSSH", pemOf("OPENSSH PRIVATE KEY", []byte("openssh-key-v1\x00\x00\x00\x00\x04none")), "(an OpenSSH key: write it as PKCS #8 with 'ssh-keygen -p -m PKCS8 -f FILE', which rewrites FILE)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keyfile.ParsePrivateKey([]byte(tt.pem))
			if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
				t.Fatalf("ParsePrivateKey: %v, want an error ending %q", err, tt.want)
			}
		})
	}
}

// signAndVerify signs a payload with s, checks the signature with pub and
// returns the protected header.
func signAndVerify(t testing.TB, s jose.Signer, pub crypto.PublicKey) jose.Header {
	t.Helper()
	obj, err := s.Sign([]byte(`{"iss":"a"}`))
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	raw, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if pub != nil {
		if _, err := parsed.Verify(pub); err != nil {
			t.Fatalf("verify: %v", err)
		}
	}
	return parsed.Signatures[0].Protected
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// FuzzNewSigner: a key file is untrusted input. Whatever private_key
// holds, NewSigner does not panic, and a signer it returns signs RS256 or
// ES256 and nothing else.
func FuzzNewSigner(f *testing.F) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for _, seed := range []string{
		pkcs8(f, p256), pkcs8(f, p384), pkcs8(f, rsa2048), pkcs8(f, ed),
		pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa2048)),
		pemOf("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(p256))),
		pemOf("PRIVATE KEY", []byte{0x30, 0x03, 0x02, 0x01, 0x00}),
		"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n", "", "x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, privateKeyPEM string) {
		s, err := keyfile.NewSigner(privateKeyPEM, "k")
		if err != nil {
			return
		}
		h := signAndVerify(t, s, nil)
		if alg := jose.SignatureAlgorithm(h.Algorithm); alg != jose.RS256 && alg != jose.ES256 {
			t.Fatalf("signs %s", alg)
		}
	})
}

// TestDecodeJSON: what is not a JSON key file is named in plain words,
// never with Go's types, for client and verify alike.
func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"a key file", `{"client_id":"a","private_key":"k"}`, ""},
		{"empty", " \n\t", "is empty"},
		{"PEM", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", "is a PEM file, not a JSON key file: give the JSON file 'keyward keys create' wrote"},
		{"not JSON", "x", "is not a JSON key file: invalid character 'x' looking for beginning of value (at byte 1)"},
		{"cut short", `{"client_id":`, "is not a JSON key file: unexpected end of JSON input"},
		{"array", `[1]`, "is not a JSON key file: a JSON array, not an object"},
		{"string", `"x"`, "is not a JSON key file: a JSON string, not an object"},
		{"field of another type", `{"client_id":true}`, "is not a JSON key file: client_id is a JSON bool, not a string"},
		// An editor's UTF-8 byte order mark, which RFC 8259 §8.1 lets a
		// parser ignore: it was refused as "invalid character 'ï'".
		{"a key file after a byte order mark", "\ufeff" + `{"client_id":"a","private_key":"k"}`, ""},
		{"PEM after a byte order mark", "\ufeff-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", "is a PEM file, not a JSON key file"},
		{"a byte order mark alone", "\ufeff\n", "is empty"},
		// The byte is counted in the file, the mark's 3 bytes too.
		{"not JSON after a byte order mark", "\ufeffx", "is not a JSON key file: invalid character 'x' looking for beginning of value (at byte 4)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f struct {
				ClientID   string `json:"client_id"`
				PrivateKey string `json:"private_key"`
			}
			err := keyfile.DecodeJSON([]byte(tt.data), &f)
			if tt.want == "" {
				if err != nil || f.ClientID != "a" {
					t.Fatalf("DecodeJSON: %+v, %v", f, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeJSON: %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "Go value") || strings.Contains(err.Error(), "Go struct") {
				t.Fatalf("DecodeJSON: %q names Go's types", err)
			}
		})
	}
}

// TestAlgorithm: the size of an RSA key is bounded both ways, with a
// message naming the size and the limit; CheckRSASize bounds only the top,
// and only RSA keys.
func TestAlgorithm(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	// RSA keys crypto/rsa verifies nothing with: refused as they come, not
	// once every signature fails.
	rsaWith := func(e int, evenN bool) *rsa.PublicKey {
		k := testkeys.RSAPublic(2048)
		if evenN {
			k.N.SetBit(k.N, 0, 0)
		}
		k.E = e
		return k
	}
	tests := []struct {
		name    string
		pub     crypto.PublicKey
		wantAlg jose.SignatureAlgorithm
		wantErr string
		sizeErr string // of CheckRSASize
	}{
		{"RSA 2048", testkeys.RSAPublic(2048), jose.RS256, "", ""},
		{"RSA 8192", testkeys.RSAPublic(keyfile.MaxRSABits), jose.RS256, "", ""},
		{"RSA 8193", testkeys.RSAPublic(keyfile.MaxRSABits + 1), "", "the RSA key has 8193 bits, more than the 8192 Keyward accepts: Keyward accepts RS256 (RSA of 2048 to 8192 bits)", "8193 bits, more than the 8192"},
		{"RSA 65536", testkeys.RSAPublic(65536), "", "the RSA key has 65536 bits, more than the 8192", "65536 bits"},
		{"RSA 2047", testkeys.RSAPublic(2047), "", "the RSA key has 2047 bits: Keyward accepts", ""},
		{"EC P-256", &p256.PublicKey, jose.ES256, "", ""},
		{"RSA e=3", rsaWith(3, false), jose.RS256, "", ""},
		{"RSA e=1", rsaWith(1, false), "", "the RSA key's public exponent is 1, where an odd number from 3 to 2147483647 (usually 65537) is needed: Keyward accepts", ""},
		{"RSA e=2", rsaWith(2, false), "", "public exponent is 2, where an odd number", ""},
		{"RSA e=65536", rsaWith(65536, false), "", "public exponent is 65536, where an odd number", ""},
		{"RSA e=2^32+1", rsaWith(1<<32+1, false), "", "public exponent is 4294967297, where an odd number", ""},
		{"RSA even modulus", rsaWith(65537, true), "", "the RSA key's modulus is even, where an RSA modulus is odd: Keyward accepts", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alg, err := keyfile.Algorithm(tt.pub)
			if tt.wantErr == "" && (err != nil || alg != tt.wantAlg) {
				t.Errorf("Algorithm = %q, %v; want %s", alg, err, tt.wantAlg)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Algorithm = %q, %v; want an error with %q", alg, err, tt.wantErr)
			}
			err = keyfile.CheckRSASize(tt.pub)
			if tt.sizeErr == "" && err != nil {
				t.Errorf("CheckRSASize: %v, want nil", err)
			}
			if tt.sizeErr != "" && (err == nil || !strings.Contains(err.Error(), tt.sizeErr)) {
				t.Errorf("CheckRSASize: %v, want an error with %q", err, tt.sizeErr)
			}
		})
	}
}
