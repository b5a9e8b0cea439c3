package starter

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/scimsync/scimsync/store"
)

const importHelp = `
Imports users, groups (with their parent) and memberships into the directory, for trying
scimsync out. Users are matched by username and groups by name: an object already there is
updated to what the file says (fields left out take their defaults), memberships are added
(never removed), and importing the same file again changes nothing. Everything is written
in one transaction, after the whole file has been checked. The worker's change feed then
syncs what changed.

JSON (file name ending in .json):

  {
    "groups": [
      {"name": "staff"},
      {"name": "engineering", "parent": "staff", "attributes": {"cost_center": "42"}}
    ],
    "users": [
      {"username": "ada", "name": "Ada Lovelace", "email": "ada@example.com",
       "is_active": true, "type": "internal", "locale": "en-GB", "avatar": "",
       "attributes": {"department": "Engineering"}, "groups": ["engineering"]}
    ],
    "memberships": [{"group": "staff", "user": "ada"}]
  }

CSV (file name ending in .csv), one object per row, with a header naming the columns:

  kind,username,name,email,is_active,type,locale,avatar,groups,parent,attr.department
  group,,staff,,,,,,,,
  group,,engineering,,,,,,,staff,
  user,ada,Ada Lovelace,ada@example.com,true,internal,en-GB,,engineering;staff,,Engineering

kind is user (the default) or group; for a group, name is its name; groups lists a user's
groups separated by ";"; attr.X columns become attributes (users and groups).
`

type importUser struct {
	at     string
	user   store.User
	groups []string
}

type importGroup struct {
	at     string
	name   string
	parent string
	attrs  map[string]any
}

type importMember struct {
	at          string
	group, user string
}

type directoryFile struct {
	users   []importUser
	groups  []importGroup
	members []importMember
}

// importCounts tallies an import, also its --json output.
type importCounts struct {
	File                 string   `json:"file"`
	DryRun               bool     `json:"dryRun"`
	GroupsCreated        int      `json:"groupsCreated"`
	GroupsUpdated        int      `json:"groupsUpdated"`
	GroupsUnchanged      int      `json:"groupsUnchanged"`
	UsersCreated         int      `json:"usersCreated"`
	UsersUpdated         int      `json:"usersUpdated"`
	UsersUnchanged       int      `json:"usersUnchanged"`
	MembershipsAdded     int      `json:"membershipsAdded"`
	MembershipsUnchanged int      `json:"membershipsUnchanged"`
	Errors               []string `json:"errors,omitempty"`
}

// importFlags are the flags of starter import.
type importFlags struct {
	file           string
	dryRun, asJSON bool
}

// importCommand declares `starter import`.
func importCommand(cl *cmdLine) runFunc {
	cl.describe("import -f FILE [--dry-run] [--json]", importHelp, 0, 0)
	var f importFlags
	cl.flags.StringVarP(&f.file, "f", "f", "", "the file to import: .json or .csv")
	_ = cl.cmd.MarkFlagFilename("f", "json", "csv")
	cl.flags.BoolVar(&f.dryRun, "dry-run", false, "check the file and count what would change, writing nothing")
	cl.flags.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	return func(ctx context.Context, d *Deps, _ []string, stdout, stderr io.Writer) int {
		return Import(ctx, d, cl, f, stdout, stderr)
	}
}

// Import is `starter import`.
func Import(ctx context.Context, d *Deps, cl *cmdLine, f importFlags, stdout, stderr io.Writer) int {
	file, dryRun, asJSON := f.file, f.dryRun, f.asJSON
	if file == "" {
		return cl.usageError(stderr, "-f FILE is required")
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return exitCode(stderr, "import", usageErrorf("read %s: %v", file, unwrapPathError(err)))
	}
	var df *directoryFile
	var errs []string
	switch strings.ToLower(filepath.Ext(file)) {
	case ".json":
		df, errs = parseDirectoryJSON(file, src)
	case ".csv":
		df, errs = parseDirectoryCSV(file, src)
	default:
		return cl.usageError(stderr, fmt.Sprintf("%s: the file name must end in .json or .csv", file))
	}
	if len(errs) == 0 {
		errs = checkDirectory(df)
	}
	res := importCounts{File: file, DryRun: dryRun}
	if len(errs) == 0 {
		sess := newSession(d, cl.cfg, stderr)
		defer sess.close()
		st, err := sess.store(ctx)
		if err != nil {
			return exitCode(stderr, "import", err)
		}
		err = st.InTx(ctx, func(tx *store.Tx) error {
			var err error
			errs, err = importDirectory(ctx, tx, df, &res)
			if err != nil {
				return err
			}
			if len(errs) > 0 {
				return errInvalidConfig
			}
			if dryRun {
				return errDryRun
			}
			return nil
		})
		if err != nil && !errors.Is(err, errInvalidConfig) && !errors.Is(err, errDryRun) {
			return exitCode(stderr, "import", err)
		}
	}
	if len(errs) > 0 {
		res = importCounts{File: file, DryRun: dryRun, Errors: errs}
		if asJSON {
			writeJSON(stdout, res)
		}
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		fmt.Fprintf(stderr, "starter import: %s has %d error(s); nothing was imported\n", file, len(errs))
		return ExitUsage
	}
	if asJSON {
		writeJSON(stdout, res)
		return ExitOK
	}
	suffix := ""
	if dryRun {
		suffix = " (dry run: nothing was written)"
	}
	fmt.Fprintf(stdout, "import %s%s:\n", file, suffix)
	fmt.Fprintf(stdout, "  groups:      %d created, %d updated, %d unchanged\n", res.GroupsCreated, res.GroupsUpdated, res.GroupsUnchanged)
	fmt.Fprintf(stdout, "  users:       %d created, %d updated, %d unchanged\n", res.UsersCreated, res.UsersUpdated, res.UsersUnchanged)
	fmt.Fprintf(stdout, "  memberships: %d added, %d unchanged\n", res.MembershipsAdded, res.MembershipsUnchanged)
	return ExitOK
}

func parseDirectoryJSON(file string, src []byte) (*directoryFile, []string) {
	var doc struct {
		Groups []struct {
			Name       string         `json:"name"`
			Parent     string         `json:"parent"`
			Attributes map[string]any `json:"attributes"`
		} `json:"groups"`
		Users []struct {
			Username   string         `json:"username"`
			Name       string         `json:"name"`
			Email      string         `json:"email"`
			IsActive   *bool          `json:"is_active"`
			Type       string         `json:"type"`
			Locale     string         `json:"locale"`
			Avatar     string         `json:"avatar"`
			Attributes map[string]any `json:"attributes"`
			Groups     []string       `json:"groups"`
		} `json:"users"`
		Memberships []struct {
			Group string `json:"group"`
			User  string `json:"user"`
		} `json:"memberships"`
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, []string{fmt.Sprintf("%s:%d: invalid JSON: %v", file, lineOf(src, se.Offset), err)}
		case errors.As(err, &te):
			return nil, []string{fmt.Sprintf("%s:%d: %s: expected %s, got a JSON %s", file, lineOf(src, te.Offset), te.Field, te.Type, te.Value)}
		}
		return nil, []string{fmt.Sprintf("%s: %v", file, strings.TrimPrefix(err.Error(), "json: "))}
	}
	df := &directoryFile{}
	for i, g := range doc.Groups {
		df.groups = append(df.groups, importGroup{at: fmt.Sprintf("%s: groups[%d]", file, i), name: g.Name, parent: g.Parent, attrs: g.Attributes})
	}
	for i, u := range doc.Users {
		at := fmt.Sprintf("%s: users[%d]", file, i)
		active := true
		if u.IsActive != nil {
			active = *u.IsActive
		}
		df.users = append(df.users, importUser{at: at, groups: u.Groups, user: store.User{
			Username: u.Username, Name: u.Name, Email: u.Email, IsActive: active, Type: u.Type,
			Locale: u.Locale, Avatar: u.Avatar, Attributes: u.Attributes,
		}})
		for _, g := range u.Groups {
			df.members = append(df.members, importMember{at: at + ".groups", group: g, user: u.Username})
		}
	}
	for i, m := range doc.Memberships {
		df.members = append(df.members, importMember{at: fmt.Sprintf("%s: memberships[%d]", file, i), group: m.Group, user: m.User})
	}
	return df, nil
}

func lineOf(src []byte, offset int64) int {
	offset = min(max(offset, 0), int64(len(src)))
	return bytes.Count(src[:offset], []byte("\n")) + 1
}

var csvColumns = []string{"kind", "username", "name", "email", "is_active", "type", "locale", "avatar", "groups", "parent"}

func parseDirectoryCSV(file string, src []byte) (*directoryFile, []string) {
	r := csv.NewReader(bytes.NewReader(src))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, []string{fmt.Sprintf("%s:1: cannot read the header: %v", file, err)}
	}
	col := map[string]int{}
	var errs []string
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if !slices.Contains(csvColumns, h) && !strings.HasPrefix(h, "attr.") {
			errs = append(errs, fmt.Sprintf("%s:1: unknown column %q (known: %s, attr.NAME)", file, h, strings.Join(csvColumns, ", ")))
		}
		col[h] = i
	}
	if len(errs) > 0 {
		return nil, errs
	}
	df := &directoryFile{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", file, err))
			break
		}
		at := fmt.Sprintf("%s:%d", file, line)
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		attrs := map[string]any{}
		for h, i := range col {
			if name, ok := strings.CutPrefix(h, "attr."); ok && i < len(rec) && rec[i] != "" {
				attrs[name] = rec[i]
			}
		}
		switch get("kind") {
		case "group":
			df.groups = append(df.groups, importGroup{at: at, name: get("name"), parent: get("parent"), attrs: attrs})
		case "user", "":
			active := true
			if v := get("is_active"); v != "" {
				b, err := strconv.ParseBool(v)
				if err != nil {
					errs = append(errs, fmt.Sprintf("%s: is_active: expected true or false, got %q", at, v))
				}
				active = b
			}
			u := importUser{at: at, user: store.User{Username: get("username"), Name: get("name"), Email: get("email"),
				IsActive: active, Type: get("type"), Locale: get("locale"), Avatar: get("avatar"), Attributes: attrs}}
			for _, g := range strings.Split(get("groups"), ";") {
				if g = strings.TrimSpace(g); g != "" {
					u.groups = append(u.groups, g)
					df.members = append(df.members, importMember{at: at, group: g, user: u.user.Username})
				}
			}
			df.users = append(df.users, u)
		default:
			errs = append(errs, fmt.Sprintf("%s: kind: unknown value %q: use user or group", at, get("kind")))
		}
	}
	return df, errs
}

// checkDirectory checks what needs no database: required names, repeats, user types and
// cycles among the file's groups.
func checkDirectory(df *directoryFile) []string {
	var errs []string
	users := map[string]string{}
	for _, u := range df.users {
		switch {
		case u.user.Username == "":
			errs = append(errs, u.at+": username: required")
		case users[u.user.Username] != "":
			errs = append(errs, fmt.Sprintf("%s: username: %q is listed twice (first at %s)", u.at, u.user.Username, users[u.user.Username]))
		default:
			users[u.user.Username] = u.at
		}
		switch u.user.Type {
		case "", store.UserInternal, store.UserExternal, store.UserServiceAccount:
		default:
			errs = append(errs, fmt.Sprintf("%s: type: unknown value %q: use internal, external or service_account", u.at, u.user.Type))
		}
	}
	parents := map[string]string{}
	groups := map[string]string{}
	for _, g := range df.groups {
		switch {
		case g.name == "":
			errs = append(errs, g.at+": name: required")
		case groups[g.name] != "":
			errs = append(errs, fmt.Sprintf("%s: name: group %q is listed twice (first at %s)", g.at, g.name, groups[g.name]))
		default:
			groups[g.name] = g.at
			parents[g.name] = g.parent
		}
		if g.parent == g.name && g.name != "" {
			errs = append(errs, fmt.Sprintf("%s: parent: a group cannot be its own parent", g.at))
		}
	}
	for _, g := range df.groups {
		seen := map[string]bool{g.name: true}
		for p := parents[g.name]; p != ""; p = parents[p] {
			if seen[p] {
				if p == g.name && parents[g.name] != g.name {
					errs = append(errs, fmt.Sprintf("%s: parent: groups %q and %q are each other's ancestors", g.at, g.name, parents[g.name]))
				}
				break
			}
			seen[p] = true
		}
	}
	for _, m := range df.members {
		if m.group == "" || m.user == "" {
			errs = append(errs, m.at+": a membership needs a group and a user")
		}
	}
	return errs
}

// importDirectory writes the file in tx and counts what changed. It returns the reference
// errors (groups or users that exist neither in the file nor in the database).
func importDirectory(ctx context.Context, tx *store.Tx, df *directoryFile, res *importCounts) ([]string, error) {
	var groupNames, usernames []string
	for _, g := range df.groups {
		groupNames = append(groupNames, g.name)
		if g.parent != "" {
			groupNames = append(groupNames, g.parent)
		}
	}
	for _, u := range df.users {
		usernames = append(usernames, u.user.Username)
	}
	for _, m := range df.members {
		groupNames = append(groupNames, m.group)
		usernames = append(usernames, m.user)
	}
	groups, err := tx.GroupsByName(ctx, groupNames)
	if err != nil {
		return nil, err
	}
	users, err := tx.UsersByUsername(ctx, usernames)
	if err != nil {
		return nil, err
	}
	inFile := map[string]bool{}
	for _, g := range df.groups {
		inFile[g.name] = true
	}
	usersInFile := map[string]bool{}
	for _, u := range df.users {
		usersInFile[u.user.Username] = true
	}
	var errs []string
	for _, g := range df.groups {
		if _, ok := groups[g.parent]; g.parent != "" && !ok && !inFile[g.parent] {
			errs = append(errs, fmt.Sprintf("%s: parent: unknown group %q", g.at, g.parent))
		}
	}
	for _, m := range df.members {
		if _, ok := groups[m.group]; !ok && !inFile[m.group] {
			errs = append(errs, fmt.Sprintf("%s: unknown group %q", m.at, m.group))
		}
		if _, ok := users[m.user]; !ok && !usersInFile[m.user] {
			errs = append(errs, fmt.Sprintf("%s: unknown user %q", m.at, m.user))
		}
	}
	if len(errs) > 0 {
		return errs, nil
	}

	// Groups, parents before children, so each is written once with its parent's id.
	pending := slices.Clone(df.groups)
	for len(pending) > 0 {
		var next []importGroup
		for _, g := range pending {
			var parentID *string
			if g.parent != "" {
				p, ok := groups[g.parent]
				if !ok || (inFile[g.parent] && p.ID == "") {
					next = append(next, g) // its parent is written first
					continue
				}
				parentID = &p.ID
			}
			cur, exists := groups[g.name]
			want := store.Group{ID: cur.ID, Name: g.name, ParentID: parentID, Attributes: g.attrs}
			switch {
			case !exists || cur.ID == "":
				saved, err := tx.CreateGroup(ctx, want)
				if err != nil {
					return nil, fmt.Errorf("group %s: %w", g.name, err)
				}
				groups[g.name] = saved
				res.GroupsCreated++
			case !equalPtr(cur.ParentID, parentID) || !equalJSON(cur.Attributes, g.attrs):
				saved, err := tx.UpdateGroup(ctx, want)
				if err != nil {
					return nil, fmt.Errorf("group %s: %w", g.name, err)
				}
				groups[g.name] = saved
				res.GroupsUpdated++
			default:
				res.GroupsUnchanged++
			}
		}
		if len(next) == len(pending) {
			return nil, fmt.Errorf("groups %s: their parents form a cycle", names(next))
		}
		pending = next
	}

	for _, u := range df.users {
		want := u.user
		if want.Type == "" {
			want.Type = store.UserInternal
		}
		cur, exists := users[want.Username]
		switch {
		case !exists:
			saved, err := tx.CreateUser(ctx, want)
			if err != nil {
				return nil, fmt.Errorf("user %s: %w", want.Username, err)
			}
			users[want.Username] = saved
			res.UsersCreated++
		case cur.Name != want.Name || cur.Email != want.Email || cur.IsActive != want.IsActive || cur.Type != want.Type ||
			cur.Locale != want.Locale || cur.Avatar != want.Avatar || !equalJSON(cur.Attributes, want.Attributes):
			want.ID = cur.ID
			saved, err := tx.UpdateUser(ctx, want)
			if err != nil {
				return nil, fmt.Errorf("user %s: %w", want.Username, err)
			}
			users[want.Username] = saved
			res.UsersUpdated++
		default:
			res.UsersUnchanged++
		}
	}

	var groupIDs []string
	for _, m := range df.members {
		groupIDs = append(groupIDs, groups[m.group].ID)
	}
	existing, err := tx.Memberships(ctx, groupIDs)
	if err != nil {
		return nil, err
	}
	for _, m := range df.members {
		key := store.Membership{GroupID: groups[m.group].ID, UserID: users[m.user].ID}
		if existing[key] {
			res.MembershipsUnchanged++
			continue
		}
		if err := tx.AddMember(ctx, key.GroupID, key.UserID); err != nil {
			return nil, err
		}
		existing[key] = true
		res.MembershipsAdded++
	}
	return nil, nil
}

func equalPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// equalJSON compares two attribute maps as JSON values (nil and empty are equal).
func equalJSON(a, b map[string]any) bool {
	norm := func(m map[string]any) any {
		if len(m) == 0 {
			return map[string]any{}
		}
		raw, _ := json.Marshal(m)
		var out any
		json.Unmarshal(raw, &out)
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func names(gs []importGroup) string {
	var out []string
	for _, g := range gs {
		out = append(out, g.name)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
