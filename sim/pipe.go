package sim

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// errBodyClosed is returned by reads after the client closed the body.
var errBodyClosed = errors.New("sim: read on closed response body")

// pipe carries a response body from the handler to the client. Unlike
// io.Pipe, writes never wait for the reader: they are buffered without
// bound, as a socket buffer would hold a small response, so a handler
// finishes even when the client never reads the body. A reader waits on a
// channel, which synctest counts as durably blocked.
//
// One goroutine writes, one reads at a time; close and abort may be called
// from any goroutine.
type pipe struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	werr   error         // set when the writer is done: io.EOF or why the body broke
	rerr   error         // set when reads must fail now: body closed or context done
	notify chan struct{} // signals the reader that something changed
}

func newPipe() *pipe { return &pipe{notify: make(chan struct{}, 1)} }

// signal wakes the reader, if it waits. p.mu must be held.
func (p *pipe) signal() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// Write buffers b. It fails with io.ErrClosedPipe once the writer is closed,
// the reader closed the body or the pipe was aborted.
func (p *pipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr != nil || p.rerr != nil {
		return 0, io.ErrClosedPipe
	}
	p.buf.Write(b)
	p.signal()
	return len(b), nil
}

// Read returns buffered data; once the buffer is empty and the writer is
// done, the writer's error (io.EOF for a clean end). After abort or
// closeRead it fails at once, even with data buffered.
func (p *pipe) Read(b []byte) (int, error) {
	for {
		p.mu.Lock()
		switch {
		case p.rerr != nil:
			p.mu.Unlock()
			return 0, p.rerr
		case p.buf.Len() > 0:
			n, _ := p.buf.Read(b)
			p.mu.Unlock()
			return n, nil
		case p.werr != nil:
			p.mu.Unlock()
			return 0, p.werr
		}
		p.mu.Unlock()
		<-p.notify
	}
}

// closeWrite ends the body: reads return err after the buffered data, or
// io.EOF when err is nil. Only the first call has an effect.
func (p *pipe) closeWrite(err error) {
	if err == nil {
		err = io.EOF
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr == nil {
		p.werr = err
		p.signal()
	}
}

// abort makes reads fail with err at once and writes fail. Only the first
// call to abort or closeRead has an effect.
func (p *pipe) abort(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rerr == nil {
		p.rerr = err
		p.buf.Reset()
		p.signal()
	}
}

// closeRead is abort for a body the client closed.
func (p *pipe) closeRead() { p.abort(errBodyClosed) }
