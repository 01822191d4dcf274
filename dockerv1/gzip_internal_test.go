package dockerv1

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func blockGzipBytes(t *testing.T, data []byte, level, par int, chunk int) []byte {
	t.Helper()
	var out bytes.Buffer
	g := newBlockGzip(&out, level, make(chan struct{}, par))
	for p := data; len(p) > 0; {
		k := min(chunk, len(p))
		_, err := g.Write(p[:k])
		require.NoError(t, err)
		p = p[k:]
	}
	require.NoError(t, g.Close())
	return out.Bytes()
}

// TestBlockGzip: the output is a valid gzip stream of the input, the same
// bytes whatever the parallelism and write sizes, and for one block the
// very bytes compress/gzip writes.
func TestBlockGzip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	text := make([]byte, 3*gzipBlockSize+gzipBlockSize/2)
	for i := range text {
		if rng.IntN(8) == 0 {
			text[i] = byte(rng.Uint32())
		} else {
			text[i] = "abcdefgh \n"[rng.IntN(10)]
		}
	}
	for _, n := range []int{0, 1, 100 << 10, gzipBlockSize - 1, gzipBlockSize, gzipBlockSize + 1, len(text)} {
		data := text[:n]
		for _, level := range []int{gzip.BestSpeed, gzip.BestCompression} {
			if level != gzip.BestSpeed && n > gzipBlockSize+1 {
				continue // slow, and nothing new
			}
			want := blockGzipBytes(t, data, level, 1, 1<<30)
			for _, par := range []int{2, 8} {
				for _, chunk := range []int{4096, 1000003}[par/8:] {
					assert.Equal(t, want, blockGzipBytes(t, data, level, par, chunk), "n=%d level=%d par=%d chunk=%d", n, level, par, chunk)
				}
			}
			zr, err := gzip.NewReader(bytes.NewReader(want))
			require.NoError(t, err)
			got, err := io.ReadAll(zr)
			require.NoError(t, err, "n=%d level=%d", n, level)
			assert.Equal(t, data, got, "n=%d level=%d: round trip", n, level)
			assert.Equal(t, byte(255), want[9], "OS byte")

			if n <= gzipBlockSize {
				var ref bytes.Buffer
				zw, _ := gzip.NewWriterLevel(&ref, level)
				_, _ = zw.Write(data)
				require.NoError(t, zw.Close())
				assert.Equal(t, ref.Bytes(), want, "n=%d level=%d: one block is compress/gzip's output", n, level)
			}
		}
	}
	// The gzip program agrees.
	if _, err := exec.LookPath("gzip"); err == nil {
		cmd := exec.Command("gzip", "-dc")
		cmd.Stdin = bytes.NewReader(blockGzipBytes(t, text, gzip.BestSpeed, 2, 65536))
		out, err := cmd.Output()
		require.NoError(t, err)
		assert.Equal(t, text, out)
	}
}
