package token_test

import (
	"encoding/json"
	"testing"

	"github.com/keyward/keyward/internal/token"
)

func TestResponseAppendJSON(t *testing.T) {
	for _, r := range []token.Response{
		{},
		{AccessToken: "eyJ.eyJ.c2ln", TokenType: "Bearer", ExpiresIn: 3600, Scope: "orders.read orders.write"},
		{AccessToken: "kw_at_<&>", TokenType: "Bearer", ExpiresIn: -1},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("AppendJSON = %s\njson.Marshal = %s", got, want)
		}
	}
}
