//go:build !race

package media

// raceEnabled: the race detector is on (see race_test.go).
const raceEnabled = false
