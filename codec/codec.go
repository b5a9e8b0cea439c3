// Package codec encrypts the payloads scimsync writes to Temporal history: workflow and
// activity inputs and results, signals, queries, heartbeats, memos and, with the failure
// converter of this package, the messages and stack traces of failures. It is a
// converter.PayloadCodec using AES-256-GCM; the id of the key that sealed a payload travels
// in its metadata ("encryption-key-id"), so keys can be rotated: the first key of a Codec
// seals, every key opens.
//
// Workflow IDs, search attributes, activity and workflow type names and task queues are
// never encrypted by a codec (Temporal needs them in clear): keep personal data out of them.
//
// The package does no I/O of its own except reading key references (env:, file:) in
// ParseKeys. Handler serves the codec to the Temporal Web UI and CLI (a "codec server").
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Metadata of an encrypted payload.
const (
	// MetadataEncoding is the "encoding" of a payload this codec sealed.
	MetadataEncoding = "binary/encrypted"
	// MetadataKeyID names the key that sealed the payload.
	MetadataKeyID = "encryption-key-id"
)

// KeySize is the size of an AES-256 key in bytes.
const KeySize = 32

// Key is one named AES-256 key.
type Key struct {
	// ID names the key in the metadata of the payloads it seals. It is not secret; keep it
	// short and never reuse it for another key.
	ID string
	// Secret is the 32-byte key.
	Secret []byte
}

// Codec seals payloads with its first key and opens payloads sealed with any of its keys.
// Payloads that it did not seal (whose encoding is not MetadataEncoding) pass Decode
// unchanged, so history written before encryption was turned on stays readable. It is safe
// for concurrent use.
type Codec struct {
	current string
	aeads   map[string]cipher.AEAD
	ids     []string
}

// New returns a Codec with keys, the first of which seals. It fails when there is no key,
// a key is not 32 bytes, or two keys share an id.
func New(keys ...Key) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("codec: at least one key is required")
	}
	c := &Codec{current: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, k := range keys {
		if k.ID == "" || strings.ContainsAny(k.ID, "=, \t\n") {
			return nil, fmt.Errorf("codec: key id %q: use letters, digits, '-', '_' or '.'", k.ID)
		}
		if _, dup := c.aeads[k.ID]; dup {
			return nil, fmt.Errorf("codec: key id %s given twice", k.ID)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("codec: key %s has %d bytes, want %d (AES-256)", k.ID, len(k.Secret), KeySize)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("codec: key %s: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("codec: key %s: %w", k.ID, err)
		}
		c.aeads[k.ID] = aead
		c.ids = append(c.ids, k.ID)
	}
	return c, nil
}

// KeyIDs returns the ids of the codec's keys, the sealing one first.
func (c *Codec) KeyIDs() []string { return append([]string(nil), c.ids...) }

// Encode seals every payload with the current key. The whole payload (its metadata and
// data) is encrypted; the key id is bound to the ciphertext as additional data.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.aeads[c.current]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("codec: marshal payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return payloads, fmt.Errorf("codec: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(MetadataEncoding),
				MetadataKeyID:              []byte(c.current),
			},
			Data: aead.Seal(nonce, nonce, plain, []byte(c.current)),
		}
	}
	return out, nil
}

// Decode opens the payloads this codec sealed and returns the others unchanged. A payload
// sealed with a key the codec does not hold, or altered, is an error naming the key id.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != MetadataEncoding {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead, ok := c.aeads[id]
		if !ok {
			return payloads, fmt.Errorf("codec: payload sealed with key %q, which is not configured (have %s)", id, strings.Join(c.ids, ", "))
		}
		data := p.GetData()
		if len(data) < aead.NonceSize() {
			return payloads, fmt.Errorf("codec: payload sealed with key %s is truncated", id)
		}
		plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], []byte(id))
		if err != nil {
			return payloads, fmt.Errorf("codec: payload sealed with key %s cannot be opened (wrong key or altered data)", id)
		}
		var dec commonpb.Payload
		if err := proto.Unmarshal(plain, &dec); err != nil {
			return payloads, fmt.Errorf("codec: payload sealed with key %s: %w", id, err)
		}
		out[i] = &dec
	}
	return out, nil
}

// DataConverter returns the default data converter with c applied to every payload.
func DataConverter(c *Codec) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter returns a failure converter that moves the message and stack trace of
// every failure into an encoded attribute sealed through dc, so history shows
// "Encoded failure" instead of error texts.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})
}

// ParseKeys reads a key list: comma-separated id=reference pairs, the sealing key first,
// e.g. "2025-06=env:SCIMSYNC_KEY_2025_06,2024-01=file:/run/secrets/key-2024-01". resolve
// turns a reference into its value (nil: the value is the reference itself); the value is
// the 32-byte key in base64 (standard or URL alphabet, padded or not) or hex. Errors name
// the key id, never the key.
func ParseKeys(spec string, resolve func(ref string) (string, error)) ([]Key, error) {
	var keys []Key
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, ref, ok := strings.Cut(item, "=")
		id = strings.TrimSpace(id)
		if !ok || id == "" || strings.TrimSpace(ref) == "" {
			return nil, fmt.Errorf("codec: key list entry %d: want id=reference (e.g. k1=env:SCIMSYNC_CODEC_KEY_1)", len(keys)+1)
		}
		value := strings.TrimSpace(ref)
		if resolve != nil {
			v, err := resolve(value)
			if err != nil {
				return nil, fmt.Errorf("codec: key %s: %w", id, err)
			}
			value = strings.TrimSpace(v)
		}
		secret, err := decodeKey(value)
		if err != nil {
			return nil, fmt.Errorf("codec: key %s: %w", id, err)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	if len(keys) == 0 {
		return nil, errors.New("codec: the key list is empty")
	}
	return keys, nil
}

// decodeKey reads a 32-byte key written in hex or base64.
func decodeKey(s string) ([]byte, error) {
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("decodes to %d bytes, want %d (generate one with: openssl rand -base64 32)", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("is neither base64 nor hex of 32 bytes (generate one with: openssl rand -base64 32)")
}
