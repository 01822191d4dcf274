package dockerv1_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/dockerv1"
	"github.com/stretchr/testify/require"
)

// benchTree writes a chain of n images with size-byte text-like layers
// (plain tars, as most v1 layers are) under one tag, and returns the
// layer bytes in all.
func benchTree(b testing.TB, n, size int) (*regstore.MemFS, int64) {
	m := regstore.NewMemFS()
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"usr", "lib", "share", "linux", "gnu", "conf", " ", "\n", "=", "/", "0", "1", "x86_64"}
	put := func(p string, data []byte) {
		f, err := m.Create(p)
		require.NoError(b, err)
		_, err = f.Write(data)
		require.NoError(b, err)
		require.NoError(b, f.Commit())
	}
	var total int64
	var ancestry []string
	for i := range n {
		h := sha256.Sum256(fmt.Appendf(nil, "bench %d", i))
		id := hex.EncodeToString(h[:])
		body := make([]byte, 0, size+16)
		for len(body) < size {
			body = append(body, words[rng.IntN(len(words))]...)
			if rng.IntN(16) == 0 {
				body = append(body, byte(rng.Uint32()))
			}
		}
		body = body[:size]
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		require.NoError(b, tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%d", i), Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg}))
		_, _ = tw.Write(body)
		require.NoError(b, tw.Close())
		meta := map[string]any{"id": id, "created": "2014-01-01T00:00:00Z", "container_config": map[string]any{"Cmd": []string{"/bin/sh", "-c", "x"}}}
		if len(ancestry) > 0 {
			meta["parent"] = ancestry[0]
		}
		ancestry = append([]string{id}, ancestry...)
		js, _ := json.Marshal(meta)
		anc, _ := json.Marshal(ancestry)
		put("images/"+id+"/json", js)
		put("images/"+id+"/ancestry", anc)
		put("images/"+id+"/layer", tb.Bytes())
		total += int64(tb.Len())
	}
	put("repositories/library/bench/tag_latest", []byte(ancestry[0]))
	return m, total
}

// BenchmarkConvert: MB/s of v1 layer data (read from a MemFS) converted
// into a Dir store (blobs fsynced), gzip-compressed (the default) and
// stored uncompressed.
func BenchmarkConvert(b *testing.B) {
	m, total := benchTree(b, 8, 4<<20)
	src, err := dockerv1.Open(m, ".")
	require.NoError(b, err)
	for _, uncompressed := range []bool{false, true} {
		b.Run(fmt.Sprintf("uncompressed=%v", uncompressed), func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				b.StopTimer()
				d, err := regstore.OpenDir(b.TempDir())
				require.NoError(b, err)
				dst, err := regstore.Open(d)
				require.NoError(b, err)
				b.StartTimer()
				rep, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{Uncompressed: uncompressed})
				require.NoError(b, err)
				require.Equal(b, 1, rep.Stats.Converted)
				b.StopTimer()
				require.NoError(b, d.Close())
				b.StartTimer()
			}
		})
	}
}
