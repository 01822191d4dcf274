package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/regstore/regstore/migrate"
)

// progressInterval is how often the progress line is redrawn.
const progressInterval = 200 * time.Millisecond

// progress is the one-line status of a long command on standard error: a
// line rewritten in place ("\r", then the text, then "erase to the end of
// the line") at most every progressInterval, and left on screen, with a
// newline, when the command ends. A disabled progress does nothing; every
// method is safe for concurrent use and on a nil *progress.
type progress struct {
	w      io.Writer
	prefix string

	mu      sync.Mutex
	status  string        // latest status, set by the command
	live    func() string // when set, computes the status at each redraw
	drawn   string        // what the line shows now; "" when nothing is drawn
	start   time.Time
	ticker  *time.Ticker
	stop    chan struct{}
	stopped chan struct{}
}

func newProgress(w io.Writer, on bool, prefix string) *progress {
	if !on {
		return nil
	}
	return &progress{w: w, prefix: prefix}
}

// set replaces the status. The first call starts the redrawing.
func (p *progress) set(format string, args ...any) {
	if p == nil {
		return
	}
	status := fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status, p.live = status, nil
	p.startLocked()
}

// setLive makes the status whatever fn returns at each redraw: for counts
// that change far more often than the line is drawn. fn must be safe to
// call from another goroutine.
func (p *progress) setLive(fn func() string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.live = fn
	p.status = fn()
	p.startLocked()
}

func (p *progress) startLocked() {
	if p.ticker == nil {
		p.start = time.Now()
		p.ticker = time.NewTicker(progressInterval)
		p.stop, p.stopped = make(chan struct{}), make(chan struct{})
		p.drawLocked()
		go p.loop(p.ticker, p.stop, p.stopped)
	}
}

func (p *progress) loop(t *time.Ticker, stop, stopped chan struct{}) {
	defer close(stopped)
	for {
		select {
		case <-t.C:
			p.mu.Lock()
			p.drawLocked()
			p.mu.Unlock()
		case <-stop:
			return
		}
	}
}

func (p *progress) line() string {
	if p.live != nil {
		p.status = p.live()
	}
	return fmt.Sprintf("%s: %s [%s]", p.prefix, p.status, time.Since(p.start).Truncate(time.Second))
}

func (p *progress) drawLocked() {
	if p.status == "" {
		return
	}
	line := p.line()
	if line == p.drawn {
		return
	}
	fmt.Fprintf(p.w, "\r%s\x1b[K", line)
	p.drawn = line
}

// pause erases the line, so that a message can be printed; the next tick
// draws it again.
func (p *progress) pause() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn != "" {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = ""
	}
}

// finish stops the redrawing and leaves the last status on its own line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.ticker == nil {
		p.mu.Unlock()
		return
	}
	p.ticker.Stop()
	close(p.stop)
	stopped := p.stopped
	p.ticker = nil
	p.mu.Unlock()
	<-stopped
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r%s\x1b[K\n", p.line())
	p.drawn = ""
}

// isTerminal reports whether w is a terminal: a character device that is
// not the null device (which is one too, and where "2>/dev/null" sends
// standard error).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}

// rate says how fast done (of total, in unit) goes since start, and how
// long the rest takes at that pace: "12.5 MiB/s, 1m20s left". It is ""
// until there is a pace to tell.
func rate(done, total int64, start time.Time, bytes bool) string {
	elapsed := time.Since(start)
	if done <= 0 || elapsed < time.Second {
		return ""
	}
	perSec := float64(done) / elapsed.Seconds()
	var s string
	if bytes {
		s = shortBytes(int64(perSec)) + "/s"
	} else {
		s = fmt.Sprintf("%.0f/s", perSec)
	}
	if total > done {
		left := time.Duration(float64(total-done) / perSec * float64(time.Second))
		s += ", " + left.Round(time.Second).String() + " left"
	}
	return s
}

// copyProgress reports CopyStats on the progress line, and keeps the last
// totals (ImportSkopeoDir returns none).
type copyProgress struct {
	p    *progress
	mu   sync.Mutex
	last migrate.CopyStats
	// start is when the first blob was done: the pace is measured from it.
	start time.Time
	live  bool
}

func (c *copyProgress) update(s migrate.CopyStats) {
	c.mu.Lock()
	c.last = s
	if c.start.IsZero() && s.Blobs+s.BlobsLinked+s.BlobsSkipped > 0 {
		c.start = time.Now()
	}
	live := c.live
	c.live = true
	c.mu.Unlock()
	if !live {
		c.p.setLive(c.status)
	}
}

// status is "blobs 12/130, 60.0 MiB/240.0 MiB, 80.0 MiB/s, 3s left; 2
// manifests, 1 tag".
func (c *copyProgress) status() string {
	c.mu.Lock()
	s, start := c.last, c.start
	c.mu.Unlock()
	done := s.Blobs + s.BlobsLinked + s.BlobsSkipped
	doneBytes := s.Bytes + s.BytesLinked + s.BytesSkipped
	line := fmt.Sprintf("blobs %d/%d, %s/%s", done, s.TotalBlobs, shortBytes(doneBytes), shortBytes(s.TotalBytes))
	if !start.IsZero() {
		if r := rate(doneBytes, s.TotalBytes, start, true); r != "" {
			line += ", " + r
		}
	}
	return line + fmt.Sprintf("; %s, %s", count(s.Manifests+s.ManifestsSkipped, "manifest"), count(s.Tags, "tag"))
}
