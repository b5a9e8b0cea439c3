// Package secretref resolves secret references, the way every setting that holds a secret
// is written (a provider's token, the installation secret, codec keys, a Temporal API key):
// "env:NAME" reads the environment variable NAME, "file:/path" reads the file, anything
// else is the literal value. It stands alone so that every binary that takes a secret (the
// worker, the starter, scimtest-server) resolves it the same way without importing the
// sync's packages.
package secretref

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Resolve turns a secret reference into the secret: "env:NAME" reads the environment
// variable NAME, "file:/path" reads the file (trailing newlines dropped), anything else is
// the literal value. Errors name the reference, never the value.
func Resolve(ref string) (string, error) {
	switch {
	case strings.HasPrefix(ref, "env:"):
		name := strings.TrimPrefix(ref, "env:")
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		return v, nil
	case strings.HasPrefix(ref, "file:"):
		path := strings.TrimPrefix(ref, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				return "", fmt.Errorf("secret file %s: %w", path, pe.Err)
			}
			return "", fmt.Errorf("secret file %s: cannot read", path)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", path)
		}
		return v, nil
	}
	return ref, nil
}
