package dockerv1

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
)

// Compression is how a layer file is compressed, found by sniffing its
// first bytes (docker-registry never recorded it).
type Compression string

// The compressions of v1 layer files.
const (
	Uncompressed Compression = "none"
	Gzip         Compression = "gzip"
	Bzip2        Compression = "bzip2"
	XZ           Compression = "xz"
)

// Sniff returns the compression whose magic number b starts with.
func Sniff(b []byte) Compression {
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(b, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return XZ
	case bytes.HasPrefix(b, []byte("BZh")):
		return Bzip2
	}
	return Uncompressed
}

// XZDecoder decompresses an xz stream. The Go standard library has none;
// the default, ExecXZ, runs the xz program.
type XZDecoder func(r io.Reader) (io.ReadCloser, error)

// ErrNoXZ is returned for an xz layer when no decoder is available: no xz
// program on PATH and no ConvertOptions.XZ. It wraps errors.ErrUnsupported.
var ErrNoXZ = fmt.Errorf("xz-compressed layer: no xz decoder (install xz, or set an XZDecoder): %w", errors.ErrUnsupported)

// ExecXZ decompresses r with "xz -dc". Close waits for the program and
// returns its failure, if any.
func ExecXZ(r io.Reader) (io.ReadCloser, error) {
	prog, err := exec.LookPath("xz")
	if err != nil {
		return nil, ErrNoXZ
	}
	cmd := exec.Command(prog, "-dc")
	cmd.Stdin = r
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &cmdReader{ReadCloser: out, cmd: cmd, stderr: &stderr}, nil
}

type cmdReader struct {
	io.ReadCloser
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	once   sync.Once
	err    error
}

func (c *cmdReader) Close() error {
	c.once.Do(func() {
		// Drain, so that xz is not killed by a broken pipe before it
		// reports a damaged stream.
		_, _ = io.Copy(io.Discard, c.ReadCloser)
		if err := c.cmd.Wait(); err != nil {
			c.err = fmt.Errorf("xz: %v: %s", err, strings.TrimSpace(c.stderr.String()))
		}
	})
	return c.err
}

// decompress returns the tar stream of a layer file read from br.
func decompress(br *bufio.Reader, xz XZDecoder) (Compression, io.ReadCloser, error) {
	magic, _ := br.Peek(6)
	c := Sniff(magic)
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return c, nil, err
		}
		return c, zr, nil
	case Bzip2:
		return c, io.NopCloser(bzip2.NewReader(br)), nil
	case XZ:
		if xz == nil {
			xz = ExecXZ
		}
		rc, err := xz(br)
		return c, rc, err
	}
	return c, io.NopCloser(br), nil
}

// scanLayer reads a layer file to its end: the raw bytes go through sum,
// the decompressed tar through out, and the tar is parsed to count its
// entries. It returns the compression and the number of entries.
// first is called at the first entry.
func scanLayer(raw io.Reader, sum *checksummer, out io.Writer, xz XZDecoder, first func() error) (Compression, int, error) {
	br := bufio.NewReaderSize(io.TeeReader(raw, sum), 256<<10)
	c, dec, err := decompress(br, xz)
	if err != nil {
		return c, 0, fmt.Errorf("%s layer: %w", c, err)
	}
	defer dec.Close()
	tee := io.TeeReader(dec, out)
	tr := tar.NewReader(tee)
	n := 0
	for {
		_, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return c, n, fmt.Errorf("%s layer: tar: %w", c, err)
		}
		n++
		if n == 1 {
			if err := first(); err != nil {
				return c, n, err
			}
		}
	}
	// What follows the end-of-archive marker (record padding) is part of
	// the tar stream, and so of its diff_id.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return c, n, fmt.Errorf("%s layer: %w", c, err)
	}
	if err := dec.Close(); err != nil {
		return c, n, fmt.Errorf("%s layer: %w", c, err)
	}
	// Bytes after the compressed stream still count for the checksum.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return c, n, err
	}
	return c, n, sum.check()
}
