package sealed_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/sealed"
)

func TestSealOpen(t *testing.T) {
	box, err := sealed.New("installation-secret-1")
	if err != nil {
		t.Fatal(err)
	}
	const secret = "sup3r-s3cret-token"
	a, b := box.Seal(secret), box.Seal(secret)
	if !sealed.IsSealed(a) || a == b || strings.Contains(a, secret) {
		t.Fatalf("sealed forms %q, %q: want prefixed, different nonces, no plaintext", a, b)
	}
	for _, s := range []string{a, b} {
		if got, err := box.Open(s); err != nil || got != secret {
			t.Errorf("Open = %q, %v; want the secret", got, err)
		}
	}

	other, _ := sealed.New("installation-secret-2")
	if _, err := other.Open(a); !errors.Is(err, sealed.ErrWrongKey) {
		t.Errorf("Open under another installation secret: %v, want ErrWrongKey", err)
	}
	tampered := a[:len(a)-2] + "AA"
	if tampered == a {
		tampered = a[:len(a)-2] + "BB"
	}
	for _, bad := range []string{tampered, sealed.Prefix + "!!", sealed.Prefix, "env:X", secret} {
		got, err := box.Open(bad)
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("Open(%q) = %q, %v; want an error without the secret", bad, got, err)
		}
	}
	if _, err := sealed.New(""); err == nil {
		t.Error("New with an empty installation secret: no error")
	}
}
