package retry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustCredentials(t *testing.T, secret string) *Credentials {
	t.Helper()
	c, err := NewCredentials([]byte(secret))
	require.NoError(t, err)
	return c
}

func TestCredentialsID(t *testing.T) {
	a := mustCredentials(t, "fleet secret number one")
	b := mustCredentials(t, "fleet secret number two")
	hex16 := regexp.MustCompile(`^[0-9a-f]{16}$`)

	id := a.ID("sk-abc")
	assert.Regexp(t, hex16, id)
	assert.Equal(t, id, a.ID("sk-abc"), "stable for one secret")
	assert.Equal(t, id, mustCredentials(t, "fleet secret number one").ID("sk-abc"), "stable across processes sharing the secret")
	assert.NotEqual(t, id, b.ID("sk-abc"), "another secret, another ID")
	assert.NotEqual(t, id, a.ID("sk-abd"), "another key, another ID")
	assert.Equal(t, "none", a.ID(""))

	plain := sha256.Sum256([]byte("sk-abc"))
	assert.NotEqual(t, hex.EncodeToString(plain[:8]), id, "not the unkeyed hash")
	assert.NotContains(t, id, "abc")
}

func TestCredentialsProcessSecret(t *testing.T) {
	var none *Credentials
	id := none.ID("sk-abc")
	assert.Regexp(t, `^[0-9a-f]{16}$`, id)
	assert.Equal(t, id, CredentialID("sk-abc"), "CredentialID is the nil Credentials' ID")
	plain := sha256.Sum256([]byte("sk-abc"))
	assert.NotEqual(t, hex.EncodeToString(plain[:8]), id, "a random secret, not the unkeyed hash")
	assert.NotEqual(t, id, mustCredentials(t, "fleet secret number one").ID("sk-abc"))
}

func TestNewCredentialsShortSecret(t *testing.T) {
	for _, s := range []string{"", "short", strings.Repeat("x", MinSecretLen-1)} {
		_, err := NewCredentials([]byte(s))
		assert.ErrorIs(t, err, ErrShortSecret, "%d bytes", len(s))
	}
	_, err := NewCredentials([]byte(strings.Repeat("x", MinSecretLen)))
	assert.NoError(t, err)

	// The secret is copied: changing the caller's slice changes nothing.
	secret := []byte("fleet secret number one")
	c, err := NewCredentials(secret)
	require.NoError(t, err)
	before := c.ID("sk-abc")
	secret[0] = 'X'
	assert.Equal(t, before, c.ID("sk-abc"))
}

// Many goroutines naming many keys get the same IDs as one would, past the
// cache's size.
func TestCredentialsConcurrent(t *testing.T) {
	c := mustCredentials(t, "fleet secret number one")
	want := mustCredentials(t, "fleet secret number one")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range maxCredentialIDs / 2 {
				k := "sk-" + strings.Repeat("k", g) + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
				assert.Equal(t, want.ID(k), c.ID(k))
			}
		})
	}
	wg.Wait()
}

// A Transport names the credential with its Retrier's Credentials.
func TestTransportUsesRetrierCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }))
	defer srv.Close()
	creds := mustCredentials(t, "fleet secret number one")
	var ev events
	r := newRetrier(t, Config{}, WithCredentials(creds), WithObserver(&ev))
	assert.Same(t, creds, r.Credentials())

	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sk-abc")
	resp, err := (&Transport{Base: srv.Client().Transport, Retrier: r}).RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()

	got := ev.all()
	require.Len(t, got, 1)
	assert.Equal(t, creds.ID("sk-abc"), got[0].Key.Credential)
	assert.Equal(t, "gpt-4o", got[0].Key.Model)
	assert.Equal(t, creds.RequestKey(req), got[0].Key)
	assert.NotEqual(t, RequestKey(req), got[0].Key, "not the process secret's")
}

// localStore answers from a MemoryStore and marks every verdict Local, as a
// shared store that lost its server does.
type localStore struct{ MemoryStore }

func (s *localStore) Book(ctx context.Context, key Key, a Ask) (Verdict, error) {
	v, err := s.MemoryStore.Book(ctx, key, a)
	v.Local = true
	return v, err
}

// The engine passes a verdict's Local on to the Observer, for sent attempts
// and for give-ups before one.
func TestEventLocal(t *testing.T) {
	for _, store := range []Store{new(MemoryStore), new(localStore)} {
		_, local := store.(*localStore)
		var ev events
		r := newRetrier(t, Config{}, WithStore(store), WithObserver(&ev))
		require.NoError(t, r.Do(context.Background(), testKey, func(context.Context) error { return nil }))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.Error(t, r.Do(ctx, testKey, func(context.Context) error { return nil }))

		got := ev.all()
		require.Len(t, got, 2)
		assert.True(t, got[0].Sent)
		assert.Equal(t, local, got[0].Local, "sent attempt")
		assert.False(t, got[1].Sent)
		assert.False(t, got[1].Local, "a context that ended before asking the pacer has no verdict")
	}
}
