package retry

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"sync"
	"sync/atomic"
)

// Credentials name API keys in limit keys (Key.Credential) without
// revealing them: a key's ID is the first 64 bits of HMAC-SHA256(secret,
// key), in hex. Without the secret an ID tells nothing of its key: unlike a
// plain hash, it cannot be matched against the hashes of guessed keys.
//
// Processes that share a Store must share the secret, so that one API key
// has one ID in all of them. A nil *Credentials uses a secret drawn at
// random once per process: IDs are then stable within the process and
// meaningless outside it. Credentials are safe for concurrent use.
type Credentials struct {
	macs  sync.Pool // of hash.Hash keyed with the secret
	ids   sync.Map  // API key → ID, for the first maxCredentialIDs keys
	count atomic.Int64
}

// MinSecretLen is the shortest secret NewCredentials accepts, in bytes: a
// shorter one could be guessed, and the IDs with it.
const MinSecretLen = 16

// ErrShortSecret is returned by NewCredentials for a secret shorter than
// MinSecretLen bytes.
var ErrShortSecret = errors.New("retry: the credential secret is shorter than 16 bytes")

// NewCredentials returns the Credentials of secret, which every process
// sharing a Store must be given. It fails with ErrShortSecret when secret
// is shorter than MinSecretLen bytes.
func NewCredentials(secret []byte) (*Credentials, error) {
	if len(secret) < MinSecretLen {
		return nil, ErrShortSecret
	}
	key := append([]byte(nil), secret...)
	c := new(Credentials)
	c.macs.New = func() any { return hmac.New(sha256.New, key) }
	return c, nil
}

// processCredentials are the Credentials of a nil *Credentials.
var processCredentials = sync.OnceValue(func() *Credentials {
	secret := make([]byte, 32)
	rand.Read(secret) // never fails (crypto/rand)
	c, _ := NewCredentials(secret)
	return c
})

// maxCredentialIDs is how many IDs a Credentials caches: a process uses a
// few keys, on every request.
const maxCredentialIDs = 1024

// ID returns the identifier of the API key apiKey: 16 hex digits, stable
// for the same secret and different for another. An empty key gives "none".
func (c *Credentials) ID(apiKey string) string {
	if apiKey == "" {
		return "none"
	}
	if c == nil {
		c = processCredentials()
	}
	if id, ok := c.ids.Load(apiKey); ok {
		return id.(string)
	}
	mac := c.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write([]byte(apiKey))
	var sum [sha256.Size]byte
	id := hex.EncodeToString(mac.Sum(sum[:0])[:8])
	c.macs.Put(mac)
	if c.count.Add(1) <= maxCredentialIDs {
		c.ids.Store(apiKey, id)
	}
	return id
}

// RequestKey derives the limit key of an HTTP request to an LLM API, its
// credential named by c (see the package function RequestKey).
func (c *Credentials) RequestKey(req *http.Request) Key {
	k := Key{Provider: requestProvider(req)}
	k.Credential = c.ID(requestCredential(req))
	k.Model = requestModel(req)
	return k
}

// CredentialID is shorthand for (*Credentials)(nil).ID(apiKey): the ID
// under this process's random secret.
func CredentialID(apiKey string) string { return (*Credentials)(nil).ID(apiKey) }
