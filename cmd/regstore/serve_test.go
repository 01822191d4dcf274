package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs runServe in the background and returns its base URL and
// a function that stops it (as SIGINT does) and returns its error.
func startServe(t *testing.T, cfg serveConfig, stderr io.Writer) (string, func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	cfg.addr = "127.0.0.1:0"
	cfg.ready = func(a net.Addr) { addrs <- a }
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, cfg, io.Discard, stderr) }()
	select {
	case a := <-addrs:
		stop := func() error { cancel(); return <-done }
		t.Cleanup(func() { cancel() })
		return "http://" + a.String(), stop
	case err := <-done:
		cancel()
		t.Fatalf("runServe: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("runServe did not start")
	}
	return "", nil
}

func TestServe(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root") // created by serve
	var stderr syncBuffer
	base, stop := startServe(t, serveConfig{root: root, log: &stderr, opts: server.Options{}.AllDeletes()}, &stderr)

	content := []byte("served")
	d := digest.FromBytes(content)
	resp, err := http.Post(base+"/v2/app/blobs/uploads/?digest="+d.String(), "application/octet-stream", bytes.NewReader(content))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	resp, err = http.Get(base + "/v2/app/blobs/" + d.String())
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, content, got)

	require.NoError(t, stop(), "graceful shutdown")
	log := stderr.String()
	assert.Contains(t, log, `POST "/v2/app/blobs/uploads/?digest=`+d.String()+`" 201 0`)
	assert.Contains(t, log, `GET "/v2/app/blobs/`+d.String()+`" 200 6`)
	assert.Contains(t, log, "shutting down")

	// Written as the registry writes it, under docker/registry/v2.
	b, err := os.ReadFile(filepath.Join(root, "docker/registry/v2/blobs/sha256", d.Encoded()[:2], d.Encoded(), "data"))
	require.NoError(t, err)
	assert.Equal(t, content, b)
	link, err := os.ReadFile(filepath.Join(root, "docker/registry/v2/repositories/app/_layers/sha256", d.Encoded(), "link"))
	require.NoError(t, err)
	assert.Equal(t, d.String(), string(link))
}

func TestServeReadOnly(t *testing.T) {
	root := t.TempDir()
	d, err := regstore.OpenDir(root)
	require.NoError(t, err)
	s, err := regstore.Open(d)
	require.NoError(t, err)
	repo, err := s.Repository("app")
	require.NoError(t, err)
	b, err := repo.PutBlob(strings.NewReader("kept"), "", -1)
	require.NoError(t, err)
	require.NoError(t, d.Close())

	base, stop := startServe(t, serveConfig{root: root, opts: server.Options{ReadOnly: true}}, io.Discard)
	resp, err := http.Post(base+"/v2/app/blobs/uploads/", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	resp, err = http.Get(base + "/v2/app/blobs/" + b.Digest().String())
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, stop())

	// Read-only does not create a missing root.
	err = runServe(context.Background(), serveConfig{root: filepath.Join(root, "missing"), addr: "127.0.0.1:0",
		opts: server.Options{ReadOnly: true}}, io.Discard, io.Discard)
	assert.Error(t, err)
}

func TestServeUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "--tls-cert", "x.pem", t.TempDir()}, &stdout, &stderr)
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr.String(), "--tls-cert and --tls-key go together")
	stdout.Reset()
	assert.Equal(t, exitOK, run(context.Background(), []string{"serve", "--help"}, &stdout, &stderr))
	assert.Contains(t, stdout.String(), "no authentication")
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))

	base, stop := startServe(t, serveConfig{root: filepath.Join(dir, "root"), certFile: certFile, keyFile: keyFile}, io.Discard)
	base = strings.Replace(base, "http://", "https://", 1)
	pool := x509.NewCertPool()
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool.AddCert(cert)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(base + "/v2/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, stop())
}
