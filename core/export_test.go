package core

import "github.com/ytcaption/ytcaption/core/internal/sqldb"

// DB is the database core opened, for the benchmarks' store-only and raw
// SQL loops: on SQLite one process owns the file, so they share core's.
func (c *Core) DB() sqldb.DB { return c.db }
