package dockerv1

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"io"
)

// gzipBlockSize is the size of the blocks a layer is compressed in. It
// is part of the output format: changing it changes every digest.
const gzipBlockSize = 1 << 20

// blockGzip writes one gzip member, deterministically, compressing fixed
// blocks of gzipBlockSize bytes in parallel. Each block is a deflate
// segment of its own, ended by a sync flush (the last one by the final
// block), with the previous block's last 32 KiB as its dictionary, so the
// bytes do not depend on how many goroutines compress: the header has no
// name, no comment, mtime 0 and OS 255; the trailer is the CRC-32 and
// size of the whole input.
type blockGzip struct {
	w     io.Writer
	level int
	sem   chan struct{} // shared: at most cap(sem) blocks compress at once
	limit int           // blocks in flight for this writer

	buf    []byte
	dict   []byte
	queue  []*gzBlock
	crc    uint32
	size   uint32
	err    error
	header bool
}

type gzBlock struct {
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func newBlockGzip(w io.Writer, level int, sem chan struct{}) *blockGzip {
	return &blockGzip{w: w, level: level, sem: sem, limit: min(cap(sem), 4) + 1,
		buf: make([]byte, 0, gzipBlockSize)}
}

func (g *blockGzip) Write(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	g.crc = crc32.Update(g.crc, crc32.IEEETable, p)
	g.size += uint32(len(p))
	n := len(p)
	for len(p) > 0 {
		// A full block is compressed once more input follows it: the
		// last block, full or not, is the final one.
		if len(g.buf) == gzipBlockSize {
			if err := g.submit(false); err != nil {
				return 0, err
			}
		}
		k := min(len(p), gzipBlockSize-len(g.buf))
		g.buf = append(g.buf, p[:k]...)
		p = p[k:]
	}
	return n, nil
}

// submit starts compressing the current block and writes out the
// finished blocks beyond the in-flight limit, in order.
func (g *blockGzip) submit(final bool) error {
	data, dict := g.buf, g.dict
	if len(data) >= 32<<10 {
		g.dict = data[len(data)-32<<10:]
	} else {
		g.dict = append(append([]byte(nil), dict...), data...)
		if len(g.dict) > 32<<10 {
			g.dict = g.dict[len(g.dict)-32<<10:]
		}
	}
	g.buf = make([]byte, 0, gzipBlockSize)
	b := &gzBlock{done: make(chan struct{})}
	g.queue = append(g.queue, b)
	g.sem <- struct{}{}
	go func() {
		defer func() { <-g.sem; close(b.done) }()
		fw, err := flate.NewWriterDict(&b.out, g.level, dict)
		if err == nil {
			_, err = fw.Write(data)
		}
		if err == nil {
			if final {
				err = fw.Close()
			} else {
				err = fw.Flush()
			}
		}
		b.err = err
	}()
	for len(g.queue) > g.limit || final && len(g.queue) > 0 {
		if err := g.writeOldest(); err != nil {
			return err
		}
	}
	return nil
}

func (g *blockGzip) writeOldest() error {
	b := g.queue[0]
	<-b.done
	g.queue = g.queue[1:]
	if g.err == nil && b.err != nil {
		g.err = b.err
	}
	if g.err == nil && !g.header {
		g.header = true
		xfl := byte(0)
		switch g.level {
		case gzip.BestSpeed:
			xfl = 4
		case gzip.BestCompression:
			xfl = 2
		}
		_, g.err = g.w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255})
	}
	if g.err == nil {
		_, g.err = g.w.Write(b.out.Bytes())
	}
	return g.err
}

// Close compresses the last block and writes the trailer.
func (g *blockGzip) Close() error {
	if g.err != nil {
		g.drain()
		return g.err
	}
	if err := g.submit(true); err != nil {
		g.drain()
		return err
	}
	var t [8]byte
	binary.LittleEndian.PutUint32(t[:4], g.crc)
	binary.LittleEndian.PutUint32(t[4:], g.size)
	_, g.err = g.w.Write(t[:])
	return g.err
}

// drain waits for the blocks still compressing.
func (g *blockGzip) drain() {
	for _, b := range g.queue {
		<-b.done
	}
	g.queue = nil
}
