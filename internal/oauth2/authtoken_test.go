package oauth2

import "testing"

func TestAuthToken(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"abc", "abc", true},
		{" \tabc.def-_~+/= \t", "abc.def-_~+/=", true},
		{"", "", false},
		{" \t", "", false},
		{"a b", "", false},
		{"a\tb", "", false},
		{"\u00a0abc", "", false},
		{"abc\u3000", "", false},
		{"abc\u0085", "", false},
		{"abc\x7f", "", false},
		{"ab\x00c", "", false},
		{"äbc", "", false},
	}
	for _, tc := range tests {
		got, ok := AuthToken(tc.in)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("AuthToken(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
