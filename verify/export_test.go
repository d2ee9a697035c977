package verify

import "time"

// WithUnknownKidEvery sets the least pause between two fetches of the
// issuer's keys for unknown kids (10 s by default); 0 for none.
func WithUnknownKidEvery(d time.Duration) Option {
	return func(o *options) { o.unknownKidEvery = d }
}

// SetKeySnapshotHook makes f called each time a service account's keys
// are read to verify a JWT, until the test ends.
func SetKeySnapshotHook(t interface{ Cleanup(func()) }, f func()) {
	testHookKeySnapshot = f
	t.Cleanup(func() { testHookKeySnapshot = nil })
}

// SetKidFetchHook makes f called each time a token of a kid unknown among
// the issuer's keys has chosen the fetch it waits for, until the test ends.
func SetKidFetchHook(t interface{ Cleanup(func()) }, f func()) {
	testHookKidFetch = f
	t.Cleanup(func() { testHookKidFetch = nil })
}

// SetAccountStartHook makes f called each time the write lock is to be
// taken to start or join a fetch of a service account's keys, until the
// test ends.
func SetAccountStartHook(t interface{ Cleanup(func()) }, f func()) {
	testHookAccountStart = f
	t.Cleanup(func() { testHookAccountStart = nil })
}

// Quote is quote, the escaping of a challenge's quoted-strings.
var Quote = quote
