// Package sealed keeps literal secrets (a provider's token written into its configuration
// instead of an env: or file: reference) encrypted in the database: AES-256-GCM with a key
// derived from the installation secret, which every worker and the starter already have.
// A sealed secret is stored as "sealed:v1:" followed by the base64 of nonce and ciphertext.
package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// Prefix marks a sealed secret.
const Prefix = "sealed:v1:"

// keyInfo separates this key from anything else derived from the installation secret.
const keyInfo = "scimsync sealed secrets v1"

// ErrWrongKey is returned by Open for a secret sealed under another installation secret
// (or altered).
var ErrWrongKey = errors.New("sealed secret cannot be opened: it was sealed under another installation secret")

// IsSealed reports whether s is a sealed secret.
func IsSealed(s string) bool { return strings.HasPrefix(s, Prefix) }

// Box seals and opens secrets under one installation secret.
type Box struct{ aead cipher.AEAD }

// New returns the box of the installation secret.
func New(installationSecret string) (*Box, error) {
	if installationSecret == "" {
		return nil, errors.New("sealed: the installation secret is empty")
	}
	key, err := hkdf.Key(sha256.New, []byte(installationSecret), nil, keyInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal returns the sealed form of secret; every call uses a fresh nonce.
func (b *Box) Seal(secret string) string {
	nonce := make([]byte, b.aead.NonceSize())
	rand.Read(nonce)
	out := b.aead.Seal(nonce, nonce, []byte(secret), []byte(Prefix))
	return Prefix + base64.RawStdEncoding.EncodeToString(out)
}

// Open returns the secret a sealed value holds. Its errors never contain the value.
func (b *Box) Open(value string) (string, error) {
	if !IsSealed(value) {
		return "", errors.New("sealed: not a sealed secret")
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(value, Prefix))
	if err != nil || len(raw) < b.aead.NonceSize()+b.aead.Overhead() {
		return "", errors.New("sealed secret is malformed: seal it again with starter apply")
	}
	n := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, raw[:n], raw[n:], []byte(Prefix))
	if err != nil {
		return "", ErrWrongKey
	}
	return string(plain), nil
}
