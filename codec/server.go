package codec

import (
	"net/http"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// DefaultUIOrigin is the origin of the Temporal Web UI of a local dev server.
const DefaultUIOrigin = "http://localhost:8233"

// maxRequestBytes bounds the bodies Handler reads.
const maxRequestBytes = 8 << 20

// Handler serves c as a codec server: POST <prefix>/encode and POST <prefix>/decode take and
// return {"payloads": [...]} in the protobuf JSON form, as the Temporal Web UI
// (--ui-codec-endpoint, or the namespace's codec endpoint setting) and the CLI
// (--codec-endpoint) send them. Browsers from origins may call it: preflight requests are
// answered and the CORS headers set, credentials included (the UI can forward its user's
// token). "*" allows any origin; no origins allow none but same-origin and non-browser
// clients.
//
// Anyone who can reach the handler can decrypt what they hold of the history: serve it on a
// private address only.
func Handler(c *Codec, origins ...string) http.Handler {
	inner := converter.NewPayloadCodecHTTPHandler(c)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && allowed(origins, origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization")
			h.Set("Access-Control-Max-Age", "600")
			h.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST, OPTIONS")
			http.Error(w, "codec server: use POST .../encode or .../decode", http.StatusMethodNotAllowed)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
		inner.ServeHTTP(w, r)
	})
}

func allowed(origins []string, origin string) bool {
	return slices.ContainsFunc(origins, func(o string) bool {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		return o == "*" || strings.EqualFold(o, origin)
	})
}
