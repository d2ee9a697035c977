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

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/validate"
)

// NormalizeBinding checks a tls_client_auth binding (RFC 8705 §2.1.2) and
// returns it in the form matchesBinding compares with a certificate, so
// that a binding is accepted only if some certificate can match it: the
// subject DN as NormalizeDN renders it, the SAN URI and IP as they render
// once parsed. At most one field may be set.
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
			err = fmt.Errorf("the SAN URI %s is not a URI", validate.QuoteClip(b.SANURI))
		case u.Scheme == "" || u.Opaque == "" && u.Host == "" && u.Path == "":
			err = fmt.Errorf("the SAN URI %s is not an absolute URI such as spiffe://example.org/job", validate.QuoteClip(b.SANURI))
		default:
			b.SANURI = u.String()
		}
	case b.SANIP != "":
		ip := net.ParseIP(b.SANIP)
		if ip == nil {
			err = fmt.Errorf("the SAN IP %s is not an IP address", validate.QuoteClip(b.SANIP))
		} else {
			b.SANIP = ip.String()
		}
	case b.SANEmail != "":
		if a, perr := mail.ParseAddress(b.SANEmail); perr != nil || a.Address != b.SANEmail || a.Name != "" {
			err = fmt.Errorf("the SAN email %s is not an email address", validate.QuoteClip(b.SANEmail))
		} else if !oauth2.IsASCII(b.SANEmail) {
			// A certificate's is an rfc822Name, an IA5String (RFC 5280
			// §4.2.1.6), which crypto/x509 refuses to parse otherwise.
			err = fmt.Errorf("the SAN email %s is not ASCII, as a certificate's SAN email (rfc822Name) is: write an internationalized domain in its xn-- form", validate.QuoteClip(b.SANEmail))
		}
	}
	return b, err
}

// checkDNSName checks a SAN DNS name: dot-separated labels of letters,
// digits and hyphens, the first of which may be the wildcard *.
func checkDNSName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("the SAN DNS name %s is not a DNS name: %s", validate.QuoteClip(name), why)
	}
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
// spaces around the separators are allowed) and returns it as it is
// stored and compared with a certificate's subject: the RDNs in the order
// written, rendered by formatDN (cn=job, o=Example becomes
// CN=job,O=Example).
func NormalizeDN(dn string) (string, error) {
	rdns, err := parseDN(dn)
	if err != nil {
		return "", fmt.Errorf("the subject DN %s is not an RFC 4514 distinguished name such as CN=job,O=Example: %w", validate.QuoteClip(dn), err)
	}
	return formatDN(rdns), nil
}

// formatDN renders RDNs read by parseDN as an RFC 4514 DN that parseDN
// reads back unchanged: in the order given, attribute types by their
// dnTypes name or else as a dotted OID, the pairs of a multi-valued RDN
// joined with +, and values escaped as RFC 4514 §2.4 requires (control
// characters too, as \XX).
func formatDN(rdns []pkix.RelativeDistinguishedNameSET) string {
	var b strings.Builder
	for i, rdn := range rdns {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, atv := range rdn {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(typeName(atv.Type))
			b.WriteByte('=')
			v, _ := atv.Value.(string) // parseDN reads only strings
			for k := 0; k < len(v); k++ {
				switch c := v[k]; {
				case c < 0x20 || c == 0x7f:
					fmt.Fprintf(&b, "\\%02X", c)
				case strings.IndexByte(`"+,;<>\`, c) >= 0,
					c == ' ' && (k == 0 || k == len(v)-1),
					c == '#' && k == 0:
					b.WriteByte('\\')
					b.WriteByte(c)
				default:
					b.WriteByte(c)
				}
			}
		}
	}
	return b.String()
}

// typeName names an attribute type as formatDN writes it: its dnTypes
// name, or its dotted OID.
func typeName(oid asn1.ObjectIdentifier) string {
	for name, t := range dnTypes {
		if t.Equal(oid) {
			return name
		}
	}
	return oid.String()
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
		return atv, 0, fmt.Errorf("%s is not attribute=value", validate.QuoteClip(strings.TrimSpace(dn[i:])))
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
		var v asn1.RawValue
		if rest, err := asn1.Unmarshal(der, &v); err != nil || len(rest) > 0 {
			return atv, 0, fmt.Errorf("the value of %s is not one ASN.1 value", typ)
		}
		switch s, ok := decodeString(v); {
		case !ok:
			return atv, 0, fmt.Errorf("the #hex value of %s is not a string", typ)
		case blank(s):
			return atv, 0, emptyValue(typ)
		case !utf8.ValidString(s):
			return atv, 0, fmt.Errorf("the value of %s is not UTF-8", typ)
		default:
			atv.Value = s
		}
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
	if blank(string(val)) {
		return atv, 0, emptyValue(typ)
	}
	if !utf8.Valid(val) {
		return atv, 0, fmt.Errorf("the value of %s is not UTF-8", typ)
	}
	atv.Value = string(val)
	return atv, i, nil
}

// blank reports whether a value is empty or spaces alone, which match as
// an empty value does: spaces at either end are insignificant (RFC 4518
// §2.6.1).
func blank(v string) bool { return strings.Trim(v, " ") == "" }

// emptyValue is the error of a value that blank reports.
func emptyValue(typ string) error {
	return fmt.Errorf("the value of %s is empty (spaces alone count as none)", typ)
}

// upperASCII returns s with its ASCII letters in upper case and every
// other byte as it is.
func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// attributeType reads an attribute type: a name of dnTypes (in any case)
// or a dotted OID.
func attributeType(typ string) (asn1.ObjectIdentifier, error) {
	// ASCII case only: strings.ToUpper would read ſt (long s) as ST.
	if oid, ok := dnTypes[upperASCII(typ)]; ok {
		return oid, nil
	}
	if equalFoldASCII(typ, "E") {
		return dnTypes["EMAILADDRESS"], nil
	}
	if typ == "" {
		return nil, errors.New("an attribute type is missing")
	}
	parts := strings.Split(typ, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("unknown attribute type %s (the known ones are CN, O, OU, C, ST, L, STREET, POSTALCODE, SERIALNUMBER, DC, UID, EMAILADDRESS; or give an OID such as 2.5.4.3)", validate.QuoteClip(typ))
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for k, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p != strconv.Itoa(n) {
			return nil, fmt.Errorf("attribute type %s is neither a known name nor an OID", validate.QuoteClip(typ))
		}
		oid[k] = n
	}
	return oid, nil
}

// matchesDN reports whether a certificate's subject, DER as the
// certificate holds it, is the DN a binding stored by NormalizeDN names,
// as RFC 4517 §4.2.15 distinguishedNameMatch compares DNs: the same number
// of RDNs, in the same order (a certificate lists them from the root
// down, a DN from the leaf up), each equal as a set of attribute types and
// values (see rdnsEqual). pkix.Name would not do: it sorts the attributes
// and flattens multi-valued RDNs.
func matchesDN(rawSubject []byte, dn string) bool {
	want, err := parseDN(dn)
	if err != nil {
		return false
	}
	var subject []rawRDNSET
	if rest, err := asn1.Unmarshal(rawSubject, &subject); err != nil || len(rest) > 0 || len(subject) != len(want) {
		return false
	}
	var got pkix.RelativeDistinguishedNameSET
	for i, rdn := range want {
		got = got[:0]
		for _, atv := range subject[len(subject)-1-i] {
			var v any // nil, which matches nothing, unless a string
			if s, ok := decodeString(atv.Value); ok {
				v = s
			}
			got = append(got, pkix.AttributeTypeAndValue{Type: atv.Type, Value: v})
		}
		if !rdnsEqual(got, rdn) {
			return false
		}
	}
	return true
}

// rawRDNSET is an RDN of a certificate's subject with its values as they
// are encoded, for decodeString to read as crypto/x509 does (asn1 would
// read a T61String's bytes as they are, x509 reads them as Latin-1). Its
// name ends in SET so that asn1 reads it as a SET OF.
type rawRDNSET []struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// decodeString reads an attribute value of one of the string types
// crypto/x509 reads in a certificate's subject, as it reads them
// (parseASN1String): UTF8String, PrintableString, IA5String and
// NumericString as they are, T61String as Latin-1, BMPString as UCS-2. It
// does not check the characters the type allows: the certificate parser
// did, and a value with other characters would only fail to match.
func decodeString(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String, asn1.TagNumericString:
		return string(v.Bytes), true
	case asn1.TagT61String:
		b := make([]byte, 0, len(v.Bytes))
		for _, c := range v.Bytes {
			b = utf8.AppendRune(b, rune(c))
		}
		return string(b), true
	case asn1.TagBMPString:
		b := v.Bytes
		if len(b)%2 != 0 {
			return "", false
		}
		if l := len(b); l >= 2 && b[l-1] == 0 && b[l-2] == 0 {
			b = b[:l-2] // a terminator
		}
		var s []byte
		for ; len(b) > 0; b = b[2:] {
			r := rune(b[0])<<8 | rune(b[1])
			if r == 0xfffe || r == 0xffff || r >= 0xfdd0 && r <= 0xfdef || r >= 0xd800 && r <= 0xdfff {
				return "", false
			}
			s = utf8.AppendRune(s, r)
		}
		return string(s), true
	}
	return "", false
}

// rdnsEqual reports whether two RDNs hold the same attribute types and
// values, in any order: an RDN is a SET (X.501). Each pair occurs as
// often in one as in the other, and a pair whose value is no string
// equals nothing, not even itself (see atvsEqual).
func rdnsEqual(a, b pkix.RelativeDistinguishedNameSET) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		na, nb := 0, 0
		for k := range a {
			if atvsEqual(x, a[k]) {
				na++
			}
			if atvsEqual(x, b[k]) {
				nb++
			}
		}
		if na == 0 || na != nb { // 0: x is no string, so equals nothing
			return false
		}
	}
	return true
}

// atvsEqual compares attribute types by OID and values with valuesMatch.
// A binding holds only strings (parseATV refuses a #hex value of any
// other type), so a certificate's value of another type matches nothing.
func atvsEqual(a, b pkix.AttributeTypeAndValue) bool {
	as, aok := a.Value.(string)
	bs, bok := b.Value.(string)
	return aok && bok && a.Type.Equal(b.Type) && valuesMatch(as, bs)
}

// valuesMatch compares two attribute values the way RFC 4518 prepares
// strings for caseIgnoreMatch, as far as ASCII goes: spaces at either end
// do not count and a run of spaces inside counts as one (§2.6.1), and
// ASCII letters compare without regard to case. Every other byte compares
// exactly, so that no look-alike (the Kelvin sign for K, say) matches a
// letter, as strings.EqualFold's Unicode folding would have it.
func valuesMatch(a, b string) bool {
	a, b = strings.Trim(a, " "), strings.Trim(b, " ")
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i] == ' ' && b[j] == ' ' {
			for i < len(a) && a[i] == ' ' {
				i++
			}
			for j < len(b) && b[j] == ' ' {
				j++
			}
			continue
		}
		if lowerASCII(a[i]) != lowerASCII(b[j]) {
			return false
		}
		i++
		j++
	}
	return i == len(a) && j == len(b)
}

// lowerASCII lowers an ASCII letter and leaves any other byte as it is.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
