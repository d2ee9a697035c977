package transfer

// repeated returns the first name that an object in b, JSON, gives
// twice, where it is (accounts[3].email; the empty name written ""), or
// "" if none is, as UnmarshalJSON finds it (nameScan). b must be valid
// JSON; of anything else it returns what it has found so far, or "".
func repeated(b []byte) string {
	s := nameScan{b: b}
	if !s.value() {
		return ""
	}
	return s.where()
}
