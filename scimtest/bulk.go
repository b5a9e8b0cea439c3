package scimtest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

type bulkOp struct {
	Method  string          `json:"method"`
	BulkID  string          `json:"bulkId"`
	Version string          `json:"version"`
	Path    string          `json:"path"`
	Data    json.RawMessage `json:"data"`
}

type bulkRequest struct {
	Schemas      []string `json:"schemas"`
	FailOnErrors int      `json:"failOnErrors"`
	Operations   []bulkOp `json:"Operations"`
}

// serveBulk executes a BulkRequest (RFC 7644 §3.7) in order, under one
// write lock, resolving bulkId references in paths and data.
func (s *Server) serveBulk(w http.ResponseWriter, body []byte, base string) {
	cfg := s.opts.Config
	if !s.bulkSupported() {
		writeError(w, errorf(http.StatusNotImplemented, "", "bulk is not supported"))
		return
	}
	if len(body) > cfg.bulkMaxPayloadSize() {
		writeError(w, errorf(http.StatusRequestEntityTooLarge, "", "payload exceeds maxPayloadSize %d", cfg.bulkMaxPayloadSize()))
		return
	}
	var req bulkRequest
	if e := decodeBody(body, &req); e != nil {
		writeError(w, e)
		return
	}
	if !containsFold(req.Schemas, schemaBulkRequest) {
		writeError(w, errorf(http.StatusBadRequest, "invalidSyntax", "schemas must be [%s]", schemaBulkRequest))
		return
	}
	if len(req.Operations) > cfg.bulkMaxOperations() {
		writeError(w, errorf(http.StatusRequestEntityTooLarge, "", "more than maxOperations %d", cfg.bulkMaxOperations()))
		return
	}
	resolved := map[string]string{}
	results := make([]any, 0, len(req.Operations))
	failures := 0
	s.mu.Lock()
	for _, op := range req.Operations {
		if req.FailOnErrors > 0 && failures >= req.FailOnErrors {
			break
		}
		res, e := s.bulkOne(op, resolved, base)
		if e != nil {
			failures++
			res["status"] = strconv.Itoa(e.status)
			res["response"] = e.body()
		}
		results = append(results, res)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"schemas": []any{schemaBulkResponse}, "Operations": results})
}

func (s *Server) bulkOne(op bulkOp, resolved map[string]string, base string) (map[string]any, *apiError) {
	method := strings.ToUpper(op.Method)
	res := map[string]any{"method": method}
	if op.BulkID != "" {
		res["bulkId"] = op.BulkID
	}
	parts := strings.Split(strings.Trim(op.Path, "/"), "/")
	if len(parts) == 0 || (parts[0] != "Users" && parts[0] != "Groups") || len(parts) > 2 {
		return res, errorf(http.StatusBadRequest, "invalidPath", "bad operation path")
	}
	kind, id := parts[0], ""
	if len(parts) == 2 {
		id = parts[1]
		if ref, ok := strings.CutPrefix(id, "bulkId:"); ok {
			if id, ok = resolved[ref]; !ok {
				return res, errorf(http.StatusConflict, "invalidValue", "unresolved bulkId")
			}
		}
	}
	var data any
	if len(op.Data) > 0 {
		if err := json.Unmarshal(op.Data, &data); err != nil {
			return res, errorf(http.StatusBadRequest, "invalidSyntax", "data is not valid JSON")
		}
		var unresolved bool
		data = resolveBulkRefs(data, resolved, &unresolved)
		if unresolved {
			return res, errorf(http.StatusConflict, "invalidValue", "unresolved bulkId in data")
		}
	}
	m, _ := data.(map[string]any)
	var out map[string]any
	var e *apiError
	switch {
	case method == http.MethodPost && id == "":
		if op.BulkID == "" {
			return res, errorf(http.StatusBadRequest, "invalidValue", "bulkId is required for POST")
		}
		if out, e = s.createLocked(kind, m, base); e == nil {
			resolved[op.BulkID] = out["id"].(string)
			res["status"] = "201"
		}
	case method == http.MethodPut && id != "":
		out, e = s.replaceLocked(kind, id, m, base)
		res["status"] = "200"
	case method == http.MethodPatch && id != "":
		if s.opts.Config.NoPatch {
			return res, errorf(http.StatusNotImplemented, "", "PATCH is not supported")
		}
		if s.opts.Config.BulkNoPatch {
			return res, errorf(http.StatusBadRequest, "invalidSyntax", "PATCH is not supported in Bulk requests")
		}
		var pr patchRequest
		b, _ := json.Marshal(data)
		if err := json.Unmarshal(b, &pr); err != nil {
			return res, errorf(http.StatusBadRequest, "invalidSyntax", "data is not a PatchOp")
		}
		out, e = s.patchLocked(kind, id, pr, base)
		res["status"] = "200"
	case method == http.MethodDelete && id != "":
		e = s.deleteLocked(kind, id, base)
		res["status"] = "204"
	default:
		return res, errorf(http.StatusBadRequest, "invalidSyntax", "bad method or path")
	}
	if e != nil {
		return res, e
	}
	if out != nil {
		oid := out["id"].(string)
		res["location"] = base + "/" + kind + "/" + oid
		if meta, ok := out["meta"].(map[string]any); ok {
			res["version"] = meta["version"]
		}
	}
	return res, nil
}

func resolveBulkRefs(v any, resolved map[string]string, unresolved *bool) any {
	switch x := v.(type) {
	case string:
		if ref, ok := strings.CutPrefix(x, "bulkId:"); ok {
			if id, ok := resolved[ref]; ok {
				return id
			}
			*unresolved = true
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = resolveBulkRefs(e, resolved, unresolved)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = resolveBulkRefs(e, resolved, unresolved)
		}
		return x
	}
	return v
}
