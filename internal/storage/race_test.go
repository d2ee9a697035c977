//go:build race

package storage

// Under the race detector allocations are padded with shadow state, so
// their sizes mean nothing.
const raceEnabled = true
