// Package runner is an autopack-style runner, the way a real one registers
// dynretry: a startup Host that plugins wrap parts with, an LLM service over
// the real openai-go, anthropic-sdk-go and Google Gen AI (genai) clients
// (builder calls stream), an error reporter, and runs made of phases.
//
//	host := new(runner.Host)
//	p, err := plugin.Register(ctx, host, plugin.Options{})
//	…
//	r := runner.New(host, runner.Options{BaseURL: url, APIKey: key})
//	res := r.Run(ctx, "lovable-p1-core-precision", phases)
package runner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/autopack/dynretry/hooks"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"google.golang.org/genai"
)

// Host is the runner's startup host: plugins register wrappers, and the
// runner applies them, first registered innermost, when it builds its
// parts. It implements hooks.Host. It is not safe for concurrent use:
// plugins register before the runner starts.
type Host struct {
	llm       []func(hooks.LLMService) hooks.LLMService
	reporter  []func(hooks.ErrorReporter) hooks.ErrorReporter
	transport []func(http.RoundTripper) http.RoundTripper
}

// WrapLLM implements hooks.Host.
func (h *Host) WrapLLM(w func(hooks.LLMService) hooks.LLMService) { h.llm = append(h.llm, w) }

// WrapErrorReporter implements hooks.Host.
func (h *Host) WrapErrorReporter(w func(hooks.ErrorReporter) hooks.ErrorReporter) {
	h.reporter = append(h.reporter, w)
}

// WrapTransport implements hooks.Host.
func (h *Host) WrapTransport(w func(http.RoundTripper) http.RoundTripper) {
	h.transport = append(h.transport, w)
}

// Options configure a Runner.
type Options struct {
	// BaseURL is the providers' address: OpenAI at BaseURL/v1, Anthropic and
	// Gemini at BaseURL (the simulated provider serves all three).
	BaseURL string
	// APIKey is the key every client sends.
	APIKey string
	// Dir is where error reports go (Dir/.autonomous_runs/…); "" means the
	// current directory.
	Dir string
	// Transport sends the clients' requests; nil means http.DefaultTransport.
	Transport http.RoundTripper
	// OpenAIModel, AnthropicModel and GeminiModel name the models (defaults
	// "gpt-4o-mini", "claude-sonnet-4-5" and "gemini-2.5-flash").
	OpenAIModel, AnthropicModel, GeminiModel string
	// CallTimeout bounds each LLM call, retries included; 0 means none.
	CallTimeout time.Duration
}

// A Runner executes runs. It is safe for concurrent use: many runs may
// execute at once, as autopack's executors do.
type Runner struct {
	llm      hooks.LLMService
	reporter hooks.ErrorReporter
	opts     Options
}

// New builds the runner's parts from o with every wrapper registered on h.
func New(h *Host, o Options) *Runner {
	if o.OpenAIModel == "" {
		o.OpenAIModel = "gpt-4o-mini"
	}
	if o.AnthropicModel == "" {
		o.AnthropicModel = "claude-sonnet-4-5"
	}
	if o.GeminiModel == "" {
		o.GeminiModel = "gemini-2.5-flash"
	}
	rt := o.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	for _, w := range h.transport {
		rt = w(rt)
	}
	hc := &http.Client{Transport: rt}
	s := &service{
		openai:    openai.NewClient(option.WithBaseURL(o.BaseURL+"/v1/"), option.WithAPIKey(o.APIKey), option.WithHTTPClient(hc)),
		anthropic: anthropic.NewClient(anthropicoption.WithBaseURL(o.BaseURL), anthropicoption.WithAPIKey(o.APIKey), anthropicoption.WithHTTPClient(hc)),
	}
	// The Gemini API backend with a key makes no call here; an error (none
	// expected) is returned by every Gemini call.
	s.gemini, s.geminiErr = genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey: o.APIKey, Backend: genai.BackendGeminiAPI, HTTPClient: hc,
		HTTPOptions: genai.HTTPOptions{BaseURL: o.BaseURL},
	})
	var llm hooks.LLMService = s
	for _, w := range h.llm {
		llm = w(llm)
	}
	var rep hooks.ErrorReporter = &hooks.FileReporter{Dir: o.Dir, Secrets: []string{o.APIKey}}
	for _, w := range h.reporter {
		rep = w(rep)
	}
	return &Runner{llm: llm, reporter: rep, opts: o}
}

// service is the runner's LLM service: it routes each call to its
// provider's SDK client. openai-go and anthropic-sdk-go keep their own
// retries unless dynretry takes the call (hooks.SDKRetriesOff); genai makes
// none unless asked (HTTPOptions.RetryOptions), so Gemini calls are sent
// once in the control cohort.
type service struct {
	openai    openai.Client
	anthropic anthropic.Client
	gemini    *genai.Client
	geminiErr error
}

func (s *service) Complete(ctx context.Context, call hooks.Call, req hooks.Request) (hooks.Response, error) {
	switch call.Provider {
	case "openai":
		var opts []option.RequestOption
		if hooks.SDKRetriesOff(ctx) {
			opts = append(opts, option.WithMaxRetries(0))
		}
		params := openai.ChatCompletionNewParams{
			Model:     call.Model,
			MaxTokens: openai.Int(int64(req.MaxTokens)),
			Messages:  []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(req.System), openai.UserMessage(req.Prompt)},
		}
		c, err := s.openai.Chat.Completions.New(ctx, params, opts...)
		if err != nil {
			return hooks.Response{}, err
		}
		text := ""
		if len(c.Choices) > 0 {
			text = c.Choices[0].Message.Content
		}
		return hooks.Response{Text: text, Model: c.Model, InputTokens: c.Usage.PromptTokens, OutputTokens: c.Usage.CompletionTokens}, nil
	case "anthropic":
		var opts []anthropicoption.RequestOption
		if hooks.SDKRetriesOff(ctx) {
			opts = append(opts, anthropicoption.WithMaxRetries(0))
		}
		params := anthropic.MessageNewParams{
			Model:     call.Model,
			MaxTokens: int64(req.MaxTokens),
			System:    []anthropic.TextBlockParam{{Text: req.System}},
			Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(req.Prompt))},
		}
		if !req.Stream {
			m, err := s.anthropic.Messages.New(ctx, params, opts...)
			if err != nil {
				return hooks.Response{}, err
			}
			return anthropicResponse(m), nil
		}
		stream := s.anthropic.Messages.NewStreaming(ctx, params, opts...)
		defer stream.Close()
		var m anthropic.Message
		for stream.Next() {
			if err := m.Accumulate(stream.Current()); err != nil {
				return hooks.Response{}, err
			}
		}
		if err := stream.Err(); err != nil {
			return hooks.Response{}, err
		}
		return anthropicResponse(&m), nil
	case "gemini":
		if s.geminiErr != nil {
			return hooks.Response{}, fmt.Errorf("runner: gemini client: %w", s.geminiErr)
		}
		cfg := &genai.GenerateContentConfig{
			SystemInstruction: genai.NewContentFromText(req.System, genai.RoleUser),
			MaxOutputTokens:   int32(req.MaxTokens),
		}
		r, err := s.gemini.Models.GenerateContent(ctx, call.Model, genai.Text(req.Prompt), cfg)
		if err != nil {
			return hooks.Response{}, err
		}
		resp := hooks.Response{Text: r.Text(), Model: r.ModelVersion}
		if u := r.UsageMetadata; u != nil {
			resp.InputTokens, resp.OutputTokens = int64(u.PromptTokenCount), int64(u.CandidatesTokenCount)
		}
		return resp, nil
	}
	return hooks.Response{}, fmt.Errorf("runner: unknown provider %q", call.Provider)
}

func anthropicResponse(m *anthropic.Message) hooks.Response {
	var b strings.Builder
	for _, c := range m.Content {
		b.WriteString(c.Text)
	}
	return hooks.Response{Text: b.String(), Model: string(m.Model), InputTokens: m.Usage.InputTokens, OutputTokens: m.Usage.OutputTokens}
}

// A Step is one LLM call of a phase.
type Step struct {
	Role     string // builder, auditor, doctor
	Provider string // "openai", "anthropic" or "gemini"
	Request  hooks.Request
	// Attributes are what a flag rule may target besides the call's fields
	// (hooks.Call.Attributes), e.g. {"codebase_size": 120000}.
	Attributes map[string]any
}

// A Phase is a unit of a run's work: its steps run in order.
type Phase struct {
	ID    string
	Steps []Step
}

// A Result is what a run did.
type Result struct {
	RunID string
	// Calls and Failed count LLM calls and those that failed.
	Calls, Failed int
	// Reports are the paths of the error reports written.
	Reports []string
}

// Run executes the phases of run runID in order; a failed call is
// reported and the run goes on with the next step, as autopack's executor
// records a phase failure and continues.
func (r *Runner) Run(ctx context.Context, runID string, phases []Phase) Result {
	res := Result{RunID: runID}
	for _, ph := range phases {
		for _, st := range ph.Steps {
			call := hooks.Call{RunID: runID, PhaseID: ph.ID, Role: st.Role, Provider: st.Provider, Model: r.model(st.Provider), Attributes: st.Attributes}
			res.Calls++
			if err := r.call(ctx, call, st.Request); err != nil {
				res.Failed++
				path, rerr := r.reporter.Report(ctx, hooks.ErrorReport{
					Err: err, RunID: runID, PhaseID: ph.ID, Component: "llm_service", Operation: st.Role,
					Context: map[string]any{"provider": call.Provider, "model": call.Model, "stream": st.Request.Stream},
				})
				if rerr == nil {
					res.Reports = append(res.Reports, path)
				}
			}
			if ctx.Err() != nil {
				return res
			}
		}
	}
	return res
}

func (r *Runner) call(ctx context.Context, call hooks.Call, req hooks.Request) error {
	if r.opts.CallTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.opts.CallTimeout)
		defer cancel()
	}
	_, err := r.llm.Complete(ctx, call, req)
	if err == nil {
		return nil
	}
	return errors.Join(fmt.Errorf("runner: %s call for phase %s", call.Role, call.PhaseID), err)
}

func (r *Runner) model(provider string) string {
	switch provider {
	case "anthropic":
		return r.opts.AnthropicModel
	case "gemini":
		return r.opts.GeminiModel
	}
	return r.opts.OpenAIModel
}
