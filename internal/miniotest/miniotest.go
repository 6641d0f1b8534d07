// Package miniotest runs a real MinIO server for a test, stopped when the test
// ends. The binary comes from miniosrv.FindBinary; a missing one fails the
// test with the install hint (CI installs it, so skipping would hide a gap).
package miniotest

import (
	"context"
	"os"
	"testing"

	"github.com/ytcaption/ytcaption/internal/miniosrv"
)

// Start runs a MinIO server in a temp dir for the life of t.
func Start(t testing.TB) *miniosrv.Server {
	t.Helper()
	bin, err := miniosrv.FindBinary(os.Getenv)
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	srv, err := miniosrv.Start(context.Background(), miniosrv.Config{Binary: bin, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("miniotest: %v", err)
		}
	})
	return srv
}
