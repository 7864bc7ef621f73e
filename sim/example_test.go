package sim_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/autopack/dynretry/sim"
)

// A provider that allows one request per minute answers the second with a
// 429 that says exactly when to retry.
func Example() {
	p, err := sim.New(sim.Config{RPM: 1, Latency: -1})
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: sim.Transport{Handler: p}}
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, "http://sim.local/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer sk-test")
		resp, err := client.Do(req)
		if err != nil {
			panic(err)
		}
		io.Copy(io.Discard, resp.Body) // read to the end, as SDK clients do
		resp.Body.Close()
		fmt.Println(resp.Status, resp.Header.Get("retry-after"), resp.Header.Get("x-ratelimit-remaining-requests"))
	}
	fmt.Println(p.Stats().Rejected)
	// Output:
	// 200 OK  0
	// 429 Too Many Requests 60 0
	// map[rate_limited:1]
}
