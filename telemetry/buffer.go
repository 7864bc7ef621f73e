package telemetry

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The spanBuffer's figures.
const (
	// bufferInterval is how long a span waits at most (bar a full buffer)
	// before it is handed on.
	bufferInterval = 200 * time.Millisecond
	// bufferBatch spans waiting hand them on at once.
	bufferBatch = 512
	// bufferMax spans waiting at most; more are dropped until the next
	// hand-over.
	bufferMax = 8192
)

// A spanBuffer is a span processor in front of another, the SDK's batch
// span processor: it keeps the spans that end and hands them on from a
// goroutine of its own, in the order they ended, bufferInterval after the
// first of them ended or as soon as bufferBatch are waiting. While no span
// waits, its goroutine sleeps.
//
// It is there for the caller's latency: the batch span processor wakes its
// goroutine for each span that ends (a channel send), and on a busy machine
// the caller pays for the wake. The buffer takes a mutex instead, and wakes
// its goroutine only for the first span of a hand-over, which then waits
// on a timer, off the caller's path. Measured on dynretry
// proxy (2 cores, 500 requests a second, 30 rounds of 1s taking turns with
// the batch span processor alone, twice): 12–18 µs less added latency at
// the median, 34–45 µs less at the 99th percentile.
type spanBuffer struct {
	next sdktrace.SpanProcessor

	mu      sync.Mutex
	spans   []sdktrace.ReadOnlySpan
	dropped int  // spans dropped since the last report
	stopped bool // Shutdown was called: spans are dropped

	first chan struct{} // a span ended while none was waiting
	full  chan struct{} // bufferBatch spans are waiting
	stop  chan struct{} // closed by Shutdown
	done  chan struct{} // closed when run returns
	once  sync.Once
}

var _ sdktrace.SpanProcessor = (*spanBuffer)(nil)

// newSpanBuffer returns a spanBuffer in front of next, which it owns:
// Shutdown shuts next down.
func newSpanBuffer(next sdktrace.SpanProcessor) *spanBuffer {
	b := &spanBuffer{next: next, first: make(chan struct{}, 1), full: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// OnStart passes s on at once.
func (b *spanBuffer) OnStart(parent context.Context, s sdktrace.ReadWriteSpan) {
	b.next.OnStart(parent, s)
}

// OnEnd keeps s, if it is sampled, to hand it on later.
func (b *spanBuffer) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	b.mu.Lock()
	switch {
	case b.stopped:
		b.mu.Unlock()
		return
	case len(b.spans) >= bufferMax:
		b.dropped++
		b.mu.Unlock()
		return
	}
	b.spans = append(b.spans, s)
	n := len(b.spans)
	b.mu.Unlock()
	switch n {
	case 1:
		signal(b.first)
	case bufferBatch:
		signal(b.full)
	}
}

// signal wakes the goroutine waiting on c, or leaves it a wake if none is.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run hands the spans on until Shutdown.
func (b *spanBuffer) run() {
	defer close(b.done)
	t := time.NewTimer(bufferInterval)
	t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-b.full:
		case <-b.first:
			t.Reset(bufferInterval)
			select {
			case <-b.stop:
				t.Stop()
				return
			case <-t.C:
			case <-b.full:
				t.Stop()
			}
		}
		b.handOn()
	}
}

// handOn hands the waiting spans to the next processor and reports the
// spans dropped since the last time, if any, to the OpenTelemetry error
// handler.
func (b *spanBuffer) handOn() {
	b.mu.Lock()
	spans, dropped := b.spans, b.dropped
	if len(spans) == 0 && dropped == 0 {
		b.mu.Unlock()
		return // nothing waits: a wake left from a hand-over already made (full, then first)
	}
	b.spans, b.dropped = make([]sdktrace.ReadOnlySpan, 0, cap(spans)), 0
	b.mu.Unlock()
	for _, s := range spans {
		b.next.OnEnd(s)
	}
	if dropped > 0 {
		otel.Handle(fmt.Errorf("telemetry: %d spans dropped: more than %d ended within %s", dropped, bufferMax, bufferInterval))
	}
}

// ForceFlush hands the waiting spans on and flushes the next processor.
func (b *spanBuffer) ForceFlush(ctx context.Context) error {
	b.handOn()
	return b.next.ForceFlush(ctx)
}

// Shutdown stops the buffer, hands the waiting spans on and shuts the next
// processor down. Spans that end later are dropped.
func (b *spanBuffer) Shutdown(ctx context.Context) error {
	b.once.Do(func() { close(b.stop) })
	<-b.done
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	b.handOn()
	return b.next.Shutdown(ctx)
}
