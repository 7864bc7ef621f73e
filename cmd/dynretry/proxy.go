package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os/signal"
	"syscall"
	"time"

	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/proxy"
	"github.com/autopack/dynretry/telemetry/export"
	"github.com/spf13/cobra"
)

// proxyFlags are dynretry proxy's flags; an empty address means the
// configuration's.
type proxyFlags struct {
	listen, admin, config string
}

func newProxyCmd() *cobra.Command {
	var f proxyFlags
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Serve dynretry as a local HTTP proxy for LLM API clients in any language",
		Long: `Serves dynretry as a local HTTP proxy until SIGTERM or SIGINT. Point an SDK's
base URL at it and its calls go through dynretry, with one pacer shared by
every process on the machine:

  OpenAI (any compatible API)  http://LISTEN/openai/v1
  Anthropic                    http://LISTEN/anthropic
  Gemini                       http://LISTEN/gemini

The upstreams, the listen addresses, the replay buffer and the drain bound
are the proxy keys of models.yaml (--config, else $DYNRETRY_CONFIG, else the
defaults) and DYNRETRY_PROXY__* variables. Requests carry the run in
X-Autopack-Run-Id (with X-Autopack-Phase-Id and X-Autopack-Role); the
rollout puts the run in the treatment or the control cohort, as the plugin
does. Every response says its cohort in X-Dynretry-Cohort. A control call
the client's SDK retries is counted once across its attempts, told by
X-Autopack-Call-Id (the runner's id for the call), else by the SDK's
X-Stainless-Retry-Count and the request.

The admin address serves /metrics (Prometheus) and /healthz. Telemetry also
goes where the standard OTEL_* variables say. On SIGTERM the proxy stops
accepting connections, lets calls and streams in flight finish within
proxy.drain_timeout, then exits.

Both addresses stay on loopback unless told otherwise: anyone who can reach
the proxy can send requests through it to the upstreams, with keys of their
own, and read its metrics.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, a := range []struct{ flag, addr string }{{"--listen", f.listen}, {"--admin-listen", f.admin}} {
				if a.addr == "" {
					continue
				}
				if _, _, err := net.SplitHostPort(a.addr); err != nil {
					return usageErrorf("%s %q: want host:port, such as 127.0.0.1:8787", a.flag, a.addr)
				}
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runProxy(ctx, f, cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "", "address to serve the proxy on (default proxy.listen: 127.0.0.1:8787)")
	fl.StringVar(&f.admin, "admin-listen", "", "address to serve /metrics and /healthz on (default proxy.admin_listen: 127.0.0.1:8788)")
	fl.StringVar(&f.config, "config", "", "models.yaml to read and watch (default $DYNRETRY_CONFIG, else none)")
	return cmd
}

// runProxy serves the proxy until ctx ends, then drains it.
func runProxy(ctx context.Context, f proxyFlags, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	tel, err := telemetryOptions(ctx, "dynretry-proxy", nil)
	if err != nil {
		return err
	}
	reader, metrics, err := export.Prometheus()
	if err != nil {
		return err
	}
	tel.MetricReaders = append(tel.MetricReaders, reader)
	p, err := proxy.New(ctx, proxy.Options{Plugin: plugin.Options{ConfigPath: f.config, Telemetry: tel, Logger: log}})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if serr := p.Shutdown(sctx); serr != nil {
			log.Error("dynretry proxy: flushing telemetry", "error", serr)
		}
	}()

	s := p.Settings()
	listen, adminListen := cmp.Or(f.listen, s.Listen), cmp.Or(f.admin, s.AdminListen)
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	adminLn, err := net.Listen("tcp", adminListen)
	if err != nil {
		return err
	}
	defer adminLn.Close()
	for _, l := range []net.Listener{ln, adminLn} {
		if a, ok := l.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
			log.Warn("dynretry proxy: listening beyond loopback: anyone who can reach this address can send requests through the proxy to its upstreams, with keys of their own, and read its metrics", "address", l.Addr().String())
		}
	}
	addr := "http://" + ln.Addr().String()
	fmt.Fprintf(stderr, "dynretry proxy on %s (admin http://%s: /metrics, /healthz)\n", addr, adminLn.Addr())
	for _, r := range []struct {
		name, path string
		up         *url.URL
	}{
		{"OpenAI", "/openai/v1", s.Upstreams.OpenAI}, {"Anthropic", "/anthropic", s.Upstreams.Anthropic}, {"Gemini", "/gemini", s.Upstreams.Gemini},
	} {
		to := "off"
		if r.up != nil {
			to = r.up.String()
		}
		fmt.Fprintf(stderr, "  %-10s base URL  %-*s  ->  %s\n", r.name, len(addr)+len("/anthropic"), addr+r.path, to)
	}

	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: p.ErrorLog()}
	admin := &http.Server{Handler: p.Admin(metrics), ReadHeaderTimeout: 10 * time.Second, ErrorLog: p.ErrorLog()}
	failed := make(chan error, 2)
	for srv, l := range map[*http.Server]net.Listener{srv: ln, admin: adminLn} {
		go func() {
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				failed <- err
			}
		}()
	}
	defer admin.Close()
	select {
	case err := <-failed:
		srv.Close()
		return err
	case <-ctx.Done():
	}

	drain := p.Settings().DrainTimeout
	log.Info("dynretry proxy: draining: no new connections; calls and streams in flight may finish", "within", drain)
	p.Drain()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		srv.Close()
		log.Warn("dynretry proxy: drain_timeout passed: the calls and streams still in flight were cut", "drain_timeout", drain)
		return nil
	}
	log.Info("dynretry proxy: drained")
	return nil
}
