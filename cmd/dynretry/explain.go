package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"time"

	"github.com/autopack/dynretry/retry"
	"github.com/spf13/cobra"
)

// explanation is the JSON object explain prints; its field names are a
// contract (see the README).
type explanation struct {
	Class      *retry.Class `json:"class"`
	Retry      bool         `json:"retry"`
	HintMS     *int64       `json:"hint_ms"`
	HintSource retry.Source `json:"hint_source"`
	DelayMinMS int64        `json:"delay_min_ms"`
	DelayMaxMS int64        `json:"delay_max_ms"`
	DelayMS    int64        `json:"delay_ms"`
	Reason     string       `json:"reason"`
}

type explainFlags struct {
	attempt  int
	provider string
	now      string
	seed     uint64
}

func newExplain() *cobra.Command {
	var f explainFlags
	cmd := &cobra.Command{
		Use:   "explain [FILE]",
		Short: "Show what dynretry would do with one raw HTTP response",
		Long: `Reads one raw HTTP response (status line, headers, blank line, body) from FILE
or stdin and prints, as one JSON object, what dynretry decides after it under
the default settings: class, retry, hint_ms, hint_source, delay_min_ms,
delay_max_ms, delay_ms, reason.

delay_ms is the middle of the delay range unless --seed draws it at random.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			if len(args) == 1 {
				file, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer file.Close()
				in = file
			}
			e, err := explain(in, f, time.Now())
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetEscapeHTML(false)
			return enc.Encode(e)
		},
	}
	cmd.Flags().IntVar(&f.attempt, "attempt", 1, "the failed attempt's number, 1 for the first")
	cmd.Flags().StringVar(&f.provider, "provider", "", "the provider's dialect (default: detected)")
	cmd.Flags().StringVar(&f.now, "now", "", "when the response arrived, RFC 3339 or HTTP-date (default: its Date header, else the clock)")
	cmd.Flags().Uint64Var(&f.seed, "seed", 0, "draw delay_ms at random with this seed (0: the range's middle)")
	return cmd
}

// explain reads a raw response from r and decides on it as the engine
// would after attempt f.attempt, with the clock reading clock.
func explain(r io.Reader, f explainFlags, clock time.Time) (explanation, error) {
	if f.attempt < 1 {
		return explanation{}, usageErrorf("--attempt must be at least 1, got %d", f.attempt)
	}
	o, err := readOutcome(r)
	if err != nil {
		return explanation{}, err
	}
	if f.provider != "" {
		if !knownProvider(retry.Provider(f.provider)) {
			return explanation{}, usageErrorf("--provider %q: unknown; known: openai, anthropic, gemini, vertex, azure, openrouter, groq, bedrock, generic", f.provider)
		}
		o.Provider = retry.Provider(f.provider)
	}
	now := clock
	if t, err := http.ParseTime(o.Header.Get("Date")); err == nil {
		now = t
	}
	if f.now != "" {
		if now, err = parseTime(f.now); err != nil {
			return explanation{}, err
		}
	}
	u := 0.5
	if f.seed != 0 {
		u = rand.New(rand.NewPCG(f.seed, f.seed)).Float64()
	}
	cfg := retry.DefaultConfig()
	d := cfg.Decide(retry.Input{
		Assessment: retry.Assess(o, now), Attempt: f.attempt, Streak: f.attempt - 1,
		Now: now, Budget: -1, Rand: u,
	})
	e := explanation{
		Retry: d.Action == retry.Retry, HintSource: d.HintSource, Reason: d.Reason,
		DelayMinMS: d.DelayMin.Milliseconds(), DelayMaxMS: d.DelayMax.Milliseconds(), DelayMS: d.Delay.Milliseconds(),
	}
	if d.Class != "" {
		e.Class = &d.Class
	}
	if d.Hint.Valid() {
		ms := d.Hint.Wait.Milliseconds()
		e.HintMS = &ms
	}
	return e, nil
}

// readOutcome parses a raw HTTP response. "HTTP/2 429" status lines, as
// curl prints them, are accepted.
func readOutcome(r io.Reader) (retry.Outcome, error) {
	raw, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return retry.Outcome{}, err
	}
	raw = bytes.TrimLeft(raw, " \t\r\n")
	for _, v := range []string{"HTTP/2 ", "HTTP/3 "} {
		if bytes.HasPrefix(raw, []byte(v)) {
			raw = append([]byte(v[:6]+".0 "), raw[len(v):]...)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		return retry.Outcome{}, fmt.Errorf("reading the response (want a status line, headers, a blank line, a body): %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil && len(body) == 0 {
		return retry.Outcome{}, fmt.Errorf("reading the response body: %w", err)
	}
	return retry.Outcome{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := http.ParseTime(s); err == nil {
		return t, nil
	}
	return time.Time{}, usageErrorf("--now %q: want RFC 3339 (2026-11-27T08:00:00Z) or an HTTP-date (Fri, 27 Nov 2026 08:00:00 GMT)", s)
}

func knownProvider(p retry.Provider) bool {
	switch p {
	case retry.OpenAI, retry.Anthropic, retry.Gemini, retry.Vertex, retry.Azure,
		retry.OpenRouter, retry.Groq, retry.Bedrock, retry.Generic:
		return true
	}
	return false
}
