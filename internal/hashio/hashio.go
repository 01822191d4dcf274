// Package hashio copies content while hashing it, through pooled buffers.
// It is shared by the model's blob writes and the tools' verified copies;
// it is not a general I/O library.
package hashio

import (
	"hash"
	"io"
	"sync"
)

// BufferSize is the chunk size of blob writes and re-hashes.
const BufferSize = 1 << 20

// buffers recycles the buffers of Copy: a check or an import hashes
// thousands of blobs, and a fresh 1 MiB buffer for each costs more than
// hashing a small one.
var buffers = sync.Pool{New: func() any { b := make([]byte, BufferSize); return &b }}

// Copy copies r to w and feeds every byte to each hash, in one pass. It
// returns the number of bytes copied.
func Copy(w io.Writer, r io.Reader, hashes ...hash.Hash) (int64, error) {
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	buf := *bp
	var n int64
	for {
		k, rerr := r.Read(buf)
		if k > 0 {
			for _, h := range hashes {
				h.Write(buf[:k])
			}
			if _, err := w.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}
