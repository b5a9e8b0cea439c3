package scimtest

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

func writeOAuthError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]any{"error": code})
}

// serveToken is the OAuth2 token endpoint (RFC 6749 §4.3, §4.4).
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, body []byte) {
	o := s.opts.OAuth
	if o == nil {
		writeError(w, errorf(http.StatusNotFound, "", "no such endpoint"))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: form-encoded credentials inside basic auth.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}

	recorded := url.Values{}
	for k, vs := range form {
		switch k {
		case "client_secret", "password":
			recorded[k] = []string{"REDACTED"}
		default:
			recorded[k] = append([]string(nil), vs...)
		}
	}
	if basic {
		recorded.Set("client_id", id)
	}
	s.statMu.Lock()
	s.tokenReqs = append(s.tokenReqs, recorded)
	s.statMu.Unlock()

	if id != o.ClientID || secret != o.ClientSecret {
		w.Header().Set("WWW-Authenticate", `Basic realm="scimtest"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	switch form.Get("grant_type") {
	case "client_credentials":
	case "password":
		if o.Username == "" || form.Get("username") != o.Username || form.Get("password") != o.Password {
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	for k, want := range o.RequiredParams {
		got := form[k]
		if len(got) != len(want) {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request")
			return
		}
		for i := range want {
			if got[i] != want[i] {
				writeOAuthError(w, http.StatusBadRequest, "invalid_request")
				return
			}
		}
	}
	ttl := o.TokenTTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	s.statMu.Lock()
	s.tokenSeq++
	tok := "scimtest-" + strconv.Itoa(s.tokenSeq) + "-" + hex.EncodeToString(b[:])
	s.tokens[tok] = time.Now().Add(ttl)
	s.statMu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int(ttl / time.Second),
	})
}

// TokenRequests returns the parameters of every token request received,
// with client_secret and password replaced by "REDACTED".
func (s *Server) TokenRequests() []url.Values {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	out := make([]url.Values, len(s.tokenReqs))
	for i, v := range s.tokenReqs {
		c := url.Values{}
		for k, vs := range v {
			c[k] = append([]string(nil), vs...)
		}
		out[i] = c
	}
	return out
}

// IssuedTokens returns how many access tokens the endpoint has issued.
func (s *Server) IssuedTokens() int {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	return s.tokenSeq
}

// RevokeTokens invalidates every issued access token, so the next SCIM
// request with one of them answers 401.
func (s *Server) RevokeTokens() {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	s.tokens = map[string]time.Time{}
}
