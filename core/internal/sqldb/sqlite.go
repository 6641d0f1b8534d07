package sqldb

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// registerFunctions gives SQLite the functions PostgreSQL has and the store
// calls. modernc.org/sqlite registers functions for the whole driver, for
// every connection opened after, so this runs once, before OpenSQLite's
// first connection — not in init, where merely importing sqldb (as every
// PostgreSQL-only binary and test does) would change a global driver.
var registerFunctions = sync.OnceValue(func() error {
	scalars := []struct {
		name          string
		args          int
		deterministic bool
		fn            func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error)
	}{
		{"now", 0, false, func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
			return time.Now().UnixMicro(), nil
		}},
		{"gen_random_uuid", 0, false, func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
			return uuid.NewString(), nil
		}},
		{"new_webhook_secret", 0, false, func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
			return NewWebhookSecret(), nil
		}},
		{"month_start", 1, true, func(_ *sqlite.FunctionContext, a []driver.Value) (driver.Value, error) {
			us, ok := a[0].(int64)
			if !ok {
				return nil, fmt.Errorf("month_start: want microseconds, got %T", a[0])
			}
			return MonthStart(time.UnixMicro(us)).UnixMicro(), nil
		}},
		{"next_month", 1, true, func(_ *sqlite.FunctionContext, a []driver.Value) (driver.Value, error) {
			us, ok := a[0].(int64)
			if !ok {
				return nil, fmt.Errorf("next_month: want microseconds, got %T", a[0])
			}
			return MonthStart(time.UnixMicro(us)).AddDate(0, 1, 0).UnixMicro(), nil
		}},
	}
	for _, f := range scalars {
		register := sqlite.RegisterScalarFunction
		if f.deterministic {
			register = sqlite.RegisterDeterministicScalarFunction
		}
		if err := register(f.name, int32(f.args), f.fn); err != nil {
			return fmt.Errorf("register sqlite function %s: %w", f.name, err)
		}
	}
	return nil
})

// MonthStart is the first instant of t's UTC month: quotas and the usage
// ledger count in UTC months (PostgreSQL's month_start agrees).
func MonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// NewWebhookSecret draws a Standard Webhooks secret: "whsec_" and the base64
// of 32 random bytes.
func NewWebhookSecret() string {
	b := make([]byte, 32)
	_, _ = crand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// OpenSQLite opens (creating) the SQLite database at path in WAL mode, with
// foreign keys on and a busy timeout, every transaction taking the write lock
// when it begins. One process at a time may open it (path+".lock").
func OpenSQLite(path string) (DB, error) {
	if err := registerFunctions(); err != nil {
		return nil, err
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err == nil {
		// database/sql keeps 2 idle connections by default and closes the
		// rest as they come back: under concurrent requests each close threw
		// away SQLite's parsed schema and page cache and each open built
		// them again — 70 % of the single box's CPU in the edge benchmark
		// (make bench-edge, 2026-12-02). Keep what the load opened.
		db.SetMaxIdleConns(maxIdleConns)
		err = db.Ping()
	}
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &liteDB{liteQuerier: liteQuerier{q: db, gate: newWriteGate(), stmts: newStmtCache(db)}, db: db, file: lock, locks: map[int64]*sync.RWMutex{},
		listeners: map[string]map[*liteListener]struct{}{}, closed: make(chan struct{})}, nil
}

// maxIdleConns is how many connections the single box keeps open between
// requests; more than its concurrent requests ever need at once.
const maxIdleConns = 64

// ErrInUse is OpenSQLite's answer while another process has the database
// open (a running single box).
var ErrInUse = errors.New("in use by another ytcaption process")

// OpenSQLiteReader opens the SQLite database at path read-only, beside the
// process that owns it (it takes no path+".lock"): for a backup of a running
// single box, whose VACUUM INTO reads one snapshot while the box writes on.
// It never creates the database, nor writes to it.
func OpenSQLiteReader(path string) (DB, error) {
	if err := registerFunctions(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err == nil {
		err = db.Ping()
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &liteDB{liteQuerier: liteQuerier{q: db, stmts: newStmtCache(db)}, db: db, locks: map[int64]*sync.RWMutex{},
		listeners: map[string]map[*liteListener]struct{}{}, closed: make(chan struct{})}, nil
}

// liteExecer is what *sql.DB and *sql.Tx share.
type liteExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// liteQuerier runs statements on the database (gate set: a write waits its
// turn) or in a transaction (tx set, gate nil: the transaction holds the
// turn), prepared once (stmts).
type liteQuerier struct {
	q     liteExecer
	gate  *writeGate
	stmts *stmtCache
	tx    *sql.Tx
}

type liteResult int64

func (r liteResult) RowsAffected() int64 { return int64(r) }

func (l liteQuerier) Exec(ctx context.Context, q string, args ...any) (Result, error) {
	release, err := l.gate.enter(ctx, q)
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := l.statement(ctx, q).ExecContext(ctx, liteArgs(args)...)
	if err != nil {
		return nil, err
	}
	n, err := res.RowsAffected()
	return liteResult(n), err
}

func (l liteQuerier) Query(ctx context.Context, q string, args ...any) (Rows, error) {
	release, err := l.gate.enter(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := l.statement(ctx, q).QueryContext(ctx, liteArgs(args)...)
	if err != nil {
		release()
		return nil, err
	}
	return &liteRows{r: rows, release: release}, nil
}

func (l liteQuerier) QueryRow(ctx context.Context, q string, args ...any) Row {
	release, err := l.gate.enter(ctx, q)
	if err != nil {
		return errRow{err}
	}
	return liteRow{r: l.statement(ctx, q).QueryRowContext(ctx, liteArgs(args)...), release: release}
}

// liteStatement is a statement ready to run: prepared (*sql.Stmt) or not.
type liteStatement interface {
	ExecContext(ctx context.Context, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, args ...any) *sql.Row
}

// statement is q in SQLite's spelling, prepared when the cache keeps it:
// on the database, or borrowed by the transaction for its connection.
func (l liteQuerier) statement(ctx context.Context, q string) liteStatement {
	text := Translate(q)
	st := l.stmts.get(ctx, text)
	switch {
	case st == nil:
		return unprepared{l.q, text}
	case l.tx != nil:
		return l.tx.StmtContext(ctx, st)
	}
	return st
}

// unprepared runs its text as it is: SQLite parses it each time.
type unprepared struct {
	q    liteExecer
	text string
}

func (u unprepared) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	return u.q.ExecContext(ctx, u.text, args...)
}

func (u unprepared) QueryContext(ctx context.Context, args ...any) (*sql.Rows, error) {
	return u.q.QueryContext(ctx, u.text, args...)
}

func (u unprepared) QueryRowContext(ctx context.Context, args ...any) *sql.Row {
	return u.q.QueryRowContext(ctx, u.text, args...)
}

// stmtCache keeps the database's statements prepared, by text. database/sql
// prepares a statement run by text on every call, and SQLite parses it each
// time: half of the single box's CPU in BenchmarkCreations went to parsing
// the same creating statement (2026-12-03). A kept *sql.Stmt is prepared
// once on each connection that runs it; a transaction borrows it for its
// own connection (Tx.StmtContext). The store builds some statements from
// their arguments (a claim's engines, a list's filters): past maxStmts texts
// the rest run unprepared, so the cache stays bounded.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// maxStmts bounds the statements kept. Each is prepared on every connection
// that runs it (a few kilobytes each in SQLite's memory), so the bound holds
// the hot, fixed statements and leaves the rare built ones unprepared.
const maxStmts = 256

func newStmtCache(db *sql.DB) *stmtCache { return &stmtCache{db: db, m: map[string]*sql.Stmt{}} }

// get returns text prepared, or nil when it is not kept: the cache is full,
// or text does not prepare (running it unprepared then says why).
func (c *stmtCache) get(ctx context.Context, text string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	st, ok := c.m[text]
	full := len(c.m) >= maxStmts
	c.mu.Unlock()
	if ok || full {
		return st
	}
	st, err := c.db.PrepareContext(ctx, text)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prior, ok := c.m[text]; ok { // prepared meanwhile by another caller
		_ = st.Close()
		return prior
	}
	c.m[text] = st
	return st
}

// writeGate lets this process's writers into SQLite one at a time, in the
// order they came. SQLite has one writer; left to it, writers that find the
// lock taken sleep and retry (the busy timeout), and under a dozen
// concurrent writers — a busy single box — some lost every retry for the
// whole timeout and failed with SQLITE_BUSY while others went in again and
// again. A channel's waiters are served in turn. A transaction (every one
// takes the write lock when it begins) holds the turn until it ends; a
// statement outside one, while it runs, when it writes (isWrite). Readers
// never wait: WAL lets them read beside the writer.
type writeGate struct{ turn chan struct{} }

func newWriteGate() *writeGate { return &writeGate{turn: make(chan struct{}, 1)} }

// gateWait is how long a writer waits for its turn, as SQLite's busy
// timeout did, before it fails as SQLite would.
const gateWait = 10 * time.Second

var errGateTimeout = errors.New("database is locked: no turn to write within the busy timeout")

// enter waits for q's turn when q writes, and returns what ends it.
func (g *writeGate) enter(ctx context.Context, q string) (release func(), err error) {
	if g == nil || !isWrite(q) {
		return func() {}, nil
	}
	return g.take(ctx)
}

func (g *writeGate) take(ctx context.Context) (release func(), err error) {
	select {
	case g.turn <- struct{}{}:
	default:
		t := time.NewTimer(gateWait)
		defer t.Stop()
		select {
		case g.turn <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
			return nil, errGateTimeout
		}
	}
	return sync.OnceFunc(func() { <-g.turn }), nil
}

var writes sync.Map // statement text → whether it writes

// writeWord finds a statement's writing keywords as words: updated_at or
// created_at are no UPDATE or CREATE.
var writeWord = regexp.MustCompile(`(?i)\b(INSERT|UPDATE|DELETE|REPLACE|ANALYZE|VACUUM|PRAGMA|CREATE|DROP|ALTER)\b`)

// isWrite reports whether a statement may write: it names INSERT, UPDATE,
// DELETE or REPLACE anywhere (a WITH ahead of one), or is one of SQLite's
// schema or maintenance statements. A read that merely mentions one of these
// words (in a string) waits its turn needlessly, which is harmless; a read
// must never be taken for a write, since a transaction that reads outside
// itself (GetJob beside a tx) would wait for its own turn.
func isWrite(q string) bool {
	if w, ok := writes.Load(q); ok {
		return w.(bool)
	}
	w := writeWord.MatchString(q)
	writes.Store(q, w)
	return w
}

// errRow is a Row whose statement could not start.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (l liteQuerier) SendBatch(ctx context.Context, b *Batch) error {
	for _, it := range b.items {
		var err error
		switch {
		case it.rows:
			err = l.eachRow(ctx, it.row, it.sql, it.args...)
		case it.row != nil:
			err = it.row(l.QueryRow(ctx, it.sql, it.args...))
		default:
			_, err = l.Exec(ctx, it.sql, it.args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// eachRow reads every row of the query with scan.
func (l liteQuerier) eachRow(ctx context.Context, scan func(Row) error, sql string, args ...any) error {
	rows, err := l.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

type liteDB struct {
	liteQuerier
	db   *sql.DB
	file *os.File // the process lock

	mu        sync.Mutex
	locks     map[int64]*sync.RWMutex
	listeners map[string]map[*liteListener]struct{} // by channel

	closeOnce sync.Once
	closed    chan struct{} // closed by Close: listeners and lock sessions end
}

func (d *liteDB) Dialect() Dialect               { return SQLite }
func (d *liteDB) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }
func (d *liteDB) Close() {
	d.closeOnce.Do(func() {
		close(d.closed)
		_ = d.db.Close()
		_ = d.file.Close()
	})
}

// errClosed is what listeners and lock sessions report once the database is closed.
var errClosed = errors.New("sqlite: database closed")

// SendBatch runs the batch in a transaction of its own, as PostgreSQL's
// implicit one.
func (d *liteDB) SendBatch(ctx context.Context, b *Batch) error {
	tx, err := d.Begin(ctx)
	if err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	return tx.Commit(ctx)
}

func (d *liteDB) Begin(ctx context.Context) (Tx, error) {
	release := func() {}
	if d.gate != nil { // nil on a reader, which never writes
		var err error
		if release, err = d.gate.take(ctx); err != nil {
			return nil, err
		}
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		release()
		return nil, err
	}
	return liteTx{liteQuerier{q: tx, stmts: d.stmts, tx: tx}, tx, release}, nil
}

type liteTx struct {
	liteQuerier
	tx      *sql.Tx
	release func() // the write turn: once, at Commit or Rollback
}

func (t liteTx) Commit(context.Context) error {
	defer t.release()
	return t.tx.Commit()
}

// Rollback after Commit is a no-op, as on pgx.
func (t liteTx) Rollback(context.Context) error {
	defer t.release()
	if err := t.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}

func (d *liteDB) lock(key int64) *sync.RWMutex {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.locks[key]
	if l == nil {
		l = &sync.RWMutex{}
		d.locks[key] = l
	}
	return l
}

// Lock is a process-local reader/writer lock per key.
func (d *liteDB) Lock(ctx context.Context, key int64, shared, wait bool) (func(), bool, error) {
	l := d.lock(key)
	try := l.TryLock
	if shared {
		try = l.TryRLock
	}
	// A waiter polls rather than blocking in the mutex, so that it gives
	// up when ctx ends, as PostgreSQL's waiter does; waits are rare and
	// short (an upload's request behind another, a backup).
	for pause := time.Millisecond; !try(); pause = min(2*pause, 50*time.Millisecond) {
		if !wait {
			return nil, false, nil
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false, ctx.Err()
		case <-t.C:
		}
	}
	if shared {
		return l.RUnlock, true, nil
	}
	return l.Unlock, true, nil
}

// TryLockSession takes the process-local lock key: the process is the
// session, so the lock is lost only with the database.
func (d *liteDB) TryLockSession(ctx context.Context, key int64) (LockSession, bool, error) {
	l := d.lock(key)
	if !l.TryLock() {
		return nil, false, nil
	}
	return &liteLockSession{db: d, release: sync.OnceFunc(l.Unlock)}, true, nil
}

type liteLockSession struct {
	db      *liteDB
	release func()
}

func (s *liteLockSession) Alive(context.Context) error {
	select {
	case <-s.db.closed:
		return errClosed
	default:
		return nil
	}
}

func (s *liteLockSession) Release() { s.release() }

// listenerBuffer is how many notifications a listener holds unread before
// it reports the next ones Lost instead of blocking Notify.
const listenerBuffer = 256

// Notify hands payload to this handle's listeners on channel without
// waiting for them.
func (d *liteDB) Notify(ctx context.Context, channel string, payloads ...string) error {
	select {
	case <-d.closed:
		return errClosed
	default:
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for l := range d.listeners[channel] {
		for _, p := range payloads {
			select {
			case l.ch <- p:
			default:
				l.lost.Store(true)
			}
		}
	}
	return nil
}

func (d *liteDB) Listen(ctx context.Context, channel string) (Listener, error) {
	l := &liteListener{db: d, channel: channel, ch: make(chan string, listenerBuffer)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.listeners[channel] == nil {
		d.listeners[channel] = map[*liteListener]struct{}{}
	}
	d.listeners[channel][l] = struct{}{}
	return l, nil
}

type liteListener struct {
	db      *liteDB
	channel string
	ch      chan string
	lost    atomic.Bool // Notify found ch full
}

func (l *liteListener) Next(ctx context.Context) (Notification, error) {
	if l.lost.Swap(false) {
		return Notification{Lost: true}, nil
	}
	select {
	case p := <-l.ch:
		return Notification{Payload: p}, nil
	case <-ctx.Done():
		return Notification{}, ctx.Err()
	case <-l.db.closed:
		return Notification{}, errClosed
	}
}

func (l *liteListener) Close() {
	l.db.mu.Lock()
	defer l.db.mu.Unlock()
	delete(l.db.listeners[l.channel], l)
	if len(l.db.listeners[l.channel]) == 0 {
		delete(l.db.listeners, l.channel)
	}
}

// liteArgs converts arguments to SQLite's storage: times to microseconds,
// slices (array parameters) to JSON arrays.
func liteArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = liteArg(a)
	}
	return out
}

func liteArg(a any) any {
	switch v := a.(type) {
	case nil, []byte, string, bool, int, int32, int64, float64:
		return v
	case time.Time:
		return v.UnixMicro()
	case *time.Time:
		if v == nil {
			return nil
		}
		return v.UnixMicro()
	}
	rv := reflect.ValueOf(a)
	if rv.Kind() == reflect.Slice {
		if rv.IsNil() {
			return nil
		}
		b, _ := json.Marshal(a)
		return string(b)
	}
	return a
}

type liteRow struct {
	r       *sql.Row
	release func() // the write turn, if the statement writes
}

func (r liteRow) Scan(dest ...any) error {
	defer r.release()
	return liteScan(r.r.Scan, dest)
}

type liteRows struct {
	r       *sql.Rows
	release func() // the write turn, if the statement writes
}

func (r *liteRows) Next() bool {
	if r.r.Next() {
		return true
	}
	r.release()
	return false
}
func (r *liteRows) Err() error { return r.r.Err() }
func (r *liteRows) Close() {
	_ = r.r.Close()
	r.release()
}
func (r *liteRows) Scan(dest ...any) error { return liteScan(r.r.Scan, dest) }

// liteScan scans through converting targets (see liteDest).
func liteScan(scan func(...any) error, dest []any) error {
	conv := liteDest(dest)
	if err := scan(conv.dest...); err != nil {
		return err
	}
	return conv.finish()
}

// converted holds scan targets that SQLite's values need converting into.
type converted struct {
	dest  []any
	fixes []func() error
}

func (c converted) finish() error {
	for _, f := range c.fixes {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// liteDest replaces targets whose SQLite storage differs: times (integer
// microseconds) and string slices (JSON arrays).
func liteDest(dest []any) converted {
	c := converted{dest: make([]any, len(dest))}
	for i, d := range dest {
		switch p := d.(type) {
		case *time.Time:
			var us sql.NullInt64
			c.dest[i] = &us
			c.fixes = append(c.fixes, func() error {
				if !us.Valid {
					return fmt.Errorf("scan NULL into a time")
				}
				*p = time.UnixMicro(us.Int64).UTC()
				return nil
			})
		case **time.Time:
			var us sql.NullInt64
			c.dest[i] = &us
			c.fixes = append(c.fixes, func() error {
				*p = nil
				if us.Valid {
					t := time.UnixMicro(us.Int64).UTC()
					*p = &t
				}
				return nil
			})
		case *[]string:
			var s sql.NullString
			c.dest[i] = &s
			c.fixes = append(c.fixes, func() error {
				*p = nil
				if !s.Valid {
					return nil
				}
				return json.Unmarshal([]byte(s.String), p)
			})
		default:
			c.dest[i] = d
		}
	}
	return c
}

func isSQLiteError(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e)
}

func isSQLiteCheckViolation(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_CHECK
}
