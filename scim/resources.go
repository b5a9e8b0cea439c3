package scim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kind is a SCIM resource endpoint.
type Kind string

// The resource kinds scimsync writes.
const (
	Users  Kind = "Users"
	Groups Kind = "Groups"
)

// Schema URNs (RFC 7643, RFC 7644).
const (
	SchemaUser           = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup          = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaListResponse   = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaPatchOp        = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SchemaBulkRequest    = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	SchemaBulkResponse   = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
	SchemaError          = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// CoreSchema returns the core schema URN of kind, "" for an unknown kind.
func (k Kind) CoreSchema() string {
	switch k {
	case Users:
		return SchemaUser
	case Groups:
		return SchemaGroup
	}
	return ""
}

func (k Kind) valid() bool { return k.CoreSchema() != "" }

// Meta is the "meta" attribute of a resource. Times that are absent or
// unparsable are zero.
type Meta struct {
	ResourceType string
	Created      time.Time
	LastModified time.Time
	Location     string
	Version      string
}

// Resource is a resource as the server returned it: a typed view of the
// common attributes plus the whole body.
type Resource struct {
	// ID is the server's id; numeric ids are turned into strings.
	ID         string
	ExternalID string
	Meta       Meta
	// Attributes is the whole body as decoded JSON. nil when the server
	// answered without a body (PATCH 204, dry run).
	Attributes map[string]any
}

// resourceFrom builds the typed view of body. Attribute names are matched
// case-insensitively (RFC 7643 §2.1): targets answer "ID", "externalID", "Meta".
func resourceFrom(body map[string]any) Resource {
	r := Resource{Attributes: body}
	r.ID = stringID(Attr(body, "id"))
	r.ExternalID, _ = Attr(body, "externalId").(string)
	if m, ok := Attr(body, "meta").(map[string]any); ok {
		r.Meta.ResourceType, _ = Attr(m, "resourceType").(string)
		r.Meta.Location, _ = Attr(m, "location").(string)
		r.Meta.Version, _ = Attr(m, "version").(string)
		r.Meta.Created = parseTime(Attr(m, "created"))
		r.Meta.LastModified = parseTime(Attr(m, "lastModified"))
	}
	return r
}

// Attr returns the attribute named name of m (a resource body, or a complex value in one),
// nil when it has none. Names are compared case-insensitively (RFC 7643 §2.1), an exact
// match first.
func Attr(m map[string]any, name string) any {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// stringID returns a JSON id as a string: strings as is, numbers without
// exponent; others "".
func stringID(v any) string {
	switch id := v.(type) {
	case string:
		return id
	case float64:
		return strconv.FormatFloat(id, 'f', -1, 64)
	case json.Number:
		return id.String()
	}
	return ""
}

func parseTime(v any) time.Time {
	s, _ := v.(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// writePayload returns a shallow copy of p ready to be sent: read-only
// "id" and "meta" removed (id set to id when not empty) and "schemas"
// filled in when missing: the core schema plus every URN-named key.
func writePayload(kind Kind, p map[string]any, id string) map[string]any {
	out := make(map[string]any, len(p)+2)
	for k, v := range p {
		switch k {
		case "id", "meta":
			continue
		}
		out[k] = v
	}
	if _, ok := out["schemas"]; !ok {
		schemas := []string{kind.CoreSchema()}
		var ext []string
		for k := range out {
			if strings.HasPrefix(strings.ToLower(k), "urn:") {
				ext = append(ext, k)
			}
		}
		sort.Strings(ext)
		out["schemas"] = append(schemas, ext...)
	}
	if id != "" {
		out["id"] = id
	}
	return out
}

func resourcePath(kind Kind, id string) string {
	if id == "" {
		return "/" + string(kind)
	}
	return "/" + string(kind) + "/" + url.PathEscape(id)
}

// Create POSTs payload to /Users or /Groups and returns the created
// resource. "schemas" is added when missing; "id" and "meta" are not
// sent. A success answer without an id is an *Error wrapping ErrNoID. In
// dry run nothing is sent and the payload comes back with a made-up id
// "dry-run-N".
func (c *Client) Create(ctx context.Context, kind Kind, payload map[string]any) (Resource, error) {
	const op = "create"
	if !kind.valid() {
		return Resource{}, invalidArgument(op, "unknown kind "+string(kind))
	}
	body := writePayload(kind, payload, "")
	path := resourcePath(kind, "")
	var out map[string]any
	resp, err := c.do(ctx, request{op: op, method: http.MethodPost, path: path, body: body}, &out)
	if err != nil {
		return Resource{}, err
	}
	if resp.dryRun {
		body["id"] = c.nextDryID()
		return resourceFrom(body), nil
	}
	r := resourceFrom(out)
	if r.ID == "" {
		return Resource{}, &Error{Op: op, Method: http.MethodPost, Path: path, Status: resp.status, Err: ErrNoID}
	}
	return r, nil
}

// Get reads one resource by id. A missing one is a 404 *Error (IsNotFound).
func (c *Client) Get(ctx context.Context, kind Kind, id string) (Resource, error) {
	const op = "get"
	if !kind.valid() || id == "" {
		return Resource{}, invalidArgument(op, "kind and id are required")
	}
	var out map[string]any
	if _, err := c.do(ctx, request{op: op, method: http.MethodGet, path: resourcePath(kind, id)}, &out); err != nil {
		return Resource{}, err
	}
	return resourceFrom(out), nil
}

// Replace PUTs the whole payload to /{kind}/{id} (RFC 7644 §3.5.1) and
// returns the server's resource; the body's "id" is set to id. An
// answer without body gives a Resource with only ID set. In dry run the
// payload comes back unchanged.
func (c *Client) Replace(ctx context.Context, kind Kind, id string, payload map[string]any) (Resource, error) {
	const op = "replace"
	if !kind.valid() || id == "" {
		return Resource{}, invalidArgument(op, "kind and id are required")
	}
	body := writePayload(kind, payload, id)
	var out map[string]any
	resp, err := c.do(ctx, request{op: op, method: http.MethodPut, path: resourcePath(kind, id), body: body}, &out)
	if err != nil {
		return Resource{}, err
	}
	if resp.dryRun {
		return resourceFrom(body), nil
	}
	if out == nil {
		return Resource{ID: id}, nil
	}
	return resourceFrom(out), nil
}

// PatchRequest is the body of a PATCH (RFC 7644 §3.5.2).
type PatchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []PatchOp `json:"Operations"`
}

// NewPatchRequest wraps ops in a PatchOp message.
func NewPatchRequest(ops []PatchOp) PatchRequest {
	return PatchRequest{Schemas: []string{SchemaPatchOp}, Operations: ops}
}

// Patch sends ops to /{kind}/{id}. It returns the server's resource when
// the answer has a body (200) and a Resource with only ID set when not
// (204, dry run). No operations means no request.
func (c *Client) Patch(ctx context.Context, kind Kind, id string, ops []PatchOp) (Resource, error) {
	const op = "patch"
	if !kind.valid() || id == "" {
		return Resource{}, invalidArgument(op, "kind and id are required")
	}
	if len(ops) == 0 {
		return Resource{ID: id}, nil
	}
	var out map[string]any
	_, err := c.do(ctx, request{op: op, method: http.MethodPatch, path: resourcePath(kind, id), body: NewPatchRequest(ops)}, &out)
	if err != nil {
		return Resource{}, err
	}
	if out == nil {
		return Resource{ID: id}, nil
	}
	return resourceFrom(out), nil
}

// Delete deletes /{kind}/{id}. A missing resource is a 404 *Error
// (IsNotFound), which docs/architecture.md ("Error handling") treats as done.
func (c *Client) Delete(ctx context.Context, kind Kind, id string) error {
	const op = "delete"
	if !kind.valid() || id == "" {
		return invalidArgument(op, "kind and id are required")
	}
	_, err := c.do(ctx, request{op: op, method: http.MethodDelete, path: resourcePath(kind, id)}, nil)
	return err
}

// Query is one page request of a search (RFC 7644 §3.4.2).
type Query struct {
	// Filter, "" for all resources.
	Filter Filter
	// StartIndex is 1-based; 0 means 1.
	StartIndex int
	// Count is the page size asked; 0 means Options.PageSize.
	Count int
	// Attributes and ExcludedAttributes, when set, are sent as such.
	Attributes         []string
	ExcludedAttributes []string
	// UseCursor pages by cursor (RFC 9865) instead of startIndex: Cursor is the
	// nextCursor of the page before, "" for the first page.
	UseCursor bool
	Cursor    string
}

// ListResponse is one page of results.
type ListResponse struct {
	TotalResults int
	StartIndex   int
	ItemsPerPage int
	// NextCursor is the cursor of the next page with cursor paging; "" on the last.
	NextCursor string
	Resources  []Resource
}

type listResponseJSON struct {
	TotalResults flexInt          `json:"totalResults"`
	StartIndex   flexInt          `json:"startIndex"`
	ItemsPerPage flexInt          `json:"itemsPerPage"`
	NextCursor   string           `json:"nextCursor"`
	Resources    []map[string]any `json:"Resources"`
}

// SearchPage reads one page of /{kind} matching q.
func (c *Client) SearchPage(ctx context.Context, kind Kind, q Query) (ListResponse, error) {
	const op = "search"
	if !kind.valid() {
		return ListResponse{}, invalidArgument(op, "unknown kind "+string(kind))
	}
	v := url.Values{}
	if q.Filter != "" {
		v.Set("filter", string(q.Filter))
	}
	if q.StartIndex < 1 {
		q.StartIndex = 1
	}
	if q.Count <= 0 {
		q.Count = c.pageSize()
	}
	if m := c.compat.MaxPageSize; m > 0 && q.Count > m {
		q.Count = m
	}
	if q.UseCursor {
		v.Set("cursor", q.Cursor)
	} else {
		v.Set("startIndex", strconv.Itoa(q.StartIndex))
	}
	v.Set("count", strconv.Itoa(q.Count))
	if len(q.Attributes) > 0 {
		v.Set("attributes", strings.Join(q.Attributes, ","))
	}
	if len(q.ExcludedAttributes) > 0 {
		v.Set("excludedAttributes", strings.Join(q.ExcludedAttributes, ","))
	}
	var out listResponseJSON
	if _, err := c.do(ctx, request{op: op, method: http.MethodGet, path: resourcePath(kind, ""), query: v}, &out); err != nil {
		return ListResponse{}, err
	}
	lr := ListResponse{
		TotalResults: int(out.TotalResults),
		StartIndex:   int(out.StartIndex),
		ItemsPerPage: int(out.ItemsPerPage),
		NextCursor:   out.NextCursor,
		Resources:    make([]Resource, 0, len(out.Resources)),
	}
	for _, r := range out.Resources {
		lr.Resources = append(lr.Resources, resourceFrom(r))
	}
	return lr, nil
}

func (c *Client) pageSize() int {
	if c.opts.PageSize > 0 {
		return c.opts.PageSize
	}
	return DefaultPageSize
}

// maxSearchResults stops Search on servers that never end their pages.
const maxSearchResults = 1_000_000

// Search returns every resource of kind matching filter ("" for all), read as Scan reads
// them.
func (c *Client) Search(ctx context.Context, kind Kind, filter Filter) ([]Resource, error) {
	var all []Resource
	if err := c.Scan(ctx, kind, filter, func(r Resource) error {
		all = append(all, r)
		return nil
	}); err != nil {
		return nil, err
	}
	return all, nil
}

// Scan calls fn with every resource of kind matching filter ("" for all), one page at a
// time, so that a caller looking through a whole target need not hold it. It follows
// ListResponse paging by startIndex until totalResults are read, a page comes back empty
// or short with no totalResults, or the server repeats a page (it ignored startIndex); by
// cursor until a page has no nextCursor where the compatibility mode pages by cursor. An
// error from fn stops the scan and is returned as is.
func (c *Client) Scan(ctx context.Context, kind Kind, filter Filter, fn func(Resource) error) error {
	read, start := 0, 1
	prevFirst := ""
	q := Query{Filter: filter, UseCursor: c.compat.CursorPaging}
	for {
		q.StartIndex = start
		page, err := c.SearchPage(ctx, kind, q)
		if err != nil {
			return err
		}
		n := len(page.Resources)
		if n == 0 {
			return nil
		}
		if !q.UseCursor {
			if first := page.Resources[0].ID; first != "" && first == prevFirst {
				return nil
			}
			prevFirst = page.Resources[0].ID
		}
		for _, r := range page.Resources {
			if err := fn(r); err != nil {
				return err
			}
		}
		read += n
		switch {
		case read >= maxSearchResults:
			return nil
		case q.UseCursor:
			if page.NextCursor == "" {
				return nil
			}
			q.Cursor = page.NextCursor
			continue
		case page.TotalResults > 0 && read >= page.TotalResults:
			return nil
		case page.TotalResults == 0 && n < c.pageSize():
			return nil
		}
		start += n
	}
}
