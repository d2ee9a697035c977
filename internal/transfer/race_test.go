//go:build race

package transfer_test

// Under the race detector every goroutine and map access allocates
// shadow state of its own, so allocation sizes mean nothing.
const raceEnabled = true
