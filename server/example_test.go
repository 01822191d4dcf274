package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore/server"
)

// A handler over a fresh in-memory store: push a blob over HTTP, find it
// in the store.
func ExampleNewMemory() {
	store, h := server.NewMemory(server.Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()

	content := "hello, registry"
	d := digest.FromString(content)
	resp, err := http.Post(srv.URL+"/v2/demo/blobs/uploads/?digest="+d.String(), "application/octet-stream", strings.NewReader(content))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("Location") == "/v2/demo/blobs/"+d.String())

	repo, err := store.Repository("demo")
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := repo.Blob(d)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(b.Size(), "bytes in the store")
	// Output:
	// 201 Created true
	// 15 bytes in the store
}

// Deletes are off by default, as in the registry.
func ExampleNew() {
	_, h := server.NewMemory(server.Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()

	req, _ := http.NewRequest("DELETE", srv.URL+"/v2/demo/manifests/latest", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status)
	fmt.Print(string(body))
	// Output:
	// 405 Method Not Allowed
	// {"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}
}
