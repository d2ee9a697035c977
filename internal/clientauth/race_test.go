//go:build race

package clientauth

// Under the race detector a sync.Pool drops a random share of what is put
// in it, so allocation counts of pooled code mean nothing.
const raceEnabled = true
