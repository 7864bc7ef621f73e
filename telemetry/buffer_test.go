package telemetry

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// recorder is a span processor that records the spans it is given; gate,
// when not nil, holds each OnEnd until it is closed.
type recorder struct {
	mu       sync.Mutex
	names    []string
	gate     chan struct{}
	shutdown bool
}

func (r *recorder) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (r *recorder) OnEnd(s sdktrace.ReadOnlySpan) {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names = append(r.names, s.Name())
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.names)
}

func (r *recorder) ForceFlush(context.Context) error { return nil }

func (r *recorder) Shutdown(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shutdown = true
	return nil
}

// bufferedTracer returns a tracer whose spans go through a spanBuffer to
// next, and the buffer.
func bufferedTracer(next sdktrace.SpanProcessor, o ...sdktrace.TracerProviderOption) (*spanBuffer, func(name string)) {
	b := newSpanBuffer(next)
	tp := sdktrace.NewTracerProvider(append(o, sdktrace.WithSpanProcessor(b))...)
	tracer := tp.Tracer("test")
	return b, func(name string) {
		_, s := tracer.Start(context.Background(), name)
		s.End()
	}
}

// Ended spans are handed on every bufferInterval, in order, not as each
// ends; ForceFlush and Shutdown hand on what waits, and later spans are
// dropped.
func TestSpanBuffer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := new(recorder)
		b, end := bufferedTracer(rec)
		end("a")
		end("b")
		synctest.Wait()
		assert.Zero(t, rec.count(), "not handed on as it ends")
		time.Sleep(bufferInterval)
		synctest.Wait()
		assert.Equal(t, []string{"a", "b"}, rec.names)

		end("c")
		require.NoError(t, b.ForceFlush(context.Background()))
		assert.Equal(t, 3, rec.count(), "ForceFlush hands on at once")

		end("d")
		require.NoError(t, b.Shutdown(context.Background()))
		assert.Equal(t, []string{"a", "b", "c", "d"}, rec.names)
		assert.True(t, rec.shutdown)
		end("late")
		time.Sleep(2 * bufferInterval)
		assert.Equal(t, 4, rec.count(), "dropped after Shutdown")
		require.NoError(t, b.Shutdown(context.Background()), "twice")
	})
}

// An idle buffer does not tick: the first span that ends in an empty
// buffer is handed on bufferInterval later, wherever the clock stands.
func TestSpanBufferIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := new(recorder)
		b, end := bufferedTracer(rec)
		defer b.Shutdown(context.Background())
		time.Sleep(3*bufferInterval + bufferInterval/4) // idle, off any tick
		end("a")
		time.Sleep(bufferInterval - time.Millisecond)
		synctest.Wait()
		assert.Zero(t, rec.count(), "not before bufferInterval")
		end("b")
		time.Sleep(time.Millisecond)
		synctest.Wait()
		assert.Equal(t, []string{"a", "b"}, rec.names, "bufferInterval after the first")
	})
}

// bufferBatch spans waiting are handed on at once.
func TestSpanBufferBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := new(recorder)
		b, end := bufferedTracer(rec)
		defer b.Shutdown(context.Background())
		for range bufferBatch {
			end("s")
		}
		synctest.Wait()
		assert.Equal(t, bufferBatch, rec.count(), "no time passed")
	})
}

// Unsampled spans are not kept.
func TestSpanBufferUnsampled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := new(recorder)
		b, end := bufferedTracer(rec, sdktrace.WithSampler(sdktrace.NeverSample()))
		end("s")
		require.NoError(t, b.Shutdown(context.Background()))
		assert.Zero(t, rec.count())
	})
}

// While the next processor cannot keep up, at most bufferMax spans wait;
// the ones dropped are reported to the OpenTelemetry error handler.
func TestSpanBufferBound(t *testing.T) {
	var mu sync.Mutex
	var reported []error
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, err)
	}))
	t.Cleanup(func() { otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {})) })

	rec := &recorder{gate: make(chan struct{})}
	b, end := bufferedTracer(rec)
	const n = 3 * bufferMax
	for range n {
		end("s")
	}
	b.mu.Lock()
	waiting := len(b.spans)
	b.mu.Unlock()
	assert.LessOrEqual(t, waiting, bufferMax)
	close(rec.gate)
	require.NoError(t, b.Shutdown(context.Background()))
	handed := rec.count()
	assert.Less(t, handed, n, "some were dropped")
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, reported)
	assert.Regexp(t, `^telemetry: \d+ spans dropped: more than 8192 ended within 200ms$`, reported[0].Error())
}
