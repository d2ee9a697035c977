package verify

import "time"

// WithUnknownKidEvery sets the least pause between two fetches of the
// issuer's keys for unknown kids (10 s by default); 0 for none.
func WithUnknownKidEvery(d time.Duration) Option {
	return func(o *options) { o.unknownKidEvery = d }
}
