package codec_test

import (
	"errors"
	"testing"

	"go.temporal.io/sdk/converter"

	"github.com/scimsync/scimsync/codec"
)

// TestKeylessDataConverterReadsSealedStringsAsSealed: without the keys a sealed payload
// decodes as a string to codec.SealedText and as anything else to ErrSealed; payloads in
// clear decode and values encode as with the default converter.
func TestKeylessDataConverterReadsSealedStringsAsSealed(t *testing.T) {
	sealing := codec.DataConverter(mustCodec(t, newKey(t, "k1")))
	keyless := codec.KeylessDataConverter()
	p, err := sealing.ToPayload("demo · user · alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := keyless.FromPayload(p, &s); err != nil || s != codec.SealedText {
		t.Errorf("sealed string read without the keys: %q, %v; want %q", s, err, codec.SealedText)
	}
	var in person
	if err := keyless.FromPayload(p, &in); !errors.Is(err, codec.ErrSealed) {
		t.Errorf("sealed struct read without the keys: %+v, %v; want ErrSealed", in, err)
	}
	if got := keyless.ToString(p); got != codec.SealedText {
		t.Errorf("ToString of a sealed payload = %q", got)
	}

	want := person{UserName: "ada", Email: "ada@example.test"}
	plain, err := keyless.ToPayload(want)
	if err != nil {
		t.Fatal(err)
	}
	def, err := converter.GetDefaultDataConverter().ToPayload(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(plain.GetData()) != string(def.GetData()) ||
		string(plain.GetMetadata()[converter.MetadataEncoding]) != converter.MetadataEncodingJSON {
		t.Errorf("keyless encoding %v, want the default's %v", plain, def)
	}
	var got person
	if err := keyless.FromPayload(plain, &got); err != nil || got != want {
		t.Errorf("plain payload read as %+v, %v", got, err)
	}
}
