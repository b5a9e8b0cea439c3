package secretref_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/secretref"
)

func TestResolve(t *testing.T) {
	t.Setenv("SECRETREF_TEST_TOKEN", "tok-from-env")
	t.Setenv("SECRETREF_TEST_EMPTY", "")
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("tok-from-file\r\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ ref, want, err string }{
		{ref: "env:SECRETREF_TEST_TOKEN", want: "tok-from-env"},
		{ref: "file:" + file, want: "tok-from-file"},
		{ref: "literal-value", want: "literal-value"},
		{ref: "env:SECRETREF_TEST_UNSET", err: "environment variable SECRETREF_TEST_UNSET is not set"},
		{ref: "env:SECRETREF_TEST_EMPTY", err: "environment variable SECRETREF_TEST_EMPTY is not set"},
		{ref: "file:" + empty, err: "secret file " + empty + " is empty"},
		{ref: "file:" + filepath.Join(dir, "missing"), err: "secret file " + filepath.Join(dir, "missing") + ": no such file or directory"},
	} {
		got, err := secretref.Resolve(c.ref)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("Resolve(%q) = %q, %v; want error %q", c.ref, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", c.ref, got, err, c.want)
		}
	}
}

// TestResolveErrorsNeverHoldTheSecret: a file that cannot be read is named, its content
// (were any read) never.
func TestResolveErrorsNeverHoldTheSecret(t *testing.T) {
	dir := t.TempDir()
	_, err := secretref.Resolve("file:" + dir) // a directory: read fails
	if err == nil || strings.Contains(err.Error(), "tok") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Resolve of a directory = %v; want an error naming the path", err)
	}
}
