package store

import (
	"testing"

	"github.com/google/uuid"
)

// TestNewIDsAreRandomVersion4UUIDs: the ids a batch gets are valid version 4
// UUIDs, all distinct.
func TestNewIDsAreRandomVersion4UUIDs(t *testing.T) {
	ids := newIDs(1000)
	seen := map[string]bool{}
	for _, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		if u.Version() != 4 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("%s is version %d, variant %s; want a random (version 4) RFC 4122 UUID", id, u.Version(), u.Variant())
		}
		if seen[id] {
			t.Fatalf("%s twice", id)
		}
		seen[id] = true
	}
}
