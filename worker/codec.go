package worker

import (
	"fmt"
	"net/http"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/codec"
)

// payloadCodec returns the codec the configuration asks for, nil when payload encryption
// is off (no SCIMSYNC_CODEC_KEYS).
func (c Config) payloadCodec() (*codec.Codec, error) {
	if strings.TrimSpace(c.CodecKeys) == "" {
		return nil, nil
	}
	keys, err := codec.ParseKeys(c.CodecKeys, activities.ResolveSecret)
	if err != nil {
		return nil, fmt.Errorf("SCIMSYNC_CODEC_KEYS: %w", err)
	}
	return codec.New(keys...)
}

// useCodec makes the client encrypt payloads and failures when the configuration has keys.
func useCodec(cfg Config, opts *client.Options) error {
	pc, err := cfg.payloadCodec()
	if err != nil || pc == nil {
		return err
	}
	opts.DataConverter = codec.DataConverter(pc)
	opts.FailureConverter = codec.FailureConverter(opts.DataConverter)
	return nil
}

// scheduleDataConverter is the data converter of the schedules' arguments: the codec's
// when the configuration has keys, nil (the default) otherwise.
func scheduleDataConverter(cfg Config) converter.DataConverter {
	if pc, err := cfg.payloadCodec(); err == nil && pc != nil {
		return codec.DataConverter(pc)
	}
	return nil
}

// codecServer serves the codec for the Web UI and the CLI under /codec (POST /codec/decode,
// /codec/encode) when the configuration has keys; nil otherwise.
func codecServer(cfg Config) (http.Handler, error) {
	pc, err := cfg.payloadCodec()
	if err != nil || pc == nil {
		return nil, err
	}
	return http.StripPrefix("/codec", codec.Handler(pc, strings.Split(cfg.CodecOrigins, ",")...)), nil
}
