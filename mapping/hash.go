package mapping

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// HashedUserID returns the hex SHA-256 of "<id>-<secret>": the default
// externalId of a user, and the value mappings see as user.uid. It is stable
// for an installation and does not reveal the secret.
func HashedUserID(id, secret string) string {
	sum := sha256.Sum256([]byte(id + "-" + secret))
	return hex.EncodeToString(sum[:])
}

// Hash returns the hex SHA-256 of the canonical JSON of payload: object keys
// sorted, no insignificant space, no HTML escaping. Equal payloads hash
// equally, whatever their map order, and int64(3) hashes like float64(3), so a
// payload decoded back from JSON keeps its hash. It fails only for values
// encoding/json cannot encode (NaN, channels), which MapUser and MapGroup
// never return.
func Hash(payload map[string]any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(payload); err != nil {
		return "", fmt.Errorf("mapping: hash payload: %w", err)
	}
	sum := sha256.Sum256(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return hex.EncodeToString(sum[:]), nil
}
