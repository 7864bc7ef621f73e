package proxy

import (
	"bytes"
	"io"
	"net/http"
)

// keepBody reads r's body into memory when it has at most max bytes, so
// that a retry can send it again (r.GetBody), and sets r.ContentLength to
// its length. A body known to be larger is left to stream through once; so
// is one of unknown length that turns out larger, with what was read put
// back in front of the rest. It returns the error of a body that could not
// be read.
func keepBody(r *http.Request, max int64) error {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 || r.ContentLength > max {
		return nil
	}
	var b []byte
	if r.ContentLength > 0 {
		b = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return err
		}
	} else {
		var err error
		if b, err = io.ReadAll(io.LimitReader(r.Body, max+1)); err != nil {
			return err
		}
		if int64(len(b)) > max {
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
			return nil
		}
	}
	r.ContentLength = int64(len(b))
	r.TransferEncoding = nil
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return nil
}
