// Package coordination opens the shared pacing store that models.yaml's
// coordination section names, for plugin.Options.OpenStore:
//
//	p, err := plugin.Register(ctx, host, plugin.Options{OpenStore: coordination.Open})
//
// With coordination.backend: redis, every process registered this way on
// the same Redis server and key_prefix paces its calls as one client (see
// package retry/redisstore). It is a package of its own so that a program
// that keeps its pacing state in memory does not link the Redis client.
package coordination

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/autopack/dynretry/config"
	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/retry/redisstore"
	"github.com/autopack/dynretry/telemetry"
)

// Open opens the store c names: a redisstore.Store for config.BackendRedis,
// logging to log. It does not contact the server: a Redis that is down at
// startup makes the store pace on local state until it answers. An error
// names the key at fault, without its value.
//
// Open also sends the Redis client's own log lines (such as a connection
// pool that fails to dial while Redis is down) to log, redacted, at level
// Debug: the store already logs the fault and its end at Warn and Info,
// once each. The Redis client has one logger per process: the last Open
// sets it.
func Open(_ context.Context, c config.Coordination, log *slog.Logger) (plugin.SharedStore, error) {
	if c.Backend != config.BackendRedis {
		return nil, fmt.Errorf("coordination.backend %q: no shared store of that name (want %q)", c.Backend, config.BackendRedis)
	}
	if log == nil {
		log = slog.Default()
	}
	redis.SetLogger(redisLog{log})
	s, err := redisstore.Open(c.RedisURL, redisstore.Options{Prefix: c.KeyPrefix, Timeout: c.Timeout, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("coordination.redis_url: %w", err)
	}
	return s, nil
}

// redisLog is the Redis client's logger, writing to a slog.Logger.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, telemetry.Redact(fmt.Sprintf(format, v...)), "source", "go-redis")
}
