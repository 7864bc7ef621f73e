// Package test holds dynretry's end-to-end tests: the example runner with
// the real openai-go and anthropic-sdk-go clients, dynretry registered as a
// plugin, the simulated provider behind an in-process transport, and the
// telemetry read back from in-memory exporters. Most run inside a
// testing/synctest bubble, so minutes of rate limiting take milliseconds.
//
// The package has no code of its own; see the _test.go files.
package test
