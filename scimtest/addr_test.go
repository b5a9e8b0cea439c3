package scimtest_test

import (
	"net"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/scimtest"
)

func TestAddrListensWhereAsked(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := scimtest.NewServer(scimtest.Options{Addr: addr})
	defer s.Close()
	if want := "http://" + addr + "/scim/v2"; s.URL != want {
		t.Fatalf("URL = %s, want %s", s.URL, want)
	}
	resp, err := s.Client().Get(s.URL + "/ServiceProviderConfig")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("discovery at the asked address: %v %v", resp, err)
	}
	resp.Body.Close()

	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), addr) {
			t.Fatalf("a second server on the same address: recover() = %v, want a panic naming the address", r)
		}
	}()
	scimtest.NewServer(scimtest.Options{Addr: addr})
}
