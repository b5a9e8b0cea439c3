package worker

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/codec"
	"github.com/scimsync/scimsync/secretref"
)

// payloadCodec returns the codec the configuration asks for, nil when payload encryption
// is off (no SCIMSYNC_CODEC_KEYS).
func (c Config) payloadCodec() (*codec.Codec, error) {
	if strings.TrimSpace(c.CodecKeys) == "" {
		return nil, nil
	}
	keys, err := codec.ParseKeys(c.CodecKeys, secretref.Resolve)
	if err != nil {
		return nil, fmt.Errorf("SCIMSYNC_CODEC_KEYS: %w", err)
	}
	return codec.New(keys...)
}

// Converters returns what reads the payloads and failures that workers of cfg write to
// Temporal (histories, for `starter history`): the codec's converters when cfg has keys,
// else the defaults, which cannot open a sealed payload.
func Converters(cfg Config) (converter.DataConverter, converter.FailureConverter, error) {
	pc, err := cfg.payloadCodec()
	if err != nil {
		return nil, nil, err
	}
	if pc == nil {
		dc := converter.GetDefaultDataConverter()
		return dc, temporal.GetDefaultFailureConverter(), nil
	}
	dc := codec.DataConverter(pc)
	return dc, codec.FailureConverter(dc), nil
}

// useCodec makes the client encrypt payloads and failures when the configuration has keys;
// without keys it still reads the summaries the workers sealed, as codec.SealedText (so
// that a starter without the keys describes schedules, see codec.KeylessDataConverter).
func useCodec(cfg Config, opts *client.Options) error {
	pc, err := cfg.payloadCodec()
	if err != nil {
		return err
	}
	if pc == nil {
		opts.DataConverter = codec.KeylessDataConverter()
		return nil
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

// plaintextOffHost reports whether the worker would send payloads in clear to a Temporal
// that is not on this machine: no codec keys, and an address other than localhost,
// 127.0.0.0/8 or ::1. Names are not resolved: only those spellings count as local.
func plaintextOffHost(cfg Config) bool {
	return strings.TrimSpace(cfg.CodecKeys) == "" && !isLoopbackAddress(cfg.TemporalAddress)
}

// isLoopbackAddress reports whether host:port (or a bare host) names this machine.
func isLoopbackAddress(hostport string) bool {
	host := strings.TrimSpace(hostport)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" || strings.EqualFold(host, "localhost") { // ":7233" dials this machine
		return true
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().IsLoopback()
	}
	return false
}

// warnIfPlaintextOffHost logs, once at start, that payloads go unencrypted to a remote
// Temporal. It names the address only: there is no key to show.
func warnIfPlaintextOffHost(cfg Config, logger *slog.Logger) {
	if !plaintextOffHost(cfg) {
		return
	}
	logger.Warn("payloads go to Temporal unencrypted: the names and e-mail addresses of the directory "+
		"will be readable in its workflow histories; set SCIMSYNC_CODEC_KEYS to encrypt them (see docs/reliability.md, Payload encryption)",
		"temporal", cfg.TemporalAddress)
}
