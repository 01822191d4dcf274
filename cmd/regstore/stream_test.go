package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore/regstoretest"
	"github.com/regstore/regstore/usage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDuJSONStreamedBytes: du --json, written one repository at a time, is
// byte for byte what encoding the whole report writes; so is an empty tree's.
func TestDuJSONStreamedBytes(t *testing.T) {
	tr := buildTree(t)
	require.NoError(t, regstoretest.HalfWrittenUpload(tr.root, "team/app", "5b3a1c2d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", time.Now()))
	for _, dir := range []string{tr.dir, emptyTree(t)} {
		s, closeStore, err := openStore(dir, false)
		require.NoError(t, err)
		want, err := usage.Measure(context.Background(), s)
		closeStore()
		require.NoError(t, err)
		var buf bytes.Buffer
		require.NoError(t, writeJSON(&buf, want))
		assert.Equal(t, buf.String(), runOK(t, "du", "--json", dir))
	}
	// Named repositories: the same shape, only those.
	out := runOK(t, "du", "--json", tr.dir, "team/app/web")
	var back usage.Report
	require.NoError(t, json.Unmarshal([]byte(out), &back))
	require.Len(t, back.Repositories, 1)
	var buf bytes.Buffer
	require.NoError(t, writeJSON(&buf, &back))
	assert.Equal(t, buf.String(), out)
}

// TestInspectJSONStreamedBytes: inspect --json, written one repository and
// one blob at a time, is byte for byte what encoding the whole document
// (with its maps, whose keys encoding/json sorts) writes.
func TestInspectJSONStreamedBytes(t *testing.T) {
	tr := buildTree(t)
	// team/app-x sorts before team/app/web by bytes, after it in the
	// catalog: the JSON object's keys are in byte order, as encoding/json
	// writes a map's.
	r, err := tr.root.Repository("team/app-x")
	require.NoError(t, err)
	regstoretest.Push(t, r, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(9, 64)}}, "x")
	for _, dir := range []string{tr.dir, emptyTree(t)} {
		out := runOK(t, "inspect", "--json", dir)
		dec := json.NewDecoder(bytes.NewReader([]byte(out)))
		var doc struct {
			Repositories map[string]*repoOutput  `json:"repositories"`
			Blobs        map[digest.Digest]int64 `json:"blobs"`
		}
		require.NoError(t, dec.Decode(&doc))
		var buf bytes.Buffer
		require.NoError(t, writeJSON(&buf, &doc))
		assert.Equal(t, buf.String(), out)
		if dir == tr.dir {
			assert.Len(t, doc.Repositories, 3)
		}
	}
}

// emptyTree is a registry rootdirectory holding an empty layout.
func emptyTree(t *testing.T) string {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "docker", "registry", "v2"), 0o777))
	return dir
}
