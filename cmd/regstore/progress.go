package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
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
	status  string // latest status, set by the command
	drawn   string // what the line shows now; "" when nothing is drawn
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
	p.status = status
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
