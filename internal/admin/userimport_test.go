package admin

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseUsers(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []UserInput
		wantErr string
	}{
		{"csv", "alice@example.com\nbob@example.com,suspended\n", []UserInput{{"alice@example.com", false}, {"bob@example.com", true}}, ""},
		{"csv header and comment", "email,status\n# staff\nalice@example.com, active\n", []UserInput{{"alice@example.com", false}}, ""},
		{"csv email starting with #, quoted", "#ops@example.com\n\"#ops@example.com\"\n", []UserInput{{"#ops@example.com", false}}, ""},
		{"csv no-break space inside an email", "alice@example.com\nad\u00a0min@example.com\n", nil, `line 2: "ad\u00a0min@example.com" is not an email address: it contains the space character U+00A0`},
		{"csv no-break space after an email, trimmed", "alice@example.com\u00a0\n", []UserInput{{"alice@example.com", false}}, ""},
		{"csv no-break space before an email starting with {", "\u00a0{ops}@example.com\n", []UserInput{{"{ops}@example.com", false}}, ""},
		{"csv next line before an email starting with [", "\u0085[ops]@example.com\n", nil, `line 1: "[ops]@example.com" is not an email address`},
		{"json after JSON's white space", " \t\r\n[{\"email\":\"a@x.com\"}]", []UserInput{{"a@x.com", false}}, ""},
		{"csv comment after spaces", "alice@example.com\n  # staff\n", nil, `line 2: "# staff" is not a comment: # starts one only as the first character of a line (an email starting with # must be quoted: "#ops@example.com")`},
		{"csv comment after a tab, with a comma", "alice@example.com\n\t# note, with comma\n", nil, `line 2: "# note,with comma" is not a comment`},
		{"csv comment after spaces before a header", " # users\nemail,status\nalice@example.com\n", nil, "1 bad row, nothing was imported; fix and retry:\n  line 1: \"# users\" is not a comment"},
		{"csv email starting with # after spaces", " #ops@example.com\n", nil, `line 1: "#ops@example.com" is not a comment`},
		{"csv email starting with #, quoted after spaces", "  \"#ops@example.com\"\n", []UserInput{{"#ops@example.com", false}}, ""},
		{"csv bad status", "a@x.com,gone\n", nil, "line 1: status"},
		{"csv too many columns", "a@x.com,active,extra\n", nil, "line 1: 3 columns"},
		{"csv every bad row", "a@x.com,gone\nb@x.com,x,y\n", nil, "line 2"},
		{"json array", `[{"email":"a@x.com"},{"email":"b@x.com","suspended":true}]`, []UserInput{{"a@x.com", false}, {"b@x.com", true}}, ""},
		{"json wrapper", `{"users":[{"email":"a@x.com","status":"suspended"}]}`, []UserInput{{"a@x.com", true}}, ""},
		{"json disagreement", `[{"email":"a@x.com","status":"active","suspended":true}]`, nil, "disagree"},
		{"json no email", `[{"status":"active"}]`, nil, "line 1: no email"},
		{"json broken", `[{"email":`, nil, "not valid JSON"},
		{"empty", "  \n", nil, "empty"},
		{"only a header", "email,status\n", nil, "no users"},
		{"csv header email alone", "Email\nalice@example.com\n", []UserInput{{"alice@example.com", false}}, ""},
		{"csv header any case and spaces", "EMAIL , Status\nalice@example.com,suspended\n", []UserInput{{"alice@example.com", true}}, ""},
		{"csv header after a byte order mark", "\ufeffemail,status\nalice@example.com\n", []UserInput{{"alice@example.com", false}}, ""},
		{"csv email after a byte order mark", "\ufeffalice@example.com\n", []UserInput{{"alice@example.com", false}}, ""},
		{"json after a byte order mark", "\ufeff[{\"email\": \"alice@example.com\"}]", []UserInput{{"alice@example.com", false}}, ""},
		{"csv byte order mark after an email", "alice@example.com\nbob@example.com\ufeff\n", nil,
			"1 bad row, nothing was imported; fix and retry:\n  line 2: a byte order mark (U+FEFF, invisible), which only the start of the file may have (files joined together each bring theirs): remove it"},
		{"csv files joined", "\ufeffemail\nalice@example.com\n\ufeffemail\nbob@example.com\n", nil, "1 bad row, nothing was imported; fix and retry:\n  line 3: a byte order mark"},
		{"csv byte order mark in a status and a header", "email\ufeff,status\nalice@example.com,suspended\ufeff\n", nil, "2 bad rows, nothing was imported; fix and retry:\n  line 1: a byte order mark (U+FEFF, invisible)"},
		{"csv NUL in an email", "alice@example.com\nb\x00b@example.com\n", nil,
			"1 bad row, nothing was imported; fix and retry:\n  line 2: a NUL character (U+0000) in the email column, which Keyward does not store: remove it"},
		{"csv NUL in a status and in a third column", "email,status\nalice@example.com,active\x00\nbob@example.com,active,x\x00\n", nil,
			"2 bad rows, nothing was imported; fix and retry:\n  line 2: a NUL character (U+0000) in the status column, which Keyward does not store: remove it\n  line 3: a NUL character (U+0000) in column 3,"},
		{"csv NUL in a quoted email on its second line", "\"alice\n\x00@example.com\"\n", nil, "line 2: a NUL character (U+0000) in the email column,"},
		{"csv NUL in a header", "email,sta\x00tus\nalice@example.com\n", nil, "line 1: a NUL character (U+0000) in the status column,"},
		{"csv NUL in a comment", "# \x00\nalice@example.com\n", nil, "line 1: a NUL character (U+0000), which Keyward does not store"},
		{"csv NUL after a bare quote", "a\"b@example.com\nc\x00@example.com\n", nil, "line 2: a NUL character (U+0000), which Keyward does not store"},
		{"csv not UTF-8 in a status and an email", "email,status\nalice@example.com,suspend\xe9\nren\xe9@example.com\n", nil,
			"2 bad rows, nothing was imported; fix and retry:\n  line 2: bytes that are not UTF-8 (Latin-1, say): save the file as UTF-8\n  line 3: bytes that are not UTF-8"},
		{"json NUL escape in an email", "[\n{\"email\": \"a@x.com\"},\n{\"email\": \"b\\u0000@x.com\"}]", nil, "line 3: a NUL character (the escape \\u0000), which Keyward does not store: remove it"},
		{"csv the text \\u0000 in a comment, no escape", "# NUL is \\u0000 in JSON\nalice@example.com\n", []UserInput{{"alice@example.com", false}}, ""},
		{"csv the text \\u0000 in an email, read as that text", "alice@example.com\nb\\u0000@example.com\n", nil,
			"1 bad row, nothing was imported; fix and retry:\n  line 2: \"b\\\\u0000@example.com\" is not an email address"},
		{"csv a NUL and the text \\u0000", "# \\u0000\nb\x00@example.com\n", nil,
			"1 bad row, nothing was imported; fix and retry:\n  line 2: a NUL character (U+0000) in the email column,"},
		{"csv two byte order marks", "\ufeff\ufeffalice@example.com\n", nil, "line 1: a byte order mark"},
		{"json byte order mark in an email", "[\n{\"email\": \"\ufeffalice@example.com\"}]", nil, "line 2: a byte order mark"},
		{"csv comment after an email", "alice@example.com # Alice\n", nil,
			`line 1: "alice@example.com # Alice" has a comment after a value: # starts one only as the first character of a line`},
		{"csv comment after a status", "alice@example.com,suspended\t# left\n", nil, `line 1: "alice@example.com,suspended\t# left" has a comment after a value`},
		{"csv comment with a comma after an email", "alice@example.com # Alice, Smith, ops\n", nil, `line 1: "alice@example.com # Alice,Smith,ops" has a comment after a value`},
		{"csv # inside a quoted email, not after a space", "\"al#ice@example.com\"\n", []UserInput{{"al#ice@example.com", false}}, ""},
		{"csv other header", "user,state\nalice@example.com\n", nil, `line 1: "user,state" is neither an email address nor the header email,status`},
		{"csv header with another column", "email,state\nalice@example.com,suspended\n", nil, `line 1: "email,state" is neither`},
		{"csv header with an extra column", "email,status,note\nalice@example.com\n", nil, `line 1: "email,status,note" is neither`},
		{"csv first row neither", "alice\nbob@example.com\n", nil, `line 1: "alice" is neither`},
		{"csv header after comments", "# users\n\nmail\nbob@example.com\n", nil, `line 3: "mail" is neither`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUsers([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("user %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// An import reports every bad row (the first 20) by its line, and returns
// no users at all when any row is bad.
func TestParseUsersReportsEveryBadRow(t *testing.T) {
	var many, oneMore strings.Builder
	for i := range 25 {
		fmt.Fprintf(&many, "user%d\n", i)
		if i < 21 {
			fmt.Fprintf(&oneMore, "user%d\n", i)
		}
	}
	tests := []struct {
		name string
		in   string
		want []string // in the error
		not  []string // not in it
	}{
		{"csv", "email,status\nalice@example.com\nnot-an-email\nbob@example.com,gone\ncarol@example.com\nALICE@example.com,suspended\n",
			[]string{"3 bad rows", "line 3: \"not-an-email\" is not an email address", "line 4: status \"gone\"", "line 6: alice@example.com is also on line 2"},
			[]string{"line 2:", "line 5:"}},
		{"json lines", "[\n  {\"email\": \"a@x.com\"},\n  {\"email\": \"b at x.com\"},\n\n  {\"email\": \"c@x.com\", \"status\": \"x\"}\n]",
			[]string{"2 bad rows", "line 3: \"b at x.com\" is not an email", "line 5: status \"x\""}, []string{"line 2:"}},
		{"json wrapper lines", "{\"users\": [{\"email\": \"a@x.com\"},\n{\"email\": \"\"}]}", []string{"1 bad row,", "line 2: no email"}, nil},
		{"bounded", many.String(), []string{"25 bad rows", "line 1:", "line 20:", "and 5 more bad rows"}, []string{"line 21:"}},
		{"one more", oneMore.String(), []string{"21 bad rows", "line 20:", "and 1 more bad row"}, []string{"line 21:", "more bad rows"}},
		{"json trailing", `[{"email":"a@x.com"}] x`, []string{"more after the JSON value"}, nil},
		// A value is quoted in full up to 64 bytes, and cut beyond: a file
		// of one 50 MB line is not echoed back whole.
		{"long first row", strings.Repeat("a", 1<<20) + "\n", []string{`line 1: "` + strings.Repeat("a", 48) + `"… (1048576 bytes) is neither an email address nor the header email,status`}, []string{strings.Repeat("a", 49)}},
		{"long status", "a@x.com," + strings.Repeat("é", 40) + "\n", []string{`status "` + strings.Repeat("é", 24) + `"… (80 bytes) must be`}, []string{strings.Repeat("é", 25)}},
		{"long wrapper key", `{"` + strings.Repeat("k", 100) + `":[]}`, []string{`not have "` + strings.Repeat("k", 48) + `"… (100 bytes)`}, []string{strings.Repeat("k", 49)}},
		{"long email listed twice", strings.Repeat("a", 100) + "@x.com\n" + strings.Repeat("A", 100) + "@x.com\n",
			[]string{`line 2: "` + strings.Repeat("a", 48) + `"… (106 bytes) is also on line 1`}, []string{strings.Repeat("a", 49)}},
		{"status at 64 bytes whole", "a@x.com," + strings.Repeat("s", 64) + "\n", []string{`status "` + strings.Repeat("s", 64) + `" must be`}, nil},
		// A value of the wrong type is named in JSON's words, not Go's.
		// It is a bad row, reported with the others.
		{"json number email", "[\n{\"email\": 1}]", []string{`1 bad row`, `line 2: "email" must be a string, not a number`}, []string{"Go", "jsonUser", "not valid JSON"}},
		{"json string suspended", `[{"email":"a@x.com","suspended":"yes"}]`, []string{`line 1: "suspended" must be true or false, not a string`}, []string{"Go", "jsonUser"}},
		{"json array user", `[["a@x.com"]]`, []string{`line 1: a user must be a JSON object, not an array`}, []string{"Go", "jsonUser"}},
		{"json wrong types, each a row", "[{\"email\":\"a@x.com\",\"suspended\":\"true\"},\n{\"email\":\" \"},\n{\"status\":1,\"email\":true},\n5]",
			[]string{"4 bad rows", `line 1: "suspended" must be true or false, not a string`, "line 2: no email", `line 3: "status" must be a string, not a number`, `line 4: a user must be a JSON object, not a number`}, nil},
		{"json wrapper extra", `{"users":[{"email":"a@x.com"}],"x":1}`, []string{`{"users": [...]} and nothing else`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUsers([]byte(tt.in))
			if err == nil || got != nil {
				t.Fatalf("got %v, %v; want no users and an error", got, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error %q has %q", err, n)
				}
			}
		})
	}
	rows, err := ParseUserRows([]byte("# staff\nAlice@Example.com\n\nbob@example.com,suspended\n"), nil)
	if err != nil || len(rows) != 2 || rows[0].Line != 2 || rows[0].Email != "alice@example.com" || rows[1].Line != 4 || rows[1].Org() != "example.com" {
		t.Fatalf("rows = %+v, %v", rows, err)
	}
}

func TestHasNUL(t *testing.T) {
	for in, want := range map[string]bool{
		`{"a":"b"}`:        false,
		"a\x00b":           true,
		`{"a":"x\u0000"}`:  true,
		`{"a":"x\\u0000"}`: false, // an escaped backslash, then "u0000"
		`{"a":"\\\u0000"}`: true,  // an escaped backslash, then the escape
		`u0000`:            false,
		`\u0000`:           true,
	} {
		if got := hasNUL([]byte(in)); got != want {
			t.Errorf("hasNUL(%q) = %v, want %v", in, got, want)
		}
	}
	for _, bad := range []string{"a@x.com\nb\x00@y.org\n", "a@x.com\nb\xff@y.org\n"} {
		if _, err := ParseUsers([]byte(bad)); err == nil {
			t.Errorf("the user list %q was accepted", bad)
		}
	}
}

func FuzzParseUsers(f *testing.F) {
	for _, s := range []string{"a@x.com\n", "email,status\nb@y.org,suspended", "user,state\nb@y.org", "\ufeffEmail\nb@y.org", `[{"email":"a@x.com"}]`, `{"users":[]}`, "\"unterminated", "a@x.com,\"b\n\x00\"\n", "x\x00,y,z\x00\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := ParseUsers(data)
		if err != nil {
			return
		}
		if len(users) == 0 || len(users) > MaxImportUsers {
			t.Fatalf("%d users without an error", len(users))
		}
		for _, u := range users {
			if strings.TrimSpace(u.Email) == "" || u.Email != strings.TrimSpace(u.Email) {
				t.Fatalf("user %+v has an empty or untrimmed email", u)
			}
			if strings.IndexByte(u.Email, 0) >= 0 {
				t.Fatalf("user %+v has a NUL character", u)
			}
		}
	})
}

// A JSON user's line is the line its object starts on, however the users
// are laid out (several a line, blank lines, a value that spans lines).
func TestParseUsersJSONLines(t *testing.T) {
	in := "\n\n[{\"email\": \"a@x.com\"}, {\"email\": \"b@x.com\"},\n\n" +
		"  {\n    \"email\": \"c@x.com\"\n  },\n{\"email\":\n\"d@x.com\"}]\n"
	rows, err := ParseUserRows([]byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"a@x.com": 3, "b@x.com": 3, "c@x.com": 5, "d@x.com": 8}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d", len(rows), len(want))
	}
	for _, r := range rows {
		if r.Line != want[r.Email] {
			t.Errorf("%s on line %d, want %d", r.Email, r.Line, want[r.Email])
		}
	}
}

// BenchmarkParseUsersJSON reads the largest import allowed, one user a
// line: the time per file grows with the file, not with its square.
func BenchmarkParseUsersJSON(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("[\n")
	for i := range MaxImportUsers {
		if i > 0 {
			sb.WriteString(",\n")
		}
		fmt.Fprintf(&sb, `{"email": "user%d@example.com", "status": "active"}`, i)
	}
	sb.WriteString("\n]\n")
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		rows, err := ParseUserRows(data, nil)
		if err != nil || len(rows) != MaxImportUsers {
			b.Fatalf("%d rows, %v", len(rows), err)
		}
	}
}
