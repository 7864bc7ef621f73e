package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/autopack/dynretry/sim"
	"github.com/spf13/cobra"
)

// hintModes are the values of sim serve's --hint-mode.
var hintModes = []sim.HintMode{sim.HintTruthful, sim.HintOmit, sim.HintLieLong, sim.HintLiePast, sim.HintLieZero}

func newSim() *cobra.Command {
	cmd := &cobra.Command{
		Use: "sim", Short: "The simulated LLM provider", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var addr string
	var cfg sim.Config
	var hint string
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve the simulated provider (OpenAI, Anthropic and Gemini dialects) over HTTP",
		Long: `Serves the simulated provider until interrupted. Base URLs for the SDKs:

  OpenAI      http://ADDR/v1       (POST /v1/chat/completions)
  Anthropic   http://ADDR          (POST /v1/messages)
  Gemini      http://ADDR          (POST /v1beta/models/MODEL:generateContent)

Any non-empty API key is accepted (Authorization: Bearer, x-api-key,
x-goog-api-key or ?key=); limits are kept per key and model. The defaults
(60 requests and 30,000 tokens a minute, a full minute's burst) admit 50
small concurrent calls at once: lower --rpm or --burst to see 429s.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.HintMode = sim.HintMode(hint)
			if !slices.Contains(hintModes, cfg.HintMode) {
				return usageErrorf("--hint-mode %q: want one of %v", hint, hintModes)
			}
			p, err := sim.New(cfg)
			if err != nil {
				return &usageError{err} // every field comes from a flag
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			a := ln.Addr().String()
			fmt.Fprintf(cmd.ErrOrStderr(), "simulated provider on http://%s\n  OpenAI base URL     http://%s/v1\n  Anthropic base URL  http://%s\n  Gemini base URL     http://%s\n", a, a, a, a)
			srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			stop := context.AfterFunc(ctx, func() { srv.Close() })
			defer stop()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	fl := serve.Flags()
	fl.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	fl.Uint64Var(&cfg.Seed, "seed", 1, "seed of the fault schedule")
	fl.IntVar(&cfg.RPM, "rpm", 60, "requests per minute per key and model (0: unlimited)")
	fl.IntVar(&cfg.TPM, "tpm", 30000, "tokens per minute, OpenAI and Gemini dialects (0: unlimited)")
	fl.IntVar(&cfg.ITPM, "itpm", 30000, "input tokens per minute, Anthropic dialect (0: unlimited)")
	fl.IntVar(&cfg.OTPM, "otpm", 8000, "output tokens per minute, Anthropic dialect (0: unlimited)")
	fl.Float64Var(&cfg.Burst, "burst", 1, "bucket capacity as a fraction of a minute's limit")
	fl.StringVar(&hint, "hint-mode", "truthful", "what 429s say: truthful, omit, lie-long, lie-past, lie-zero")
	fl.DurationVar(&cfg.Latency, "latency", 200*time.Millisecond, "time to answer an admitted request")
	fl.Float64Var(&cfg.ErrorRate, "error-rate", 0, "fraction of admitted requests answered 500")
	fl.Float64Var(&cfg.ResetRate, "reset-rate", 0, "fraction of connections reset")
	fl.Float64Var(&cfg.StreamErrorRate, "stream-error-rate", 0, "fraction of streams cut midway")
	fl.IntVar(&cfg.QuotaAfter, "quota-after", 0, "requests per key before the billing error (0: never)")
	cmd.AddCommand(serve)
	return cmd
}
