package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// cliUnderTest, set in a test binary's environment, makes it the client
// itself (main, with the arguments it was started with), so that tests run
// the real command under a pseudo-terminal without building it.
const cliUnderTest = "YTCAPTION_TEST_RUN_CLI"

// TestMain fails the package when a test leaves a goroutine running.
func TestMain(m *testing.M) {
	if os.Getenv(cliUnderTest) == "1" {
		main() // exits
	}
	goleak.VerifyTestMain(m)
}
