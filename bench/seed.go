package main

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// The synthetic directory. Ids are derived from the row numbers (md5 of a label, as a
// uuid), so every run seeds the same directory and the bench can name any user without
// reading it back:
//
//	user i (1..users)   id md5('bench-user-i'), username user000i, name "Bench User i",
//	                    email user000i@bench.example, every tenth with a locale
//	group j (0..groups-1) id md5('bench-group-j'), name group000j, no parent
//	memberships         user i is in groups (i + k*stride) mod groups, k < perUser,
//	                    stride = groups/perUser: perUser distinct groups, groups of equal size
//
// Every user is internal and active, so all are in the provider's scope.

// userName is the username of user i.
func userName(i int) string { return fmt.Sprintf("user%06d", i) }

// seedDirectory fills a fresh, migrated database in one transaction of set-based
// statements. The outbox triggers are disabled meanwhile, so that seeding queues no change
// for the change feed (and the outbox is emptied for good measure): only the full syncs the
// bench starts, and the changes of S4, reach the target. It returns the memberships made.
func seedDirectory(ctx context.Context, db *sqlx.DB, users, groups, perUser int) (int, error) {
	perUser = min(perUser, groups)
	stride := 1
	if perUser > 0 {
		stride = max(groups/perUser, 1)
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	steps := []struct {
		what, sql string
		args      []any
	}{
		{"disable triggers", `ALTER TABLE users DISABLE TRIGGER USER;
			ALTER TABLE groups DISABLE TRIGGER USER;
			ALTER TABLE group_members DISABLE TRIGGER USER`, nil},
		{"users", `INSERT INTO users (id, username, name, email, is_active, type, locale)
			SELECT md5('bench-user-' || i)::uuid, 'user' || lpad(i::text, 6, '0'), 'Bench User ' || i,
			       'user' || lpad(i::text, 6, '0') || '@bench.example', true, 'internal',
			       CASE WHEN i % 10 = 0 THEN 'de-DE' ELSE '' END
			FROM generate_series(1, $1::int) AS i`, []any{users}},
		{"groups", `INSERT INTO groups (id, name)
			SELECT md5('bench-group-' || j)::uuid, 'group' || lpad(j::text, 5, '0')
			FROM generate_series(0, $1::int - 1) AS j`, []any{groups}},
		{"memberships", `INSERT INTO group_members (group_id, user_id)
			SELECT md5('bench-group-' || ((i + k * $3::int) % $2::int))::uuid, md5('bench-user-' || i)::uuid
			FROM generate_series(1, $1::int) AS i, generate_series(0, $4::int - 1) AS k
			ON CONFLICT DO NOTHING`, []any{users, groups, stride, perUser}},
		{"enable triggers", `ALTER TABLE users ENABLE TRIGGER USER;
			ALTER TABLE groups ENABLE TRIGGER USER;
			ALTER TABLE group_members ENABLE TRIGGER USER`, nil},
		{"empty the outbox", `DELETE FROM sync_changes`, nil},
	}
	for _, s := range steps {
		if groups == 0 && s.what == "memberships" {
			continue
		}
		if _, err := tx.ExecContext(ctx, s.sql, s.args...); err != nil {
			return 0, fmt.Errorf("seed %s: %w", s.what, err)
		}
	}
	var memberships int
	if err := tx.GetContext(ctx, &memberships, `SELECT count(*) FROM group_members`); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
		return 0, fmt.Errorf("analyze: %w", err)
	}
	return memberships, nil
}
