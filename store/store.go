// Package store keeps scimsync's state in PostgreSQL: the directory (users, groups,
// memberships, applications and their bindings), provider configuration, sync links and
// the change outbox. It owns the schema (embedded migrations) and every SQL statement.
//
// The store does no SCIM and no Temporal work; it translates PostgreSQL errors into its
// own (ErrNotFound, *ConflictError) so callers never inspect driver errors.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned when a named or identified row does not exist.
var ErrNotFound = errors.New("store: not found")

// ConflictError reports a write that violates a uniqueness or reference rule, such as a
// second user with the same username or a binding to a group that does not exist.
type ConflictError struct {
	Constraint string // the violated constraint, e.g. "users_username_key"
	Detail     string // PostgreSQL's explanation, without row values
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("store: conflict on %s: %s", e.Constraint, e.Detail)
}

// InvalidError reports a value that a check constraint refuses, such as an unknown
// compatibility mode.
type InvalidError struct {
	Constraint string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("store: invalid value (check %s failed)", e.Constraint)
}

// Store is a handle on the scimsync database. It is safe for concurrent use.
type Store struct {
	db *sqlx.DB
	// Now returns the current time; tests replace it. Nil means time.Now.
	Now func() time.Time
	// RetryDelays is the escrow's schedule (escrow.go): how long after its n-th failed
	// write in a row an object is retried on its own; past the last, only full syncs
	// retry it. Nil means DefaultRetryDelays; empty, no escrow retries.
	RetryDelays []time.Duration

	growth linkGrowth // see analyze.go
}

// Open connects to the PostgreSQL database at dsn (a postgres:// URL or key=value string)
// and checks that it answers. It does not migrate; call Migrate.
func Open(ctx context.Context, dsn string) (*Store, error) {
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	db.SetMaxOpenConns(40)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect: %w", redactConnErr(err))
	}
	return &Store{db: db}, nil
}

// New wraps an existing connection pool.
func New(db *sqlx.DB) *Store { return &Store{db: db} }

// DB returns the underlying pool, for tests and tools that need raw SQL.
func (s *Store) DB() *sqlx.DB { return s.db }

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// Clock returns the store's time, the one it stamps links with.
func (s *Store) Clock() time.Time { return s.now() }

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Migrate applies every embedded migration that the database lacks. Several processes may
// call it at once: a PostgreSQL session lock makes them take turns. It returns the versions
// it applied (none when the schema is current).
func (s *Store) Migrate(ctx context.Context) ([]int64, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("store: migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, s.db.DB, sub, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: migrate: %w", err)
	}
	applied := make([]int64, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Version)
	}
	if err := s.saveDefaultMappings(ctx); err != nil {
		return applied, err
	}
	return applied, nil
}

// Tx is a transaction on the store. Directory writes made through it are captured in the
// change outbox when, and only when, it commits.
type Tx struct {
	tx *sqlx.Tx
	s  *Store
}

// InTx runs fn in a transaction, committing when fn returns nil and rolling back otherwise.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(&Tx{tx: tx, s: s}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", translate(err))
	}
	return nil
}

// translate turns driver errors into the store's own error types.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code.Name() {
		case "unique_violation", "foreign_key_violation", "exclusion_violation":
			return &ConflictError{Constraint: pqErr.Constraint, Detail: conflictDetail(pqErr)}
		case "check_violation", "not_null_violation", "invalid_text_representation":
			c := pqErr.Constraint
			if c == "" {
				c = pqErr.Column
			}
			if c == "" {
				c = pqErr.Message
			}
			return &InvalidError{Constraint: c}
		}
	}
	return err
}

// conflictDetail describes a violation without echoing row values (which may be personal
// data such as an email address).
func conflictDetail(e *pq.Error) string {
	switch e.Code.Name() {
	case "unique_violation":
		return "a row with the same key already exists in " + e.Table
	case "foreign_key_violation":
		return "a referenced row does not exist, or is still referenced, in " + e.Table
	}
	return e.Message
}

// redactConnErr strips the DSN (which may carry a password) from connection errors.
func redactConnErr(err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		return fmt.Errorf("%s (%s)", pqErr.Message, pqErr.Code.Name())
	}
	return err
}
