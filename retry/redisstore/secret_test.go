package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/autopack/dynretry/internal/redistest"
	"github.com/autopack/dynretry/retry"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// alphabet and keyLen span the short keys the brute force tries: "sk-"
// and 4 of these, 1.7 million keys.
const (
	alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	keyLen   = 4
)

// bruteForce tries every short key and returns the one whose unkeyed
// SHA-256 (its first 16 hex digits, the old credential ID) is in ids.
func bruteForce(ids map[string]bool) (string, bool) {
	b := []byte("sk-" + strings.Repeat("a", keyLen))
	var idx [keyLen]int
	var hexID [16]byte
	for {
		for i, j := range idx {
			b[3+i] = alphabet[j]
		}
		sum := sha256.Sum256(b)
		hex.Encode(hexID[:], sum[:8])
		if ids[string(hexID[:])] {
			return string(b), true
		}
		i := keyLen - 1
		for ; i >= 0; i-- {
			if idx[i]++; idx[i] < len(alphabet) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return "", false
		}
	}
}

// dump returns everything the server holds: every key, and every value
// of every hash and sorted set, one per line.
func dump(t *testing.T, c *redis.Client) string {
	ctx := context.Background()
	var out strings.Builder
	ks, err := c.Keys(ctx, "*").Result()
	require.NoError(t, err)
	require.NotEmpty(t, ks)
	for _, k := range ks {
		fmt.Fprintln(&out, k)
		switch c.Type(ctx, k).Val() {
		case "hash":
			for f, v := range c.HGetAll(ctx, k).Val() {
				fmt.Fprintln(&out, f, v)
			}
		case "zset":
			for _, z := range c.ZRangeWithScores(ctx, k, 0, -1).Val() {
				fmt.Fprintln(&out, z.Member, z.Score)
			}
		default:
			t.Fatalf("unexpected key %s of type %s", k, c.Type(ctx, k).Val())
		}
	}
	return out.String()
}

// What Redis holds names a short API key by a keyed hash only: a brute
// force over every short key finds no plain hash of it (it would find the
// old, unkeyed ID), nor the key; and another secret names it otherwise.
func TestNoRecoverableCredentialInRedis(t *testing.T) {
	srv := redistest.New(t)
	apiKey := "sk-q7x2"
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Ratelimit-Limit-Requests", "60")
		w.Header().Set("X-Ratelimit-Remaining-Requests", "0")
		w.Header().Set("X-Ratelimit-Reset-Requests", "1s")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}`))
	}))
	defer api.Close()

	send := func(secret string) {
		s := newStore(t, srv, Options{Prefix: "fleet:"})
		creds, err := retry.NewCredentials([]byte(secret))
		require.NoError(t, err)
		r, err := retry.New(retry.Config{Policies: map[retry.Class]retry.Policy{retry.RateLimited: {MaxAttempts: 1}}},
			retry.WithStore(s), retry.WithCredentials(creds))
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodPost, api.URL+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o"}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := (&retry.Transport{Retrier: r}).RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.NoError(t, s.Close()) // writes what is pending
	}
	send("the fleet's first shared secret")
	c := client(t, srv)
	held := dump(t, c)
	assert.NotContains(t, held, apiKey)
	assert.NotContains(t, held, "q7x2")

	ids := map[string]bool{}
	for _, id := range regexp.MustCompile(`[0-9a-f]{16}`).FindAllString(held, -1) {
		ids[id] = true
	}
	require.NotEmpty(t, ids, "the keys name the credential by 16 hex digits")
	found, ok := bruteForce(ids)
	assert.False(t, ok, "the brute force recovered %q", found)

	// The same brute force on the old, unkeyed ID finds the key.
	plain := sha256.Sum256([]byte(apiKey))
	found, ok = bruteForce(map[string]bool{hex.EncodeToString(plain[:8]): true})
	assert.True(t, ok)
	assert.Equal(t, apiKey, found)

	// Another secret names the same key otherwise.
	send("the fleet's second shared secret")
	again := dump(t, c)
	var tags []string
	for _, m := range regexp.MustCompile(`\{[a-z]+/([0-9a-f]{16})\}`).FindAllStringSubmatch(again, -1) {
		if !contains(tags, m[1]) {
			tags = append(tags, m[1])
		}
	}
	assert.Len(t, tags, 2, "one credential ID per secret: %v", tags)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
