package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The sections other generators own are found whole, markers included.
func TestOwnedSections(t *testing.T) {
	in := "# Benchmarks\n\nfigures\n\n<!-- proxybench: begin -->\n## dynretry proxy\n| a |\n<!-- proxybench: end -->\n\n" +
		"<!-- fleet: begin -->\nfleet\n<!-- fleet: end -->\n"
	var got []string
	for _, m := range owned.FindAll([]byte(in), -1) {
		got = append(got, string(m))
	}
	assert.Equal(t, []string{
		"<!-- proxybench: begin -->\n## dynretry proxy\n| a |\n<!-- proxybench: end -->\n",
		"<!-- fleet: begin -->\nfleet\n<!-- fleet: end -->\n",
	}, got)
	assert.Empty(t, owned.FindAll([]byte("# Benchmarks\n<!-- a comment -->\n"), -1))
}
