package load

// BencodeForTest and BdecodeForTest expose the ng encoding to load_test.
func BencodeForTest(v any) (string, error) {
	b, err := bencode(nil, v)
	return string(b), err
}

func BdecodeForTest(s string) (any, error) {
	v, _, err := bdecode([]byte(s))
	return v, err
}
