package retry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
)

// An Outcome is what one attempt produced: an HTTP response (Status,
// Header, Body) or an error that kept a response from arriving (Err).
type Outcome struct {
	// Provider says whose dialect the response speaks. The zero value means
	// "detect it from the headers and body" (see DetectProvider).
	Provider Provider
	// Status is the HTTP status code, or 0 when no response was received.
	Status int
	// Header holds the response headers. It may be nil.
	Header http.Header
	// Body is the response body or a prefix of it. Only failures are read;
	// it may be nil.
	Body []byte
	// Err is the error that ended the attempt without a response, or nil.
	Err error
}

// Failed reports whether the outcome is a failure: an error, or a status
// of 400 or more. A zero Outcome is a success.
func (o Outcome) Failed() bool { return o.Err != nil || o.Status >= 400 }

// A ResponseError is a failed HTTP response returned as an error. Return one
// from the function given to Do to have the failure classified by its
// status, headers and body.
type ResponseError struct {
	Status int
	Header http.Header
	Body   []byte
}

func (e *ResponseError) Error() string {
	return "retry: HTTP " + strconv.Itoa(e.Status) + " " + http.StatusText(e.Status)
}

// OutcomeOf describes the result of a function given to Do. A nil error is a
// success; a *ResponseError anywhere in err's chain is classified as that
// response; any other error is classified as an error without a response
// (context errors as canceled or timeout, everything else as timeout or
// connection; see Classify).
func OutcomeOf(err error) Outcome {
	var re *ResponseError
	if errors.As(err, &re) {
		return Outcome{Status: re.Status, Header: re.Header, Body: re.Body}
	}
	return Outcome{Err: err}
}

// classifyError classifies an error that kept a response from arriving.
func classifyError(err error) Class {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout
	case errors.As(err, &ne) && ne.Timeout():
		return Timeout
	}
	return Connection
}
