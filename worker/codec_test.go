package worker

import (
	"strings"
	"testing"
)

func TestCodecKeysConfig(t *testing.T) {
	const key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes, base64
	env := map[string]string{
		"DATABASE_URL": "postgres://x/y", "SCIMSYNC_INSTALLATION_SECRET": "s",
		"SCIMSYNC_CODEC_KEYS": "new=env:CODEC_KEY_NEW, old=" + key,
	}
	t.Setenv("CODEC_KEY_NEW", key)
	cfg, err := ParseConfig(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	pc, err := cfg.payloadCodec()
	if err != nil || pc == nil || strings.Join(pc.KeyIDs(), ",") != "new,old" {
		t.Fatalf("codec = %v, %v", pc, err)
	}
	if h, err := codecServer(cfg); err != nil || h == nil {
		t.Errorf("codec server = %v, %v", h, err)
	}

	env["SCIMSYNC_CODEC_KEYS"] = "k1=env:CODEC_KEY_MISSING"
	if _, err := ParseConfig(nil, func(k string) string { return env[k] }); err == nil ||
		!strings.Contains(err.Error(), "SCIMSYNC_CODEC_KEYS: codec: key k1: environment variable CODEC_KEY_MISSING is not set") {
		t.Errorf("missing key: %v", err)
	}
	env["SCIMSYNC_CODEC_KEYS"] = "k1=" + key[:10]
	if _, err := ParseConfig(nil, func(k string) string { return env[k] }); err == nil || strings.Contains(err.Error(), key[:10]) {
		t.Errorf("short key: %v (must fail without showing the key)", err)
	}

	delete(env, "SCIMSYNC_CODEC_KEYS")
	cfg, err = ParseConfig(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if pc, err := cfg.payloadCodec(); pc != nil || err != nil {
		t.Errorf("without keys: %v, %v", pc, err)
	}
}
