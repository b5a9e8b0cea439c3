package scimtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	schemaUser           = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaGroup          = "urn:ietf:params:scim:schemas:core:2.0:Group"
	schemaEnterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	schemaListResponse   = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	schemaPatchOp        = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	schemaBulkRequest    = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	schemaBulkResponse   = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
	schemaError          = "urn:ietf:params:scim:api:messages:2.0:Error"
	schemaSPC            = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	schemaSearchRequest  = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
)

// apiError is a SCIM error answer.
type apiError struct {
	status   int
	scimType string
	detail   string
}

func errorf(status int, scimType, format string, args ...any) *apiError {
	return &apiError{status: status, scimType: scimType, detail: fmt.Sprintf(format, args...)}
}

func (e *apiError) body() map[string]any {
	b := map[string]any{"schemas": []any{schemaError}, "status": strconv.Itoa(e.status), "detail": e.detail}
	if e.scimType != "" {
		b["scimType"] = e.scimType
	}
	return b
}

// object is one stored resource. Its body is never modified in place
// (copy-on-write), so a body read under the lock may be encoded after it.
type object struct {
	id      string
	body    map[string]any // stored body: id, schemas, meta, attributes
	version int
	deleted bool
}

// collection holds one resource kind with its indexes. All access is
// under Server.mu.
type collection struct {
	kind     string // "Users" or "Groups"
	byID     map[string]*object
	order    []*object // creation order; deleted entries until compacted
	dead     int
	unique   map[string]string              // lower(userName | displayName) → id
	external map[string]map[string]struct{} // externalId → ids
}

func newCollection(kind string) *collection {
	return &collection{
		kind:     kind,
		byID:     map[string]*object{},
		unique:   map[string]string{},
		external: map[string]map[string]struct{}{},
	}
}

// uniqueAttr is the attribute that must be unique (case-insensitively).
func (c *collection) uniqueAttr() string {
	if c.kind == "Users" {
		return "userName"
	}
	return "displayName"
}

func (c *collection) schema() string {
	if c.kind == "Users" {
		return schemaUser
	}
	return schemaGroup
}

func (c *collection) resourceType() string {
	if c.kind == "Users" {
		return "User"
	}
	return "Group"
}

func stringAttr(m map[string]any, key string) string {
	v, _ := getCI(m, key)
	s, _ := v.(string)
	return s
}

func (c *collection) index(o *object) {
	if u := stringAttr(o.body, c.uniqueAttr()); u != "" {
		c.unique[strings.ToLower(u)] = o.id
	}
	if e := stringAttr(o.body, "externalId"); e != "" {
		set := c.external[e]
		if set == nil {
			set = map[string]struct{}{}
			c.external[e] = set
		}
		set[o.id] = struct{}{}
	}
}

func (c *collection) unindex(o *object) {
	if u := strings.ToLower(stringAttr(o.body, c.uniqueAttr())); u != "" && c.unique[u] == o.id {
		delete(c.unique, u)
	}
	if e := stringAttr(o.body, "externalId"); e != "" {
		if set := c.external[e]; set != nil {
			delete(set, o.id)
			if len(set) == 0 {
				delete(c.external, e)
			}
		}
	}
}

func (c *collection) insert(o *object) {
	c.byID[o.id] = o
	c.order = append(c.order, o)
	c.index(o)
}

func (c *collection) remove(o *object) {
	c.unindex(o)
	delete(c.byID, o.id)
	o.deleted = true
	c.dead++
	if c.dead > 64 && c.dead > len(c.order)/4 {
		live := c.order[:0]
		for _, x := range c.order {
			if !x.deleted {
				live = append(live, x)
			}
		}
		clear(c.order[len(live):])
		c.order = live
		c.dead = 0
	}
}

// live returns the objects in creation order.
func (c *collection) live() []*object {
	if c.dead == 0 {
		return c.order
	}
	out := make([]*object, 0, len(c.byID))
	for _, o := range c.order {
		if !o.deleted {
			out = append(out, o)
		}
	}
	return out
}

// candidates returns the objects that may match f, using the indexes for
// an "eq" on id, externalId or the unique attribute (alone or inside an
// "and"); nil, false when a full scan is needed.
func (c *collection) candidates(f *Filter) ([]*object, bool) {
	if f == nil {
		return nil, false
	}
	switch f.Op {
	case "and":
		if objs, ok := c.candidates(f.Left); ok {
			return objs, true
		}
		return c.candidates(f.Right)
	case "eq":
		s, ok := f.Value.(string)
		if !ok {
			return nil, false
		}
		urn, attr, sub := splitAttrPath(f.Attr)
		if urn != "" || sub != "" {
			return nil, false
		}
		switch {
		case strings.EqualFold(attr, "id"):
			if o := c.byID[s]; o != nil {
				return []*object{o}, true
			}
			return []*object{}, true
		case strings.EqualFold(attr, "externalId"):
			ids := c.external[s]
			out := make([]*object, 0, len(ids))
			for id := range ids {
				out = append(out, c.byID[id])
			}
			sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
			return out, true
		case strings.EqualFold(attr, c.uniqueAttr()):
			if id, ok := c.unique[strings.ToLower(s)]; ok {
				return []*object{c.byID[id]}, true
			}
			return []*object{}, true
		}
	}
	return nil, false
}

// newID returns a random UUID-shaped id.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func now() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

// deepCopy copies JSON-like data.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

func copyMap(m map[string]any) map[string]any {
	c, _ := deepCopy(m).(map[string]any)
	return c
}

// toJSONMap turns any JSON-marshalable value into map[string]any.
func toJSONMap(v any) (map[string]any, error) {
	if m, ok := v.(map[string]any); ok {
		return copyMap(m), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// validate checks a user or group body before it is stored. self is the
// id of the object being replaced ("" on create).
func (s *Server) validate(c *collection, body map[string]any, self string) *apiError {
	schemas, _ := getCI(body, "schemas")
	list, _ := schemas.([]any)
	found := false
	for _, x := range list {
		if str, ok := x.(string); ok && strings.EqualFold(str, c.schema()) {
			found = true
		}
	}
	if !found {
		return errorf(http.StatusBadRequest, "invalidSyntax", "schemas must include %s", c.schema())
	}
	uattr := c.uniqueAttr()
	raw, _ := getCI(body, uattr)
	u, ok := raw.(string)
	if !ok || strings.TrimSpace(u) == "" {
		return errorf(http.StatusBadRequest, "invalidValue", "%s is required", uattr)
	}
	if id, taken := c.unique[strings.ToLower(u)]; taken && id != self {
		return errorf(http.StatusConflict, "uniqueness", "%s is already taken", uattr)
	}
	if v, ok := getCI(body, "externalId"); ok && v != nil {
		if _, isStr := v.(string); !isStr {
			return errorf(http.StatusBadRequest, "invalidValue", "externalId must be a string")
		}
	}
	if v, ok := getCI(body, "active"); ok && v != nil {
		if _, isBool := v.(bool); !isBool {
			return errorf(http.StatusBadRequest, "invalidValue", "active must be a boolean")
		}
	}
	for _, multi := range []string{"emails", "phoneNumbers", "addresses", "members"} {
		if v, ok := getCI(body, multi); ok && v != nil {
			if _, isArr := v.([]any); !isArr {
				return errorf(http.StatusBadRequest, "invalidValue", "%s must be an array", multi)
			}
		}
	}
	if c.kind == "Groups" {
		return s.validateMembers(body)
	}
	return nil
}

func (s *Server) validateMembers(body map[string]any) *apiError {
	v, _ := getCI(body, "members")
	arr, _ := v.([]any)
	seen := make(map[string]bool, len(arr))
	out := make([]any, 0, len(arr))
	for _, e := range arr {
		m, ok := e.(map[string]any)
		if !ok {
			return errorf(http.StatusBadRequest, "invalidValue", "member must be an object")
		}
		id, _ := getCI(m, "value")
		sid, ok := id.(string)
		if !ok || sid == "" {
			return errorf(http.StatusBadRequest, "invalidValue", "member value is required")
		}
		typ, _ := getCI(m, "type")
		styp, _ := typ.(string)
		if s.quirks.RequireMemberTypeUser && styp != "user" {
			return errorf(http.StatusBadRequest, "invalidValue", `member type must be "user"`)
		}
		if s.users.byID[sid] == nil && s.groups.byID[sid] == nil {
			return errorf(http.StatusBadRequest, "invalidValue", "member %d does not exist", len(out))
		}
		if seen[sid] {
			continue
		}
		seen[sid] = true
		out = append(out, m)
	}
	if v != nil {
		body[keyCI(body, "members")] = out
	}
	return nil
}

// memberIDs returns the member ids of a group body.
func memberIDs(body map[string]any) []string {
	v, _ := getCI(body, "members")
	arr, _ := v.([]any)
	ids := make([]string, 0, len(arr))
	for _, e := range arr {
		if m, ok := e.(map[string]any); ok {
			if id, ok := getCI(m, "value"); ok {
				if s, ok := id.(string); ok {
					ids = append(ids, s)
				}
			}
		}
	}
	return ids
}

// setMemberIndex updates the member → groups index for group gid.
func (s *Server) setMemberIndex(gid string, old, new []string) {
	for _, id := range old {
		if set := s.memberOf[id]; set != nil {
			delete(set, gid)
			if len(set) == 0 {
				delete(s.memberOf, id)
			}
		}
	}
	for _, id := range new {
		set := s.memberOf[id]
		if set == nil {
			set = map[string]struct{}{}
			s.memberOf[id] = set
		}
		set[gid] = struct{}{}
	}
}

// prepare turns a validated request body into a stored body.
func (c *collection) prepare(body map[string]any, id string, created string, version int, base string) map[string]any {
	out := make(map[string]any, len(body)+2)
	for k, v := range body {
		switch strings.ToLower(k) {
		case "id", "meta":
			continue
		}
		out[k] = v
	}
	out["id"] = id
	ts := now()
	if created == "" {
		created = ts
	}
	out["meta"] = map[string]any{
		"resourceType": c.resourceType(),
		"created":      created,
		"lastModified": ts,
		"location":     base + "/" + c.kind + "/" + id,
		"version":      fmt.Sprintf(`W/"%d"`, version),
	}
	return out
}

func (s *Server) coll(kind string) *collection {
	switch kind {
	case "Users":
		return s.users
	case "Groups":
		return s.groups
	}
	return nil
}

// createLocked stores a new resource. Caller holds s.mu.
func (s *Server) createLocked(kind string, body map[string]any, base string) (map[string]any, *apiError) {
	c := s.coll(kind)
	body = copyMap(body)
	if err := s.validate(c, body, ""); err != nil {
		return nil, err
	}
	id := newID()
	o := &object{id: id, version: 1}
	o.body = c.prepare(body, id, "", 1, base)
	c.insert(o)
	if kind == "Groups" {
		s.setMemberIndex(id, nil, memberIDs(o.body))
	}
	return o.body, nil
}

// replaceLocked replaces resource id with body. Caller holds s.mu.
func (s *Server) replaceLocked(kind, id string, body map[string]any, base string) (map[string]any, *apiError) {
	c := s.coll(kind)
	o := c.byID[id]
	if o == nil {
		return nil, errorf(http.StatusNotFound, "", "%s %s not found", c.resourceType(), id)
	}
	body = copyMap(body)
	if err := s.validate(c, body, id); err != nil {
		return nil, err
	}
	created := ""
	if m, ok := o.body["meta"].(map[string]any); ok {
		created, _ = m["created"].(string)
	}
	var oldMembers []string
	if kind == "Groups" {
		oldMembers = memberIDs(o.body)
	}
	c.unindex(o)
	o.version++
	o.body = c.prepare(body, id, created, o.version, base)
	c.index(o)
	if kind == "Groups" {
		s.setMemberIndex(id, oldMembers, memberIDs(o.body))
	}
	return o.body, nil
}

// deleteLocked deletes (or, with the slack quirk for users, deactivates)
// resource id. Caller holds s.mu.
func (s *Server) deleteLocked(kind, id, base string) *apiError {
	c := s.coll(kind)
	o := c.byID[id]
	if o == nil {
		return errorf(http.StatusNotFound, "", "%s %s not found", c.resourceType(), id)
	}
	if kind == "Users" && s.quirks.DeleteUserDeactivates {
		body := copyMap(o.body)
		body[keyCI(body, "active")] = false
		_, err := s.replaceLocked(kind, id, body, base)
		return err
	}
	if kind == "Groups" {
		s.setMemberIndex(id, memberIDs(o.body), nil)
	}
	c.remove(o)
	// Drop the deleted resource from the groups it belonged to.
	for gid := range s.memberOf[id] {
		g := s.groups.byID[gid]
		if g == nil {
			continue
		}
		v, _ := getCI(g.body, "members")
		arr, _ := v.([]any)
		kept := make([]any, 0, len(arr))
		for _, e := range arr {
			if m, ok := e.(map[string]any); ok {
				if val, _ := getCI(m, "value"); val == id {
					continue
				}
			}
			kept = append(kept, e)
		}
		nb := maps.Clone(g.body) // stored bodies are copy-on-write
		nb[keyCI(g.body, "members")] = kept
		g.body = nb
	}
	delete(s.memberOf, id)
	return nil
}

// render returns the body to send for o (quirks applied).
func (s *Server) render(kind string, body map[string]any) map[string]any {
	if kind == "Groups" && s.quirks.GroupGetOmitsMembers {
		out := make(map[string]any, len(body))
		for k, v := range body {
			if !strings.EqualFold(k, "members") {
				out[k] = v
			}
		}
		return out
	}
	return body
}
