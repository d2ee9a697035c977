// Package sakey makes and reads service-account key material: key pairs
// generated on the server and returned once as a JSON key file in Google's
// format, and public keys or certificates that users upload.
package sakey

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/keyfile"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/validate"
)

// MinRSABits is the smallest RSA key accepted, as for key files.
const MinRSABits = keyfile.MinRSABits

// KeyFile is a service-account JSON key file in Google's format; the public
// client package defines it, for the programs that read key files.
type KeyFile = client.KeyFile

// Endpoints are the URLs a key file points at.
type Endpoints struct {
	Auth  string // auth_uri
	Token string // token_uri
	// X509 is the base URL of the per-account certificate documents; the
	// escaped account email is appended.
	X509 string
}

// Generate makes an RSA-2048 key pair for the account. It returns the key
// to store (public half only) and the key file holding the private key,
// which exists nowhere else.
func Generate(acct storage.Account, ep Endpoints, now, expiresAt time.Time) (storage.Key, KeyFile, error) {
	priv, err := rsa.GenerateKey(rand.Reader, MinRSABits)
	if err != nil {
		return storage.Key{}, KeyFile{}, err
	}
	id := NewKeyID()
	spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return storage.Key{}, KeyFile{}, err
	}
	cert, err := selfSign(priv, acct, id, now, expiresAt)
	if err != nil {
		return storage.Key{}, KeyFile{}, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.Key{}, KeyFile{}, err
	}
	k := storage.Key{
		ID: id, AccountID: acct.ID, Algorithm: "RS256", PublicKey: spki, Certificate: cert,
		Origin: storage.KeyOriginGenerated, ExpiresAt: expiresAt, CreatedAt: now,
	}
	kf := KeyFile{
		Type:              "service_account",
		ProjectID:         acct.Project,
		PrivateKeyID:      id,
		PrivateKey:        string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})),
		ClientEmail:       acct.Email,
		ClientID:          acct.ID,
		AuthURI:           ep.Auth,
		TokenURI:          ep.Token,
		ClientX509CertURL: ep.X509 + url.PathEscape(acct.Email),
	}
	return k, kf, nil
}

// selfSign makes the certificate Google also publishes for each generated
// key, so verifiers that want X.509 can have it.
func selfSign(priv crypto.Signer, acct storage.Account, id string, now, expiresAt time.Time) ([]byte, error) {
	notAfter := expiresAt
	if notAfter.IsZero() {
		notAfter = now.AddDate(10, 0, 0)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: acct.Email, SerialNumber: id},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
}

// NewKeyID returns a random key ID: 40 hex digits, like Google's.
func NewKeyID() string {
	b := make([]byte, 20)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Public is an uploaded public key, ready to store.
type Public struct {
	Algorithm   string // RS256 or ES256
	SPKI        []byte // DER SubjectPublicKeyInfo
	Certificate []byte // DER certificate, when one was uploaded
	// NotBefore and NotAfter are the certificate's validity, if a
	// certificate was uploaded.
	NotBefore, NotAfter time.Time
}

// parseError says why the DER of a PEM block of type typ did not parse,
// in words for the person who uploaded it: asn1's own errors show its
// parser's Go structs, and x509's name its Go functions where the block
// is labelled as the other kind of public key.
func parseError(typ string, der []byte, err error) error {
	if compressedPoint(typ, der) {
		if typ == "CERTIFICATE" {
			return errors.New("the CERTIFICATE's EC key is a compressed point, which Keyward does not accept: have it issued for the key's uncompressed form (openssl ec -pubin -in FILE -pubout -conv_form uncompressed writes it)")
		}
		return errors.New("the PUBLIC KEY is an EC key as a compressed point, which Keyward does not accept: convert it to the uncompressed form with openssl ec -pubin -in FILE -pubout -conv_form uncompressed")
	}
	switch typ {
	case "PUBLIC KEY":
		if _, e := x509.ParsePKCS1PublicKey(der); e == nil {
			return errors.New("the PUBLIC KEY block holds an RSA PUBLIC KEY (PKCS #1): label it BEGIN RSA PUBLIC KEY, or convert it with openssl rsa -RSAPublicKey_in -pubout")
		}
	case "RSA PUBLIC KEY":
		if _, e := x509.ParsePKIXPublicKey(der); e == nil {
			return errors.New("the RSA PUBLIC KEY block holds a PUBLIC KEY (SubjectPublicKeyInfo): label it BEGIN PUBLIC KEY")
		}
	}
	var structural asn1.StructuralError
	var syntax asn1.SyntaxError
	if errors.As(err, &structural) || errors.As(err, &syntax) {
		return fmt.Errorf("cannot parse the %s: its contents are not the DER encoding of one", typ)
	}
	return fmt.Errorf("cannot parse the %s: %s", typ, strings.TrimPrefix(err.Error(), "x509: "))
}

// errPrivate refuses a file that holds a private key.
var errPrivate = errors.New("the file holds a private key: upload only the public key or certificate, and keep the private key to yourself")

// pemBegin starts a PEM block's BEGIN line, as pem.Decode looks for it:
// at the start of a line.
const pemBegin = "-----BEGIN "

// nextBegin returns the index in data of the next BEGIN line, or -1.
func nextBegin(data []byte) int {
	if bytes.HasPrefix(data, []byte(pemBegin)) {
		return 0
	}
	if i := bytes.Index(data, []byte("\n"+pemBegin)); i >= 0 {
		return i + 1
	}
	return -1
}

// pemBlocks returns the PEM blocks of data, in order. pem.Decode skips a
// BEGIN line that starts no block it can read (damaged base64, an END
// line missing or of another type) and decodes the next block, or none:
// the file's second block would be taken for its first, or the file for
// not PEM. pemBlocks refuses such a file instead, naming the block; and
// a file with a private key, whether its block decodes or not.
func pemBlocks(data []byte) ([]*pem.Block, error) {
	var blocks []*pem.Block
	for n := 1; ; n++ {
		i := nextBegin(data)
		if i < 0 {
			return blocks, nil
		}
		data = data[i:]
		typ, _, _ := bytes.Cut(data[len(pemBegin):], []byte("\n"))
		typ = bytes.TrimSuffix(bytes.TrimRight(typ, " \t\r"), []byte("-----"))
		if bytes.HasSuffix(typ, []byte("PRIVATE KEY")) {
			return nil, errPrivate
		}
		b, rest := pem.Decode(data)
		// The block read must start at this BEGIN line, not at a later one.
		if next := nextBegin(data[1:]); b == nil || (next >= 0 && 1+next < len(data)-len(rest)) {
			return nil, fmt.Errorf("the PEM block %s (block %d of the file) does not decode: its base64 is damaged, or its END line is missing or does not match its BEGIN line", validate.QuoteClip(string(typ)), n)
		}
		blocks = append(blocks, b)
		data = rest
	}
}

// subjectPublicKeyInfo is the ASN.1 of a PUBLIC KEY, and tbsCertificate
// the start of a CERTIFICATE's up to it: enough to find its key.
type (
	subjectPublicKeyInfo struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	tbsCertificate struct {
		Version                   int `asn1:"optional,explicit,default:0,tag:0"`
		Serial                    *big.Int
		Signature                 pkix.AlgorithmIdentifier
		Issuer, Validity, Subject asn1.RawValue
		SubjectPublicKeyInfo      subjectPublicKeyInfo
	}
)

// oidECPublicKey is id-ecPublicKey, the algorithm of an EC key's SPKI.
var oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}

// compressedPoint says whether der, the DER of a PUBLIC KEY or
// CERTIFICATE block, holds an EC key as a compressed point (SEC 1 §2.3.3:
// 02 or 03, then X), which crypto/x509 does not read, saying only "ecdsa:
// invalid uncompressed public key".
func compressedPoint(typ string, der []byte) bool {
	var spki subjectPublicKeyInfo
	switch typ {
	case "PUBLIC KEY":
		if _, err := asn1.Unmarshal(der, &spki); err != nil {
			return false
		}
	case "CERTIFICATE":
		var cert struct{ TBS tbsCertificate }
		if _, err := asn1.Unmarshal(der, &cert); err != nil {
			return false
		}
		spki = cert.TBS.SubjectPublicKeyInfo
	default:
		return false
	}
	k := spki.Key.RightAlign()
	return spki.Algorithm.Algorithm.Equal(oidECPublicKey) && len(k) > 0 && (k[0] == 2 || k[0] == 3)
}

// ParsePublic reads an uploaded public key: a PEM "PUBLIC KEY", "RSA PUBLIC
// KEY" or "CERTIFICATE" block, the first of the file; a file with a
// private key in any block is refused, as is one with two public keys or
// with a public key and a certificate. Certificates after the first (its
// chain) are ignored. Which keys are accepted, and for
// which algorithm, keyfile.Algorithm says, as for the key files that sign:
// RSA keys of 2048 to 8192 bits verify RS256, EC keys on P-256 ES256.
func ParsePublic(data []byte) (Public, error) {
	blocks, err := pemBlocks(data)
	if err != nil {
		return Public{}, err
	}
	if len(blocks) == 0 {
		return Public{}, errors.New("the file is not PEM: expected a PUBLIC KEY or CERTIFICATE block")
	}
	block := blocks[0]
	var keys, certs int
	for _, b := range blocks {
		switch {
		case b.Type == "PUBLIC KEY" || b.Type == "RSA PUBLIC KEY":
			keys++
		case b.Type == "CERTIFICATE":
			certs++
		}
	}
	// Only the first block is registered: a certificate's chain after it
	// (the leaf first, as TLS sends it) is fine, but not a second key,
	// which would be dropped unsaid, nor a key and a certificate, when
	// either could be the one meant.
	switch {
	case keys > 1:
		return Public{}, fmt.Errorf("the file holds %d public keys: upload them one at a time, one to a file", keys)
	case keys > 0 && certs > 0:
		return Public{}, errors.New("the file holds both a public key and a certificate, so which one is meant is unclear: upload only one of them")
	}
	var (
		pub any
		p   Public
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			pub, p.Certificate, p.NotBefore, p.NotAfter = cert.PublicKey, block.Bytes, cert.NotBefore, cert.NotAfter
		}
	default:
		return Public{}, fmt.Errorf("unsupported PEM block %s: expected PUBLIC KEY or CERTIFICATE", validate.QuoteClip(block.Type))
	}
	if err != nil {
		return Public{}, parseError(block.Type, block.Bytes, err)
	}
	alg, err := keyfile.Algorithm(pub)
	if err != nil {
		return Public{}, err
	}
	p.Algorithm = string(alg)
	if p.SPKI, err = x509.MarshalPKIXPublicKey(pub); err != nil {
		return Public{}, err
	}
	return p, nil
}
