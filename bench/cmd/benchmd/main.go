// Command benchmd regenerates BENCHMARKS.md: it runs the scenario suite and
// the success-path benchmarks of package bench on this machine and writes
// their figures, with the lower bound's definition read from the code's doc
// comment.
//
//	go run ./bench/cmd/benchmd [-o BENCHMARKS.md]
//
// Run it from anywhere in the module; -o is relative to the current
// directory. Sections other generators own, between "<!-- NAME: begin -->"
// and "<!-- NAME: end -->" lines, are kept as they are, after the rest.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/autopack/dynretry/bench"
)

// benchCount is how many times each benchmark runs; the fastest run is
// kept: on a shared machine it is the least disturbed one.
const benchCount = 10

const (
	suiteCmd = "go test ./bench -run '^TestScenarios$' -count=1"
	benchCmd = "go test -run '^$' -bench SuccessPath -benchmem -cpu 1 -count 10 ./bench"
)

func main() {
	out := flag.String("o", "BENCHMARKS.md", "where to write")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("benchmd: ")

	root := strings.TrimSpace(string(must(command("", nil, "go", "list", "-m", "-f", "{{.Dir}}"))))
	tmp, err := os.MkdirTemp("", "benchmd")
	check(err)
	defer os.RemoveAll(tmp)

	reportPath := filepath.Join(tmp, "report.json")
	log.Printf("running %s", suiteCmd)
	must(command(root, []string{"BENCH_REPORT=" + reportPath}, "go", "test", "./bench", "-run", "^TestScenarios$", "-count=1"))
	var r bench.Report
	b, err := os.ReadFile(reportPath)
	check(err)
	check(json.Unmarshal(b, &r))

	log.Printf("running %s", benchCmd)
	bout := must(command(root, nil, "go", "test", "-run", "^$", "-bench", "SuccessPath", "-benchmem", "-cpu", "1", "-count", strconv.Itoa(benchCount), "./bench"))
	marks, machine := parseBench(bout)
	goVersion := strings.TrimSpace(string(must(command(root, nil, "go", "env", "GOVERSION"))))

	docs := docComments(filepath.Join(root, "bench"))
	var md bytes.Buffer
	render(&md, r, marks, machine, goVersion, docs)
	old, err := os.ReadFile(*out)
	if err != nil && !os.IsNotExist(err) {
		check(err)
	}
	for _, sec := range owned.FindAll(old, -1) {
		md.WriteString("\n")
		md.Write(sec)
	}
	check(os.WriteFile(*out, md.Bytes(), 0o644))
	log.Printf("wrote %s", *out)
}

// owned matches the sections of BENCHMARKS.md that other generators write
// (bench/cmd/proxybench, bench/cmd/fleetbench), each between a line "<!-- NAME: begin -->" and a
// line "<!-- NAME: end -->": benchmd keeps them, after what it writes.
var owned = regexp.MustCompile(`(?ms)^<!-- [\w-]+: begin -->$.*?^<!-- [\w-]+: end -->$\n?`)

// command runs name args in dir with env added and returns its stdout;
// stderr passes through.
func command(dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		os.Stderr.Write(out)
		return nil, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out, nil
}

func must(b []byte, err error) []byte {
	check(err)
	return b
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// mark is one benchmark's figures from its fastest run.
type mark struct {
	name                  string
	ns, bytes, allocs     float64
	nsAll, bytesAll, alls []float64
}

var benchLine = regexp.MustCompile(`^BenchmarkSuccessPath/(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op\s+([\d.]+) B/op\s+([\d.]+) allocs/op`)

// parseBench reads `go test -bench` output: the fastest run of each benchmark,
// in order of first appearance, and the goos/goarch/cpu lines.
func parseBench(out []byte) ([]mark, map[string]string) {
	machine := map[string]string{}
	var order []string
	by := map[string]*mark{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		for _, k := range []string{"goos", "goarch", "cpu"} {
			if v, ok := strings.CutPrefix(line, k+": "); ok {
				machine[k] = strings.TrimSpace(v)
			}
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		k := by[m[1]]
		if k == nil {
			k = &mark{name: m[1]}
			by[m[1]] = k
			order = append(order, m[1])
		}
		f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
		k.nsAll, k.bytesAll, k.alls = append(k.nsAll, f(m[2])), append(k.bytesAll, f(m[3])), append(k.alls, f(m[4]))
	}
	var marks []mark
	for _, n := range order {
		k := by[n]
		i := slices.Index(k.nsAll, slices.Min(k.nsAll))
		k.ns, k.bytes, k.allocs = k.nsAll[i], k.bytesAll[i], k.alls[i]
		marks = append(marks, *k)
	}
	return marks, machine
}

// docComments returns the doc comments of package bench's declarations by
// name, as Markdown.
func docComments(dir string) map[string]string {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	check(err)
	var files []*ast.File
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments)
			check(err)
			files = append(files, f)
		}
	}
	p, err := doc.NewFromFiles(fset, files, "github.com/autopack/dynretry/bench", doc.AllDecls)
	check(err)
	out := map[string]string{}
	for _, f := range p.Funcs {
		out[f.Name] = string(p.Markdown(f.Doc))
	}
	for _, t := range p.Types {
		out[t.Name] = string(p.Markdown(t.Doc))
		for _, m := range t.Methods {
			out[t.Name+"."+m.Name] = string(p.Markdown(m.Doc))
		}
		for _, f := range t.Funcs {
			out[f.Name] = string(p.Markdown(f.Doc))
		}
	}
	return out
}

func render(w *bytes.Buffer, r bench.Report, marks []mark, machine map[string]string, goVersion string, docs map[string]string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("# Benchmarks")
	p("")
	p("Generated by `go run ./bench/cmd/benchmd` (do not edit by hand), which runs")
	p("`%s` and `%s` and writes this file.", suiteCmd, benchCmd)
	p("The benchmark file of design.md comes from `BENCH_OUT=path go test ./bench -run TestScenarios -count=1`.")
	p("The fleet section at the end is `go run ./bench/cmd/fleetbench`'s, which benchmd keeps as it is.")
	p("")
	p("Machine: %s/%s, %s, %d cores (runtime.NumCPU), %s.", machine["goos"], machine["goarch"], machine["cpu"], runtime.NumCPU(), goVersion)
	if r.Race {
		p("")
		p("**These figures were taken with the race detector on** (one seed per scenario except random-500s).")
	}
	p("")
	p("Every scenario runs each policy against the same simulated provider (package `sim`) in virtual time")
	p("(`testing/synctest`); see the package documentation of `bench` for how the runs are made and measured.")

	p("")
	p("## dynretry's goals")
	p("")
	p("Ratios are judged on the median over seeds; counts that must be zero or within an allowance, and the")
	p("longest lag after a refusal, on the worst seed. A makespan goal also requires every call to succeed.")
	p("Asserted by `TestScenarios/goal/<scenario>`.")
	p("")
	p("| scenario | measure | dynretry | goal | met |")
	p("|---|---|---:|---:|:---:|")
	for _, g := range r.Goals {
		for i, c := range g.Checks {
			name := ""
			if i == 0 {
				name = g.Scenario
			}
			s := c.String()
			got, want, _ := strings.Cut(strings.TrimPrefix(s, c.What+" "), ", want ")
			met := "yes"
			if !c.OK {
				met = "**no**"
			}
			p("| %s | %s | %s | %s | %s |", name, c.What, got, want, met)
		}
	}

	p("")
	p("## Results")
	p("")
	seeds := "medians over seeds 1–5"
	if r.Race {
		seeds = "seed 1 (random-500s: medians over seeds 1–5)"
	}
	p("Per scenario × policy, %s. Each measure is the median of its own values, so a row's figures", seeds)
	p("need not add up across columns. lying-retry-after has a row per lie; the benchmark file keeps, per policy,")
	p("the worst of the three (most failed calls plus sleeps past a deadline, then the largest ×bound).")
	p("")
	bench.WriteMarkdownTable(w, r.Rows)
	p("")
	p("Columns: *ok*/*failed* count calls; *attempts* are requests the provider received, *wasted* those that did")
	p("not succeed; *makespan* runs to the last successful call's end; *×bound* is makespan over the lower bound")
	p("(median of the seeds' ratios); *p50*/*p99* are latencies of successful calls from start (time held")
	p("included) to end; *past deadline* counts calls waiting between attempts when their deadline passed;")
	p("*late give-ups* counts calls told a wait longer than their deadline allowed that did not end at once;")
	p("*give-up lag* is the longest a failed call went on after its own last response (it may have learned")
	p("more from other calls meanwhile); *quota retries* are attempts after a quota error; *outage probes* are,")
	p("for the client that sent most, attempts during the overload window after its first overload error, over")
	p("what one probe per 5 s allows; *blocked probes* are attempts started after the cell's first long refusal")
	p("(a quota error, or a 429 asking for more than 2 min), over what one probe per minute allows; *refusal lag*")
	p("is the longest a call went on after its own first refusal (429 or quota); *stopped* counts calls the")
	p("harness ended because their policy spun in virtual time (see below).")

	p("")
	p("## Scenarios")
	p("")
	p("| scenario | provider (OpenAI dialect) | workload | seeds | what it tests |")
	p("|---|---|---|---|---|")
	for _, s := range r.Scenarios {
		var seeds []string
		for _, x := range s.Seeds {
			seeds = append(seeds, strconv.FormatUint(x, 10))
		}
		about := s.About
		if len(s.Cases) > 0 {
			about += " (cases: " + strings.Join(s.Cases, ", ") + ")"
		}
		p("| %s | %s | %s | %s | %s |", s.Name, s.Provider, s.Workload, strings.Join(seeds, ", "), about)
	}
	p("")
	p("The Anthropic dialect (anthropic-go-default) gets the same config with TPM split into ITPM and OTPM in")
	p("proportion to the workload's mean input and output tokens, so that its lower bound is the same to within")
	p("a seed's deviation from the mean (its own bound is reported in its rows).")

	p("")
	p("## Policies")
	p("")
	for _, pol := range r.Policies {
		p("- **%s** (%s dialect): %s.", pol.Name, pol.Dialect, pol.About)
	}

	p("")
	p("## Lower bound")
	p("")
	w.WriteString(docs["LowerBound"])
	p("")
	p("The oracle reaches the bound where nothing but the buckets constrains it; it books calls first come,")
	p("first served, so where calls must be dropped (short-deadlines) a policy may complete a few more.")

	p("")
	p("## How the harness measures and protects itself")
	p("")
	w.WriteString(docs["record.sleptPastDeadline"])
	p("")
	w.WriteString(docs["record.lateGiveUp"])
	p("")
	w.WriteString(docs["tracker"])
	p("")
	w.WriteString(docs["turns"])

	p("")
	p("## Overhead of the success path")
	p("")
	p("`%s`: one successful call through each retry layer against an in-process transport that answers 200 at", benchCmd)
	p("once (real time, no simulated latency), on one CPU; the fastest of %d runs, the machine being shared (the fastest run is", benchCount)
	p("the least disturbed). *none* is the bare `http.Client`.")
	p("")
	p("| layer | ns/op | B/op | allocs/op | ns/op over none | allocs over none |")
	p("|---|---:|---:|---:|---:|---:|")
	var base mark
	for _, m := range marks {
		if m.name == "none" {
			base = m
		}
	}
	for _, m := range marks {
		p("| %s | %.0f | %.0f | %.0f | %+.0f | %+.0f |", m.name, m.ns, m.bytes, m.allocs, m.ns-base.ns, m.allocs-base.allocs)
	}
}
