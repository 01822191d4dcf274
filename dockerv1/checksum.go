package dockerv1

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// checksummer checks the layer bytes against an image's _checksum
// entries of the "sha256:" form, in one pass with the layer's other uses.
//
// docker-registry computed them three ways over its history, and all
// three are accepted:
//
//   - from 0.6 (late 2013) on: SHA-256 of the json file's bytes, a
//     newline, and the layer (the X-Docker-Checksum-Payload the client
//     sends and the registry stores in a JSON list);
//   - in April 2013, stored as one bare string: SHA-256 of the json as
//     Python's json.dumps(sort_keys=True) re-serialized it, a newline, and
//     the layer;
//   - before that: SHA-256 of the layer alone.
//
// The last two are tried only for the bare-string form. "tarsum+sha256:"
// entries (clients before 0.10) are not verified.
type checksummer struct {
	want    map[string]bool
	payload hash.Hash // json, newline, layer
	sorted  hash.Hash // re-serialized json, newline, layer (bare form only)
	layer   hash.Hash // layer alone (bare form only)
}

func newChecksummer(img *Image) *checksummer {
	c := &checksummer{want: map[string]bool{}}
	for _, s := range img.Checksums {
		if hexsum, ok := strings.CutPrefix(strings.TrimSpace(s), "sha256:"); ok {
			c.want[strings.ToLower(hexsum)] = true
		}
	}
	if len(c.want) == 0 {
		return c
	}
	c.payload = sha256.New()
	c.payload.Write(img.JSON)
	c.payload.Write([]byte("\n"))
	if img.bareChecksum {
		c.layer = sha256.New()
		if sorted, err := pyDumpsSorted(img.JSON); err == nil {
			c.sorted = sha256.New()
			c.sorted.Write(sorted)
			c.sorted.Write([]byte("\n"))
		}
	}
	return c
}

// verifiable reports whether the image has a checksum this package checks.
func (c *checksummer) verifiable() bool { return c.payload != nil }

func (c *checksummer) Write(p []byte) (int, error) {
	for _, h := range []hash.Hash{c.payload, c.sorted, c.layer} {
		if h != nil {
			h.Write(p)
		}
	}
	return len(p), nil
}

func (c *checksummer) check() error {
	if c.payload == nil {
		return nil
	}
	p := hex.EncodeToString(c.payload.Sum(nil))
	for _, h := range []hash.Hash{c.payload, c.sorted, c.layer} {
		if h != nil && c.want[hex.EncodeToString(h.Sum(nil))] {
			return nil
		}
	}
	var want []string
	for k := range c.want {
		want = append(want, "sha256:"+k)
	}
	slices.Sort(want)
	return fmt.Errorf("%w: json+layer hash to sha256:%s, _checksum has %s", ErrChecksumMismatch, p, strings.Join(want, ", "))
}

// pyDumpsSorted is the JSON document b as Python 2's
// json.dumps(value, sort_keys=True) writes it: keys sorted, ", " and ": "
// separators, non-ASCII escaped as \uXXXX, numbers as they were written
// (the image jsons of that time hold integers only).
func pyDumpsSorted(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	pyWrite(&out, v)
	return out.Bytes(), nil
}

func pyWrite(out *bytes.Buffer, v any) {
	switch v := v.(type) {
	case nil:
		out.WriteString("null")
	case bool:
		if v {
			out.WriteString("true")
		} else {
			out.WriteString("false")
		}
	case json.Number:
		out.WriteString(v.String())
	case string:
		pyString(out, v)
	case []any:
		out.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				out.WriteString(", ")
			}
			pyWrite(out, e)
		}
		out.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys) // Python 2 sorts unicode keys by code point; equal for UTF-8 byte order
		out.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				out.WriteString(", ")
			}
			pyString(out, k)
			out.WriteString(": ")
			pyWrite(out, v[k])
		}
		out.WriteByte('}')
	}
}

func pyString(out *bytes.Buffer, s string) {
	out.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			out.WriteString(`\"`)
		case r == '\\':
			out.WriteString(`\\`)
		case r == '\n':
			out.WriteString(`\n`)
		case r == '\r':
			out.WriteString(`\r`)
		case r == '\t':
			out.WriteString(`\t`)
		case r == '\b':
			out.WriteString(`\b`)
		case r == '\f':
			out.WriteString(`\f`)
		case r < 0x20:
			fmt.Fprintf(out, `\u%04x`, r)
		case r < utf8.RuneSelf:
			out.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(out, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(out, `\u%04x`, r)
		}
	}
	out.WriteByte('"')
}
