//go:build race

package media

// raceEnabled: the race detector is on. It makes sync.Pool drop a quarter
// of what is Put, so code that takes scratch space from a Pool (pion's
// AES-CM) allocates in tests that would otherwise see none.
const raceEnabled = true
