package clientauth

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/storage"
)

// NormalizeBinding checks a tls_client_auth binding (RFC 8705 §2.1.2) and
// returns it in the form matchesBinding compares with a certificate, so
// that a binding is accepted only if some certificate can match it: the
// subject DN as crypto/x509 renders a certificate's subject, the SAN URI
// and IP as they render once parsed. At most one field may be set.
func NormalizeBinding(b storage.TLSBinding) (storage.TLSBinding, error) {
	n := 0
	for _, v := range []string{b.SubjectDN, b.SANDNS, b.SANURI, b.SANIP, b.SANEmail} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return b, errors.New("a TLS binding names exactly one of subject DN, SAN DNS, SAN URI, SAN IP or SAN email (RFC 8705 §2.1.2)")
	}
	var err error
	switch {
	case b.SubjectDN != "":
		b.SubjectDN, err = NormalizeDN(b.SubjectDN)
	case b.SANDNS != "":
		err = checkDNSName(b.SANDNS)
	case b.SANURI != "":
		u, perr := url.Parse(b.SANURI)
		switch {
		case perr != nil:
			err = fmt.Errorf("the SAN URI %q is not a URI", b.SANURI)
		case u.Scheme == "" || u.Opaque == "" && u.Host == "" && u.Path == "":
			err = fmt.Errorf("the SAN URI %q is not an absolute URI such as spiffe://example.org/job", b.SANURI)
		default:
			b.SANURI = u.String()
		}
	case b.SANIP != "":
		ip := net.ParseIP(b.SANIP)
		if ip == nil {
			err = fmt.Errorf("the SAN IP %q is not an IP address", b.SANIP)
		} else {
			b.SANIP = ip.String()
		}
	case b.SANEmail != "":
		if a, perr := mail.ParseAddress(b.SANEmail); perr != nil || a.Address != b.SANEmail || a.Name != "" {
			err = fmt.Errorf("the SAN email %q is not an email address", b.SANEmail)
		}
	}
	return b, err
}

// checkDNSName checks a SAN DNS name: dot-separated labels of letters,
// digits and hyphens, the first of which may be the wildcard *.
func checkDNSName(name string) error {
	bad := func(why string) error { return fmt.Errorf("the SAN DNS name %q is not a DNS name: %s", name, why) }
	if len(name) > 253 {
		return bad("longer than 253 characters")
	}
	for i, label := range strings.Split(name, ".") {
		if label == "*" && i == 0 {
			continue
		}
		if label == "" || len(label) > 63 {
			return bad("each label is 1 to 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return bad("a label neither begins nor ends with -")
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return bad(fmt.Sprintf("%q is not a letter, digit or -", c))
			}
		}
	}
	return nil
}

// dnTypes are the attribute type names a DN may use, with their OIDs:
// RFC 4514 §3's and the others crypto/x509 names or certificates carry.
var dnTypes = map[string]asn1.ObjectIdentifier{
	"CN":           {2, 5, 4, 3},
	"SERIALNUMBER": {2, 5, 4, 5},
	"C":            {2, 5, 4, 6},
	"L":            {2, 5, 4, 7},
	"ST":           {2, 5, 4, 8},
	"STREET":       {2, 5, 4, 9},
	"O":            {2, 5, 4, 10},
	"OU":           {2, 5, 4, 11},
	"POSTALCODE":   {2, 5, 4, 17},
	"DC":           {0, 9, 2342, 19200300, 100, 1, 25},
	"UID":          {0, 9, 2342, 19200300, 100, 1, 1},
	"EMAILADDRESS": {1, 2, 840, 113549, 1, 9, 1},
}

// NormalizeDN parses an RFC 4514 distinguished name (CN=job,O=Example;
// spaces around the separators are allowed) and returns it as
// crypto/x509 renders a certificate subject with the same attributes
// (pkix.Name.String), which is what matchesBinding compares it with.
func NormalizeDN(dn string) (string, error) {
	rdns, err := parseDN(dn)
	if err != nil {
		return "", fmt.Errorf("the subject DN %q is not an RFC 4514 distinguished name such as CN=job,O=Example: %w", dn, err)
	}
	if err := checkSingleValued(rdns); err != nil {
		return "", fmt.Errorf("the subject DN %q %w", dn, err)
	}
	// Certificates list the RDNs from the root down, RFC 4514 from the
	// leaf up.
	var seq pkix.RDNSequence
	for i := len(rdns) - 1; i >= 0; i-- {
		seq = append(seq, rdns[i])
	}
	var name pkix.Name
	name.FillFromRDNSequence(&seq)
	return name.String(), nil
}

// parseDN reads the RDNs of an RFC 4514 DN in the order written.
func parseDN(dn string) ([]pkix.RelativeDistinguishedNameSET, error) {
	if strings.TrimSpace(dn) == "" {
		return nil, errors.New("it is empty")
	}
	if !utf8.ValidString(dn) {
		return nil, errors.New("it is not UTF-8")
	}
	var rdns []pkix.RelativeDistinguishedNameSET
	var rdn pkix.RelativeDistinguishedNameSET
	for i := 0; ; {
		atv, next, err := parseATV(dn, i)
		if err != nil {
			return nil, err
		}
		rdn = append(rdn, atv)
		if next == len(dn) {
			return append(rdns, rdn), nil
		}
		if dn[next] == ',' {
			rdns, rdn = append(rdns, rdn), nil
		}
		i = next + 1 // past the , or +
	}
}

// parseATV reads type=value from dn[i:] up to an unescaped , or + or the
// end, and returns where it stopped.
func parseATV(dn string, i int) (pkix.AttributeTypeAndValue, int, error) {
	var atv pkix.AttributeTypeAndValue
	skipSpaces := func() {
		for i < len(dn) && dn[i] == ' ' {
			i++
		}
	}
	skipSpaces()
	if i == len(dn) {
		return atv, 0, errors.New("a , or + has nothing after it")
	}
	eq := strings.IndexByte(dn[i:], '=')
	if eq < 0 {
		return atv, 0, fmt.Errorf("%q is not attribute=value", strings.TrimSpace(dn[i:]))
	}
	typ := strings.TrimRight(dn[i:i+eq], " ")
	oid, err := attributeType(typ)
	if err != nil {
		return atv, 0, err
	}
	atv.Type = oid
	i += eq + 1
	skipSpaces()
	if i < len(dn) && dn[i] == '#' { // hexstring: the value's BER encoding
		j := i + 1
		for j < len(dn) && strings.IndexByte("0123456789abcdefABCDEF", dn[j]) >= 0 {
			j++
		}
		der, err := hex.DecodeString(dn[i+1 : j])
		if err != nil || len(der) == 0 {
			return atv, 0, fmt.Errorf("the value of %s is not #hex", typ)
		}
		var v any
		if rest, err := asn1.Unmarshal(der, &v); err != nil || len(rest) > 0 {
			return atv, 0, fmt.Errorf("the value of %s is not one ASN.1 value", typ)
		}
		if _, ok := v.(string); !ok {
			return atv, 0, fmt.Errorf("the #hex value of %s is not a string", typ)
		}
		atv.Value = v
		i = j
		skipSpaces()
		if i < len(dn) && dn[i] != ',' && dn[i] != '+' {
			return atv, 0, fmt.Errorf("%q follows the #hex value of %s", dn[i], typ)
		}
		return atv, i, nil
	}
	var val []byte
	keep := 0 // len(val) up to its last escaped or non-space character
	for ; i < len(dn) && dn[i] != ',' && dn[i] != '+'; i++ {
		switch c := dn[i]; c {
		case '\\':
			if i+1 < len(dn) && strings.IndexByte(` "#+,;<=>\`, dn[i+1]) >= 0 {
				val = append(val, dn[i+1])
				i++
			} else if b, err := hex.DecodeString(dn[i+1 : min(i+3, len(dn))]); err == nil && len(b) == 1 {
				val = append(val, b[0])
				i += 2
			} else {
				return atv, 0, fmt.Errorf(`a \ in the value of %s escapes neither a special character nor a hex byte`, typ)
			}
			keep = len(val)
		case '"', ';', '<', '>':
			return atv, 0, fmt.Errorf(`the value of %s has an unescaped %q (write \%c)`, typ, c, c)
		default:
			val = append(val, c)
			if c != ' ' {
				keep = len(val)
			}
		}
	}
	val = val[:keep]
	if len(val) == 0 {
		return atv, 0, fmt.Errorf("the value of %s is empty", typ)
	}
	if !utf8.Valid(val) {
		return atv, 0, fmt.Errorf("the value of %s is not UTF-8", typ)
	}
	atv.Value = string(val)
	return atv, i, nil
}

// attributeType reads an attribute type: a name of dnTypes (in any case)
// or a dotted OID.
func attributeType(typ string) (asn1.ObjectIdentifier, error) {
	if oid, ok := dnTypes[strings.ToUpper(typ)]; ok {
		return oid, nil
	}
	if strings.EqualFold(typ, "E") {
		return dnTypes["EMAILADDRESS"], nil
	}
	if typ == "" {
		return nil, errors.New("an attribute type is missing")
	}
	parts := strings.Split(typ, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("unknown attribute type %q (the known ones are CN, O, OU, C, ST, L, STREET, POSTALCODE, SERIALNUMBER, DC, UID, EMAILADDRESS; or give an OID such as 2.5.4.3)", typ)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for k, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p != strconv.Itoa(n) {
			return nil, fmt.Errorf("attribute type %q is neither a known name nor an OID", typ)
		}
		oid[k] = n
	}
	return oid, nil
}

// singleValued are the attributes pkix.Name keeps one value of (CommonName,
// SerialNumber): its rendering of a subject naming one twice shows only the
// last, so a DN naming CN twice would be stored as one naming it once and
// match certificates with only that CN.
var singleValued = [...]struct {
	name string
	oid  asn1.ObjectIdentifier
}{{"CN", dnTypes["CN"]}, {"SERIALNUMBER", dnTypes["SERIALNUMBER"]}}

// checkSingleValued refuses RDNs that name CN or SERIALNUMBER more than
// once, which crypto/x509 cannot render. It allocates nothing: it runs for
// every tls_client_auth request, on the certificate's subject.
func checkSingleValued(rdns []pkix.RelativeDistinguishedNameSET) error {
	var seen [len(singleValued)]bool
	for _, rdn := range rdns {
		for _, atv := range rdn {
			for k, sv := range singleValued {
				if !atv.Type.Equal(sv.oid) {
					continue
				}
				if seen[k] {
					return fmt.Errorf("names %s more than once, which a binding cannot match (crypto/x509 keeps only one)", sv.name)
				}
				seen[k] = true
			}
		}
	}
	return nil
}
