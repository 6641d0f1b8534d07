//go:build !unix

package sqldb

import "os"

// lockFile only creates path where flock is missing: run one process per
// data directory.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
}
