//go:build race

package bench

// raceEnabled reports that the race detector is on: the suite then runs
// smaller workloads (see Scale) to stay within its time budget.
const raceEnabled = true
