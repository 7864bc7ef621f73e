package sim

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// lieLong is the wait HintLieLong states.
const lieLong = time.Hour

// setHintHeaders sets the retry hint headers of a rate-limited response for
// mode: retry-after (all dialects) and, when withMillis, retry-after-ms.
func setHintHeaders(h http.Header, mode HintMode, wait time.Duration, now time.Time, withMillis bool) {
	set := func(d time.Duration) {
		if withMillis {
			h.Set("retry-after-ms", strconv.FormatInt(d.Milliseconds(), 10))
		}
		h.Set("retry-after", strconv.FormatInt(ceilSeconds(d), 10))
	}
	switch mode {
	case HintTruthful:
		set(wait)
	case HintLieLong:
		set(lieLong)
	case HintLieZero:
		set(0)
	case HintLiePast:
		h.Set("retry-after", now.Add(-time.Hour).UTC().Format(http.TimeFormat))
	}
}

// statedWait returns the wait a response body states under mode, and
// whether it states one.
func statedWait(mode HintMode, wait time.Duration) (time.Duration, bool) {
	switch mode {
	case HintTruthful:
		return wait, true
	case HintLieLong:
		return lieLong, true
	case HintLieZero:
		return 0, true
	}
	return 0, false
}

// ceilSeconds returns d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// formatWait formats d as a Go duration rounded to the millisecond, as
// OpenAI does: "1.146s", "12ms", "6m0s".
func formatWait(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}

// protoDuration formats d as a protobuf JSON Duration with millisecond
// precision: "37s", "1.250s".
func protoDuration(d time.Duration) string {
	ms := d.Round(time.Millisecond).Milliseconds()
	if ms%1000 == 0 {
		return fmt.Sprintf("%ds", ms/1000)
	}
	return fmt.Sprintf("%d.%03ds", ms/1000, ms%1000)
}

// resetTime formats now+d as an RFC 3339 UTC timestamp, rounded up to the
// second so that it is never earlier than the bucket is full.
func resetTime(now time.Time, d time.Duration) string {
	t := now.Add(d).UTC()
	if t2 := t.Truncate(time.Second); !t2.Equal(t) {
		t = t2.Add(time.Second)
	}
	return t.Format(time.RFC3339)
}

// thousands formats n with comma separators: 80000 → "80,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
