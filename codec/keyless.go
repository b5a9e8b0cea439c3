package codec

import (
	"errors"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// SealedText is what a client without the keys reads for a sealed payload that it decodes
// as a string.
const SealedText = "<sealed>"

// ErrSealed is the error of decoding a sealed payload without the keys into anything but a
// string.
var ErrSealed = errors.New("the payload is sealed by the payload codec: set SCIMSYNC_CODEC_KEYS to read it")

// KeylessDataConverter is the default data converter for a client that has no keys while
// the workers may seal payloads. It differs from the default in one thing: a sealed payload
// decoded as a string reads as SealedText instead of failing. The Go SDK decodes the
// summary of a schedule's action as a string whenever it describes the schedule, so without
// it a client without the keys could not describe a schedule whose summary the workers
// sealed. Everything else it cannot open still fails, with ErrSealed; it encodes as the
// default converter does.
func KeylessDataConverter() converter.DataConverter {
	return converter.NewCompositeDataConverter(
		converter.NewNilPayloadConverter(),
		converter.NewByteSlicePayloadConverter(),
		converter.NewProtoJSONPayloadConverter(),
		converter.NewProtoPayloadConverter(),
		converter.NewJSONPayloadConverter(),
		sealedPayloads{},
	)
}

// sealedPayloads is the payload converter of MetadataEncoding for clients without the keys.
type sealedPayloads struct{}

func (sealedPayloads) Encoding() string { return MetadataEncoding }

// ToPayload converts nothing: the composite converter then tries the next one, and no
// value of this converter's encoding is ever written without the codec.
func (sealedPayloads) ToPayload(any) (*commonpb.Payload, error) { return nil, nil }

func (sealedPayloads) FromPayload(_ *commonpb.Payload, valuePtr any) error {
	s, ok := valuePtr.(*string)
	if !ok {
		return fmt.Errorf("decode into %T: %w", valuePtr, ErrSealed)
	}
	*s = SealedText
	return nil
}

func (sealedPayloads) ToString(*commonpb.Payload) string { return SealedText }
