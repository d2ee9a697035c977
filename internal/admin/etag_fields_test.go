package admin

import (
	"reflect"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// An ETag covers every stored field an administrator's change alters, and
// no field the server changes as the resource is used: otherwise an
// administrator's If-Match would be refused (412) because a workload used
// the resource after the GET. Each stored field of each tagged type is
// changed in turn; a new field fails this test until it is classed as
// usage or not.
func TestETagFields(t *testing.T) {
	// usage are the fields the server stamps as a resource is used.
	usage := map[string]bool{
		"Secret.LastUsedAt": true,
	}
	tests := []struct {
		name string
		v    any // a zero value of the type
		tag  func(v any) string
	}{
		{"Account", storage.Account{}, func(v any) string { return accountETag(v.(storage.Account)) }},
		{"API", storage.API{}, func(v any) string { return apiETag(v.(storage.API)) }},
		{"Key", storage.Key{}, func(v any) string { return keyETag(v.(storage.Key)) }},
		{"Secret", storage.Secret{}, func(v any) string { return secretETag(v.(storage.Secret)) }},
		{"Org", storage.Org{}, func(v any) string { return orgETag(v.(storage.Org), nil) }},
		// A project placed in the organization, hashed into its tag.
		{"ProjectOrg", storage.ProjectOrg{}, func(v any) string {
			return orgETag(storage.Org{}, []storage.ProjectOrg{v.(storage.ProjectOrg)})
		}},
	}
	for _, tt := range tests {
		before := tt.tag(tt.v)
		typ := reflect.TypeOf(tt.v)
		for i := range typ.NumField() {
			field := tt.name + "." + typ.Field(i).Name
			t.Run(field, func(t *testing.T) {
				v := reflect.New(typ).Elem()
				if !change(v.Field(i)) {
					t.Fatalf("the test cannot change a %s: add its kind to change", v.Field(i).Type())
				}
				after := tt.tag(v.Interface())
				switch {
				case usage[field] && after != before:
					t.Errorf("%s is stamped as the resource is used, but changing it changes the ETag: %s → %s", field, before, after)
				case !usage[field] && after == before:
					t.Errorf("changing %s leaves the ETag %s as it was", field, before)
				}
			})
		}
	}
}

// change sets v, a zero field, to a value other than zero, and reports
// whether it could.
func change(v reflect.Value) bool {
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)))
	case v.Type() == reflect.TypeFor[storage.TLSBinding]():
		v.Set(reflect.ValueOf(storage.TLSBinding{SubjectDN: "CN=x"}))
	case v.Kind() == reflect.String:
		v.SetString("x")
	case v.Kind() == reflect.Bool:
		v.SetBool(true)
	case v.Kind() == reflect.Int64:
		v.SetInt(1)
	case v.Type() == reflect.TypeFor[[]string]():
		v.Set(reflect.ValueOf([]string{"x"}))
	case v.Type() == reflect.TypeFor[[]byte]():
		v.SetBytes([]byte{1})
	default:
		return false
	}
	return true
}
