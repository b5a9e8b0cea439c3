package scimtest_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/scimsync/scimsync/scimtest"
)

func BenchmarkCreateUserHTTP(b *testing.B) {
	srv := scimtest.NewServer(scimtest.Options{MaxLogEntries: -1})
	defer srv.Close()
	for i := 0; b.Loop(); i++ {
		if status, _ := call(b, srv, "POST", "/Users", newUser(fmt.Sprint("u", i))); status != 201 {
			b.Fatal(status)
		}
	}
}

func BenchmarkLookupIn100k(b *testing.B) {
	srv := scimtest.NewServer(scimtest.Options{MaxLogEntries: -1})
	defer srv.Close()
	for i := range 100_000 {
		srv.AddUser(newUser(fmt.Sprintf("user%06d", i)))
	}
	for i := 0; b.Loop(); i++ {
		q := "/Users?filter=" + url.QueryEscape(fmt.Sprintf(`userName eq "USER%06d"`, i%100_000))
		if status, _ := call(b, srv, "GET", q, nil); status != 200 {
			b.Fatal(status)
		}
	}
}
