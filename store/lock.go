package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"slices"

	"github.com/lib/pq"
)

// LockObject takes an exclusive lock on one object at one provider, held until the
// returned unlock is called, across processes. Writes to one remote object (a per-object
// sync and a full-sync batch on different workers) take it so that no double POST can
// create a duplicate. It waits for the lock until ctx is done. The lock lives on a
// dedicated connection, so it is released even if this process dies.
func (s *Store) LockObject(ctx context.Context, providerID, kind, objectID string) (unlock func(), err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: lock %s %s: %w", kind, objectID, translate(err))
	}
	key := providerID + "/" + kind + "/" + objectID
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, key); err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: lock %s %s: %w", kind, objectID, translate(err))
	}
	return func() {
		// A fresh context: the caller's may be cancelled, and the lock must still go.
		if _, err := conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key); err != nil {
			// Unlocking failed: closing the connection drops the session and its lock.
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}, nil
}

// LockObjects takes the locks of several objects of one kind at once, on one connection,
// in id order (so that two callers with overlapping sets cannot deadlock), and holds them
// until unlock is called. A batch write takes its objects' locks this way.
//
// The locks are taken by one statement, in the order of the array it is given, rather than
// one statement per object: a batch of 100 objects costs one round trip instead of 100.
// If it fails or is cancelled part-way, unlock is not returned and the locks it took are
// released.
func (s *Store) LockObjects(ctx context.Context, providerID, kind string, objectIDs []string) (unlock func(), err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: lock %d %ss: %w", len(objectIDs), kind, translate(err))
	}
	ids := slices.Clone(objectIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = providerID + "/" + kind + "/" + id
	}
	release := func() {
		// pg_advisory_unlock_all drops every lock this session holds; a fresh context,
		// because the caller's may be cancelled and the locks must still go.
		if _, err := conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock_all()`); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}
	if len(keys) == 0 {
		return release, nil
	}
	// unnest yields the keys in array order, and the aggregate takes the locks row by row
	// in that order (ORDER BY on the ordinality makes it explicit).
	if _, err := conn.ExecContext(ctx, `
		SELECT count(pg_advisory_lock(hashtextextended(k, 0)))
		FROM (SELECT k FROM unnest($1::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n) AS ordered`,
		pq.Array(keys)); err != nil {
		release()
		return nil, fmt.Errorf("store: lock %d %ss: %w", len(ids), kind, translate(err))
	}
	return release, nil
}
