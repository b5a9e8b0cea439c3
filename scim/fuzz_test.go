package scim_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/scimtest"
)

// FuzzFilterEq: whatever the value, the filter built by Eq parses as one
// comparison of that attribute with exactly that value (no injection).
func FuzzFilterEq(f *testing.F) {
	for _, s := range []string{"", `a"b`, `a\b`, `\"`, `") or (userName pr`, "\x00\n\t", "ünï", "\u2028", "]", "a eq \"b\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if !utf8.ValidString(v) {
			t.Skip("SCIM filter values are JSON strings: valid UTF-8 only")
		}
		flt := scim.Eq("userName", v)
		parsed, err := scimtest.ParseFilter(string(flt))
		if err != nil {
			t.Fatalf("ParseFilter(%q): %v", flt, err)
		}
		if parsed.Op != "eq" || parsed.Attr != "userName" || parsed.Value != v {
			t.Fatalf("Eq(%q) parsed as %s", v, parsed)
		}
		both, err := scimtest.ParseFilter(string(scim.And(scim.Eq("a", v), scim.Or(scim.Sw("b", v), scim.Pr("c")))))
		if err != nil || both.Op != "and" || both.Left.Value != v || both.Right.Op != "or" || both.Right.Left.Value != v {
			t.Fatalf("And/Or with %q parsed as %v, %v", v, both, err)
		}
	})
}

// FuzzParseErrorBody: any body parses without panic, and the detail stays
// bounded.
func FuzzParseErrorBody(f *testing.F) {
	for _, s := range []string{
		`{"status":"409","scimType":"uniqueness","detail":"x"}`, `{"status":400}`, `{"status":{"code":1}}`,
		`<html>`, ``, `null`, `[]`, `{"detail":12}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, detail := scim.ParseErrorBody(body)
		if len(detail) > 1024 {
			t.Fatalf("detail of %d bytes", len(detail))
		}
	})
}

// FuzzServiceProviderConfig: discovery bodies of any shape never panic
// and give non-negative limits.
func FuzzServiceProviderConfig(f *testing.F) {
	for _, s := range []string{
		`{"patch":{"supported":"True"},"bulk":{"supported":1,"maxOperations":"50"},"filter":{"supported":0}}`,
		`{"bulk":{"maxOperations":-1,"maxPayloadSize":1e300}}`, `{"patch":true}`, `{}`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var spc scim.ServiceProviderConfig
		if err := json.Unmarshal(body, &spc); err != nil {
			return
		}
		if spc.Bulk.MaxOperations < 0 || spc.Bulk.MaxPayloadSize < 0 || spc.Filter.MaxResults < 0 {
			t.Fatalf("negative limits from %q: %+v", body, spc)
		}
	})
}

// FuzzParseRetryAfter: never negative, never more than MaxRetryAfter.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"120", "-1", now.Add(time.Minute).Format(http.TimeFormat), "Mon, 99 Foo", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := scim.ParseRetryAfter(v, now)
		if d < 0 || d > scim.MaxRetryAfter {
			t.Fatalf("ParseRetryAfter(%q) = %s", v, d)
		}
	})
}

// FuzzResponses: a client reading arbitrary response bodies and statuses
// returns a *scim.Error or a result, never panics, and never puts the
// body into the error string.
func FuzzResponses(f *testing.F) {
	for _, tc := range []struct {
		status int
		body   string
	}{
		{200, `{"id":"1"}`}, {200, `{"id":12}`}, {200, `{"Resources":[{"id":"a"}],"totalResults":"1"}`},
		{201, `{}`}, {200, `<html>`}, {409, `{"scimType":"uniqueness","detail":"secret-detail"}`},
		{200, `{"Operations":[{"status":"201","bulkId":"op0","location":"/Users/x"}]}`},
		{200, `{"Operations":[{"status":{"code":"409"},"bulkId":"op0","response":{"detail":"d"}}]}`},
	} {
		f.Add(tc.status, tc.body)
	}
	srv := scimtest.NewServer(scimtest.Options{})
	f.Cleanup(srv.Close)
	c, err := scim.New(scim.Options{BaseURL: srv.URL, HTTPClient: srv.Client(), MaxResponseBytes: 1 << 16, Timeout: 5 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, body string) {
		if status < 200 || status > 599 || status == 204 || status == 304 {
			t.Skip()
		}
		srv.ClearFaults()
		srv.AddFault(scimtest.Fault{Status: status, Body: body, ContentType: "application/scim+json"})
		ctx := t.Context()
		var errs []error
		_, err := c.Get(ctx, scim.Users, "x")
		errs = append(errs, err)
		_, err = c.Create(ctx, scim.Users, map[string]any{"userName": "u"})
		errs = append(errs, err)
		_, err = c.Search(ctx, scim.Users, "")
		errs = append(errs, err)
		_, err = c.Bulk(ctx, []scim.BulkOperation{{Method: "POST", Kind: scim.Users, Data: map[string]any{"userName": "u"}}}, 0)
		errs = append(errs, err)
		for _, err := range errs {
			if err == nil {
				continue
			}
			if !strings.HasPrefix(err.Error(), "scim: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			if len(body) >= 8 && strings.Contains(err.Error(), body) {
				t.Fatalf("error %q contains the response body", err)
			}
		}
	})
}
