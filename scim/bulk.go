package scim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Bulk defaults used when the target advertises Bulk without limits.
const (
	DefaultBulkMaxOperations  = 100
	DefaultBulkMaxPayloadSize = 1 << 20
)

// BulkOperation is one operation of a Bulk request (RFC 7644 §3.7).
type BulkOperation struct {
	// Method is POST, PUT, PATCH or DELETE.
	Method string
	// Kind and ID make the path: /Users for POST, /Users/{id} otherwise.
	// ID may be "bulkId:<id>" to refer to a resource created earlier in
	// the same call, in this chunk or an earlier one.
	Kind Kind
	ID   string
	// BulkID identifies the operation and must be unique in the call; ""
	// gets "op<index>". Required by
	// RFC 7644 for POST, sent for every method so results can be matched.
	BulkID string
	// Data is the body: a resource payload for POST and PUT, a
	// PatchRequest (or its ops) for PATCH, nil for DELETE. Strings equal
	// to "bulkId:<id>" anywhere in it are resolved across chunks.
	Data any
	// Version, when set, is sent as the operation's ETag.
	Version string
}

// BulkResult is the outcome of one operation, in the order of the input.
type BulkResult struct {
	BulkID string
	Method string
	// Status is the operation's HTTP status; 0 when it was not attempted.
	Status int
	// ID of the resource (from location or the created body), when known.
	ID       string
	Location string
	// Err is nil on success, else an *Error: the operation's SCIM error,
	// ErrNoID (a POST answered with success but neither location nor id),
	// ErrNotAttempted, or ErrPayloadTooLarge.
	Err error
}

type bulkOpJSON struct {
	Method  string `json:"method"`
	BulkID  string `json:"bulkId,omitempty"`
	Version string `json:"version,omitempty"`
	Path    string `json:"path"`
	Data    any    `json:"data,omitempty"`
}

type bulkRequestJSON struct {
	Schemas      []string          `json:"schemas"`
	FailOnErrors int               `json:"failOnErrors,omitempty"`
	Operations   []json.RawMessage `json:"Operations"`
}

type bulkResultJSON struct {
	Method   string          `json:"method"`
	BulkID   string          `json:"bulkId"`
	Location string          `json:"location"`
	Status   json.RawMessage `json:"status"`
	Response json.RawMessage `json:"response"`
}

type bulkResponseJSON struct {
	Operations []bulkResultJSON `json:"Operations"`
}

// Bulk sends ops through POST /Bulk, split into requests that respect the
// target's bulk.maxOperations and bulk.maxPayloadSize, and returns one
// result per operation in input order. failOnErrors > 0 is sent to the
// server and also stops the client from sending further chunks once that
// many operations failed; the rest are ErrNotAttempted. 0 means no limit.
//
// When Bulk is not supported (Capabilities.Bulk false) Bulk returns an
// *Error wrapping ErrUnsupported and sends nothing. When a whole request
// fails (401, 413, 5xx, network), Bulk returns that error with the
// results gathered so far; operations of that and later chunks are
// ErrNotAttempted. In dry run each chunk is recorded, POSTs get made-up
// ids and every operation succeeds.
func (c *Client) Bulk(ctx context.Context, ops []BulkOperation, failOnErrors int) ([]BulkResult, error) {
	const op = "bulk"
	caps, err := c.Capabilities(ctx)
	if err != nil {
		return nil, err
	}
	if !caps.Bulk {
		return nil, &Error{Op: op, Err: ErrUnsupported}
	}
	maxOps, maxSize := caps.BulkMaxOperations, caps.BulkMaxPayloadSize
	if maxOps <= 0 {
		maxOps = DefaultBulkMaxOperations
	}
	if maxSize <= 0 {
		maxSize = DefaultBulkMaxPayloadSize
	}

	ops = append([]BulkOperation(nil), ops...) // bulkIds are filled in on a copy
	seen := make(map[string]bool, len(ops))
	for i := range ops {
		if ops[i].BulkID == "" {
			ops[i].BulkID = "op" + strconv.Itoa(i)
		}
		if seen[ops[i].BulkID] {
			return nil, invalidArgument(op, "duplicate bulkId")
		}
		seen[ops[i].BulkID] = true
	}
	results := make([]BulkResult, len(ops))
	for i := range ops {
		results[i] = BulkResult{BulkID: ops[i].BulkID, Method: strings.ToUpper(ops[i].Method),
			Err: &Error{Op: op, Method: strings.ToUpper(ops[i].Method), Err: ErrNotAttempted}}
	}
	resolved := map[string]string{} // bulkId → server id, across chunks
	failures := 0
	envelope := len(`{"schemas":["` + SchemaBulkRequest + `"],"failOnErrors":` + strconv.Itoa(failOnErrors) + `,"Operations":[]}`)

	for next := 0; next < len(ops); {
		if failOnErrors > 0 && failures >= failOnErrors {
			break
		}
		// Build one chunk from next on.
		var chunk []int
		var raws []json.RawMessage
		size := envelope
		for i := next; i < len(ops) && len(chunk) < maxOps; i++ {
			raw, err := c.bulkOpJSON(ops[i], resolved)
			if err == nil && envelope+len(raw)+1 > maxSize {
				err = &Error{Op: op, Method: results[i].Method, Err: ErrPayloadTooLarge}
			}
			if err != nil {
				if len(chunk) > 0 {
					break // send what we have; this one fails alone next round
				}
				results[i].Err = err
				failures++
				next = i + 1
				continue
			}
			if size+len(raw)+1 > maxSize {
				break
			}
			size += len(raw) + 1
			chunk = append(chunk, i)
			raws = append(raws, raw)
		}
		if len(chunk) == 0 {
			continue
		}
		next = chunk[len(chunk)-1] + 1

		fail := 0
		if failOnErrors > 0 {
			fail = failOnErrors - failures
		}
		body := bulkRequestJSON{Schemas: []string{SchemaBulkRequest}, FailOnErrors: fail, Operations: raws}
		var out bulkResponseJSON
		resp, err := c.do(ctx, request{op: op, method: http.MethodPost, path: "/Bulk", body: body}, &out)
		if err != nil {
			return results, err
		}
		if resp.dryRun {
			for _, i := range chunk {
				r := &results[i]
				r.Err, r.Status = nil, http.StatusOK
				if r.Method == http.MethodPost {
					r.Status, r.ID = http.StatusCreated, c.nextDryID()
					resolved[r.BulkID] = r.ID
				} else {
					r.ID = ops[i].ID
				}
			}
			continue
		}
		failures += c.applyBulkResults(ops, chunk, out.Operations, results, resolved)
	}
	return results, nil
}

// bulkOpJSON encodes one operation, resolving bulkId references known so far.
func (c *Client) bulkOpJSON(o BulkOperation, resolved map[string]string) (json.RawMessage, error) {
	method := strings.ToUpper(o.Method)
	if !o.Kind.valid() {
		return nil, invalidArgument("bulk", "unknown kind "+string(o.Kind))
	}
	id := resolveRef(o.ID, resolved)
	path := "/" + string(o.Kind)
	switch method {
	case http.MethodPost:
	case http.MethodPut, http.MethodPatch, http.MethodDelete:
		if id == "" {
			return nil, invalidArgument("bulk", method+" needs an id")
		}
		if strings.HasPrefix(id, "bulkId:") {
			path += "/" + id
		} else {
			path = resourcePath(o.Kind, id)
		}
	default:
		return nil, invalidArgument("bulk", "unknown method "+method)
	}
	data := o.Data
	switch d := data.(type) {
	case map[string]any:
		if method == http.MethodPost || method == http.MethodPut {
			data = writePayload(o.Kind, d, "")
		}
	case []PatchOp:
		data = NewPatchRequest(d)
	}
	data = resolveRefs(data, resolved)
	if method == http.MethodDelete {
		data = nil
	}
	b, err := marshalJSON(bulkOpJSON{Method: method, BulkID: o.BulkID, Version: o.Version, Path: path, Data: data})
	if err != nil {
		return nil, &Error{Op: "bulk", Method: method, Path: path, Err: fmt.Errorf("encode body: %w", err)}
	}
	return b, nil
}

func resolveRef(s string, resolved map[string]string) string {
	if ref, ok := strings.CutPrefix(s, "bulkId:"); ok {
		if id, ok := resolved[ref]; ok {
			return id
		}
	}
	return s
}

// resolveRefs replaces "bulkId:x" strings inside JSON-like data; other
// types go through a JSON round trip only when they contain a reference.
func resolveRefs(v any, resolved map[string]string) any {
	if len(resolved) == 0 {
		return v
	}
	switch x := v.(type) {
	case string:
		return resolveRef(x, resolved)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = resolveRefs(e, resolved)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = resolveRefs(e, resolved)
		}
		return out
	case nil:
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil || !strings.Contains(string(b), `"bulkId:`) {
		return v
	}
	var generic any
	if json.Unmarshal(b, &generic) != nil {
		return v
	}
	return resolveRefs(generic, resolved)
}

// applyBulkResults matches the server's results to the chunk's operations
// (by bulkId, else by position) and returns how many failed.
func (c *Client) applyBulkResults(ops []BulkOperation, chunk []int, got []bulkResultJSON, results []BulkResult, resolved map[string]string) int {
	byBulkID := make(map[string]int, len(chunk))
	for _, i := range chunk {
		byBulkID[ops[i].BulkID] = i
	}
	failed := 0
	for pos, r := range got {
		i, ok := byBulkID[r.BulkID]
		if !ok {
			if r.BulkID != "" || pos >= len(chunk) {
				continue
			}
			i = chunk[pos]
		}
		res := &results[i]
		res.Status = parseBulkStatus(r.Status)
		res.Location = r.Location
		res.ID = idFromLocation(r.Location)
		var body map[string]any
		if len(r.Response) > 0 && decodeJSON(r.Response, &body) == nil && res.ID == "" {
			res.ID = stringID(Attr(body, "id"))
		}
		if res.ID == "" && res.Method != http.MethodPost {
			res.ID = resolveRef(ops[i].ID, resolved)
		}
		path := "/" + string(ops[i].Kind)
		if res.Method != http.MethodPost {
			path = resourcePath(ops[i].Kind, resolveRef(ops[i].ID, resolved))
		}
		if res.Status >= 200 && res.Status < 300 && res.Method == http.MethodPost && res.ID == "" {
			// What was created cannot be linked or referred to: as for Create, an error of
			// this operation alone, whose resource may exist at the target.
			res.Err = &Error{Op: "bulk", Method: res.Method, Path: path, Status: res.Status, Err: ErrNoID}
			failed++
			continue
		}
		if res.Status >= 200 && res.Status < 300 {
			res.Err = nil
			if res.Method == http.MethodPost {
				resolved[res.BulkID] = res.ID
			}
			continue
		}
		e := &Error{Op: "bulk", Method: res.Method, Path: path, Status: res.Status}
		e.ScimType, e.Detail = ParseErrorBody(r.Response)
		if e.Status == 0 {
			e.Err = ErrNotJSON
		}
		res.Err = e
		failed++
	}
	return failed
}

// parseBulkStatus reads "201", 201 or {"code":"201"}.
func parseBulkStatus(raw json.RawMessage) int {
	var s flexString
	if json.Unmarshal(raw, &s) == nil && s != "" {
		n, _ := strconv.Atoi(strings.TrimSpace(string(s)))
		return n
	}
	var obj struct {
		Code flexString `json:"code"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		n, _ := strconv.Atoi(string(obj.Code))
		return n
	}
	return 0
}

func idFromLocation(loc string) string {
	loc = strings.TrimRight(loc, "/")
	if i := strings.LastIndex(loc, "/"); i >= 0 && i < len(loc)-1 {
		return loc[i+1:]
	}
	return ""
}
