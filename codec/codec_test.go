package codec_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/scimsync/scimsync/codec"
)

func newKey(t *testing.T, id string) codec.Key {
	t.Helper()
	k := codec.Key{ID: id, Secret: make([]byte, codec.KeySize)}
	if _, err := rand.Read(k.Secret); err != nil {
		t.Fatal(err)
	}
	return k
}

func mustCodec(t *testing.T, keys ...codec.Key) *codec.Codec {
	t.Helper()
	c, err := codec.New(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type person struct {
	UserName string `json:"userName"`
	Email    string `json:"email"`
}

func TestRoundTripHidesTheData(t *testing.T) {
	c := mustCodec(t, newKey(t, "k1"))
	dc := codec.DataConverter(c)
	in := person{UserName: "ada", Email: "ada@example.test"}
	p, err := dc.ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Metadata["encoding"]); got != codec.MetadataEncoding {
		t.Errorf("encoding = %q, want %q", got, codec.MetadataEncoding)
	}
	if got := string(p.Metadata[codec.MetadataKeyID]); got != "k1" {
		t.Errorf("key id = %q, want k1", got)
	}
	raw, _ := protojson.Marshal(p)
	for _, secret := range []string{"ada@example.test", "json/plain", "userName"} {
		if bytes.Contains(p.Data, []byte(secret)) || bytes.Contains(raw, []byte(secret)) {
			t.Errorf("encoded payload shows %q: %s", secret, raw)
		}
	}
	var out person
	if err := dc.FromPayload(p, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("decoded %+v, want %+v", out, in)
	}
	// A random nonce per payload: the same value never encrypts the same way twice.
	p2, _ := dc.ToPayload(in)
	if bytes.Equal(p.Data, p2.Data) {
		t.Error("two encodings of one value are identical")
	}
}

func TestRotation(t *testing.T) {
	old, cur := newKey(t, "2024"), newKey(t, "2025")
	before := mustCodec(t, old)
	sealedOld, err := before.Encode([]*commonpb.Payload{plain("written in 2024")})
	if err != nil {
		t.Fatal(err)
	}
	after := mustCodec(t, cur, old)
	if ids := after.KeyIDs(); strings.Join(ids, ",") != "2025,2024" {
		t.Errorf("KeyIDs = %v", ids)
	}
	sealedNew, err := after.Encode([]*commonpb.Payload{plain("written in 2025")})
	if err != nil {
		t.Fatal(err)
	}
	if id := string(sealedNew[0].Metadata[codec.MetadataKeyID]); id != "2025" {
		t.Errorf("new payloads sealed with %q, want the first key 2025", id)
	}
	got, err := after.Decode(append(sealedOld, sealedNew...))
	if err != nil {
		t.Fatalf("decode old and new: %v", err)
	}
	if string(got[0].Data) != "written in 2024" || string(got[1].Data) != "written in 2025" {
		t.Errorf("decoded %q, %q", got[0].Data, got[1].Data)
	}
	// Without the old key its payloads cannot be read, and the error says which key is missing.
	_, err = mustCodec(t, cur).Decode(sealedOld)
	if err == nil || !strings.Contains(err.Error(), `"2024"`) {
		t.Errorf("decode without the old key: %v, want an error naming key 2024", err)
	}
}

func plain(s string) *commonpb.Payload {
	return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(s)}
}

func TestDecodeRejectsWrongKeysAndTampering(t *testing.T) {
	k := newKey(t, "k")
	c := mustCodec(t, k)
	sealed, _ := c.Encode([]*commonpb.Payload{plain(`"secret"`)})

	impostor := newKey(t, "k") // same id, other key
	if _, err := mustCodec(t, impostor).Decode(sealed); err == nil || !strings.Contains(err.Error(), "cannot be opened") {
		t.Errorf("decode with another key of the same id: %v", err)
	}
	tampered := &commonpb.Payload{Metadata: sealed[0].Metadata, Data: bytes.Clone(sealed[0].Data)}
	tampered.Data[len(tampered.Data)-1] ^= 1
	if _, err := c.Decode([]*commonpb.Payload{tampered}); err == nil {
		t.Error("decoded a tampered payload")
	}
	relabelled := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(codec.MetadataEncoding), codec.MetadataKeyID: []byte("other")}, Data: sealed[0].Data}
	if _, err := mustCodec(t, k, codec.Key{ID: "other", Secret: k.Secret}).Decode([]*commonpb.Payload{relabelled}); err == nil {
		t.Error("decoded a payload whose key id was changed (the id is bound as additional data)")
	}
	short := &commonpb.Payload{Metadata: sealed[0].Metadata, Data: []byte{1, 2}}
	if _, err := c.Decode([]*commonpb.Payload{short}); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("decode of a truncated payload: %v", err)
	}
}

func TestDecodePassesUnencryptedPayloads(t *testing.T) {
	c := mustCodec(t, newKey(t, "k"))
	p := plain(`{"a":1}`)
	got, err := c.Decode([]*commonpb.Payload{p})
	if err != nil || got[0] != p {
		t.Errorf("Decode(plain) = %v, %v; want the payload unchanged", got, err)
	}
}

func TestNewValidatesKeys(t *testing.T) {
	k := newKey(t, "k")
	for name, keys := range map[string][]codec.Key{
		"none":      nil,
		"short key": {{ID: "k", Secret: make([]byte, 16)}},
		"no id":     {{Secret: k.Secret}},
		"bad id":    {{ID: "a=b", Secret: k.Secret}},
		"duplicate": {k, k},
	} {
		if _, err := codec.New(keys...); err == nil {
			t.Errorf("%s: New succeeded", name)
		} else if strings.Contains(err.Error(), string(k.Secret)) {
			t.Errorf("%s: error shows the key", name)
		}
	}
}

func TestParseKeys(t *testing.T) {
	k := newKey(t, "x").Secret
	b64, hx := base64.StdEncoding.EncodeToString(k), hex.EncodeToString(k)
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte(base64.RawURLEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CODEC_TEST_KEY", b64)
	resolve := func(ref string) (string, error) {
		switch {
		case strings.HasPrefix(ref, "env:"):
			v, ok := os.LookupEnv(strings.TrimPrefix(ref, "env:"))
			if !ok {
				return "", errors.New("not set")
			}
			return v, nil
		case strings.HasPrefix(ref, "file:"):
			b, err := os.ReadFile(strings.TrimPrefix(ref, "file:"))
			return string(b), err
		}
		return ref, nil
	}
	keys, err := codec.ParseKeys(fmt.Sprintf(" new=env:CODEC_TEST_KEY, mid=file:%s,old=%s ,", file, hx), resolve)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || keys[0].ID != "new" || keys[1].ID != "mid" || keys[2].ID != "old" {
		t.Fatalf("keys = %+v", keys)
	}
	for _, key := range keys {
		if !bytes.Equal(key.Secret, k) {
			t.Errorf("key %s decoded wrong", key.ID)
		}
	}

	for spec, want := range map[string]string{
		"":                     "empty",
		"k1":                   "want id=reference",
		"=abc":                 "want id=reference",
		"k1=env:NOT_SET_EVER":  "key k1: not set",
		"k1=" + b64[:20]:       "key k1: decodes to 15 bytes",
		"k1=not-a-key!!":       "key k1: is neither base64 nor hex",
		"k1=" + hx[:len(hx)-2]: "key k1: decodes to",
	} {
		_, err := codec.ParseKeys(spec, resolve)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKeys(%q) = %v, want an error containing %q", spec, err, want)
		}
		if err != nil && strings.Contains(err.Error(), b64[:20]) {
			t.Errorf("ParseKeys(%q) error shows key material: %v", spec, err)
		}
	}
}

func TestFailureConverterEncryptsMessages(t *testing.T) {
	c := mustCodec(t, newKey(t, "k"))
	fc := codec.FailureConverter(codec.DataConverter(c))
	err := temporal.NewApplicationError("provider wiki: user ada@example.test refused", "ObjectError")
	f := fc.ErrorToFailure(err)
	if strings.Contains(f.GetMessage(), "ada@example.test") || f.GetMessage() != "Encoded failure" {
		t.Errorf("failure message in clear: %q", f.GetMessage())
	}
	raw, _ := protojson.Marshal(f)
	if bytes.Contains(raw, []byte("ada@example.test")) {
		t.Errorf("failure shows the message: %s", raw)
	}
	if enc := string(f.GetEncodedAttributes().GetMetadata()["encoding"]); enc != codec.MetadataEncoding {
		t.Errorf("encoded attributes have encoding %q", enc)
	}
	back := fc.FailureToError(f)
	if !strings.Contains(back.Error(), "ada@example.test refused") {
		t.Errorf("decoded failure = %v", back)
	}
}

func TestHandlerDecodesForTheWebUI(t *testing.T) {
	c := mustCodec(t, newKey(t, "k"))
	srv := httptest.NewServer(http.StripPrefix("/codec", codec.Handler(c, "http://localhost:8233")))
	defer srv.Close()

	sealed, _ := c.Encode([]*commonpb.Payload{plain(`"hello"`)})
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/codec/decode", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://localhost:8233")
	req.Header.Set("X-Namespace", "default")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("decode: %d %s", resp.StatusCode, out)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://localhost:8233" {
		t.Errorf("Access-Control-Allow-Origin = %q", got)
	}
	var decoded commonpb.Payloads
	if err := protojson.Unmarshal(out, &decoded); err != nil {
		t.Fatalf("decode answer %s: %v", out, err)
	}
	if len(decoded.Payloads) != 1 || string(decoded.Payloads[0].Data) != `"hello"` {
		t.Errorf("decoded %s", out)
	}

	// Encode through the server, decode locally.
	body, _ = protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{plain(`"x"`)}})
	resp, err = http.Post(srv.URL+"/codec/encode", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var encoded commonpb.Payloads
	if err := protojson.Unmarshal(out, &encoded); err != nil || len(encoded.Payloads) != 1 {
		t.Fatalf("encode answer %s: %v", out, err)
	}
	if back, err := c.Decode(encoded.Payloads); err != nil || string(back[0].Data) != `"x"` {
		t.Errorf("round trip through /encode: %v %v", back, err)
	}

	// Preflight from the UI.
	req, _ = http.NewRequest(http.MethodOptions, srv.URL+"/codec/decode", nil)
	req.Header.Set("Origin", "http://localhost:8233")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "X-Namespace") ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}

	// Other origins get no CORS headers, so browsers refuse them the answer.
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/codec/decode", bytes.NewReader(body))
	req.Header.Set("Origin", "https://evil.example")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("foreign origin allowed: %q", got)
	}

	// GET, garbage and wrong keys answer errors.
	resp, _ = http.Get(srv.URL + "/codec/decode")
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d", resp.StatusCode)
	}
	resp, _ = http.Post(srv.URL+"/codec/decode", "application/json", strings.NewReader("{not json"))
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("garbage = %d", resp.StatusCode)
	}
	other, _ := mustCodec(t, newKey(t, "other")).Encode([]*commonpb.Payload{plain(`"y"`)})
	body, _ = protojson.Marshal(&commonpb.Payloads{Payloads: other})
	resp, _ = http.Post(srv.URL+"/codec/decode", "application/json", bytes.NewReader(body))
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), `"other"`) {
		t.Errorf("unknown key = %d %s", resp.StatusCode, msg)
	}
}

func TestConcurrentUse(t *testing.T) {
	c := mustCodec(t, newKey(t, "a"), newKey(t, "b"))
	dc := codec.DataConverter(c)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				want := fmt.Sprintf("v-%d-%d", i, j)
				p, err := dc.ToPayload(want)
				if err != nil {
					t.Error(err)
					return
				}
				var got string
				if err := dc.FromPayload(p, &got); err != nil || got != want {
					t.Errorf("got %q, %v; want %q", got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

var _ converter.PayloadCodec = (*codec.Codec)(nil)
