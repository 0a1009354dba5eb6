package admin

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: a
// listener, a connection or a client transport not shut down.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
