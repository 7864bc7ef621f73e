package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// casScript compares and sets a credential's states in one step. KEYS are
// the states (the credential's first, then limits) and last the set of
// processes. ARGV holds, per state, the version the caller's copy has, the
// state to write ("" to only check it) and its time to live in
// milliseconds; then the process's id ("" to skip the heartbeat) and how
// long a process counts as present, in milliseconds.
//
// When every state is at the caller's version, the states given are
// written, each with its version one higher, and the reply is
// {seconds, microseconds, "ok", processes}. Otherwise nothing is written and
// the reply is {seconds, microseconds, "stale", processes, i, version,
// state, …} for each state i (1-based) at another version ("0" and "" for
// one that does not exist). seconds and microseconds are the server's TIME;
// processes is the number of processes present (that sent a heartbeat in
// the last present milliseconds).
var casScript = redis.NewScript(`
local t = redis.call('TIME')
local n = #KEYS - 1
local stale = {}
for i = 1, n do
  local v = redis.call('HGET', KEYS[i], 'v') or '0'
  if v ~= ARGV[3*i-2] then
    stale[#stale+1] = i
  end
end
local me = ARGV[3*n+1]
if me ~= '' then
  local present = tonumber(ARGV[3*n+2])
  local now = tonumber(t[1])*1000 + math.floor(tonumber(t[2])/1000)
  redis.call('ZADD', KEYS[n+1], now, me)
  redis.call('ZREMRANGEBYSCORE', KEYS[n+1], '-inf', now - present)
  redis.call('PEXPIRE', KEYS[n+1], present)
end
local procs = redis.call('ZCARD', KEYS[n+1])
if #stale > 0 then
  local reply = {t[1], t[2], 'stale', procs}
  for _, i in ipairs(stale) do
    local cur = redis.call('HMGET', KEYS[i], 'v', 's')
    reply[#reply+1] = i
    reply[#reply+1] = cur[1] or '0'
    reply[#reply+1] = cur[2] or ''
  end
  return reply
end
for i = 1, n do
  local s = ARGV[3*i-1]
  if s ~= '' then
    redis.call('HINCRBY', KEYS[i], 'v', 1)
    redis.call('HSET', KEYS[i], 's', s)
    redis.call('PEXPIRE', KEYS[i], ARGV[3*i])
  end
end
return {t[1], t[2], 'ok', procs}
`)

// A write is one state of a compare-and-set: the key, the version the
// caller's copy has, and the state to write (nil to only check the
// version).
type write struct {
	key   string
	ver   int64
	state []byte
	ttl   time.Duration
}

// A current is a state that was at another version than the caller's: its
// version (0 when it does not exist) and its encoding ("" then).
type current struct {
	index int // into the writes
	ver   int64
	state string
}

// A casReply is the script's answer.
type casReply struct {
	time  time.Time // the server's clock
	ok    bool
	procs int // processes present
	stale []current
}

// cas runs casScript over writes and the processes' set procs; me is the
// process's id, or "" to skip the heartbeat.
func cas(ctx context.Context, c redis.Scripter, writes []write, procs, me string, present time.Duration) (casReply, error) {
	keys := make([]string, 0, len(writes)+1)
	args := make([]any, 0, 3*len(writes)+2)
	for _, w := range writes {
		keys = append(keys, w.key)
		args = append(args, strconv.FormatInt(w.ver, 10), w.state, max(w.ttl.Milliseconds(), 1))
	}
	keys = append(keys, procs)
	args = append(args, me, max(present.Milliseconds(), 1))
	res, err := casScript.Run(ctx, c, keys, args...).Slice()
	if err != nil {
		return casReply{}, err
	}
	return parseReply(res, len(writes))
}

// parseReply reads the script's reply to a compare-and-set of n states.
func parseReply(res []any, n int) (casReply, error) {
	bad := func(what string) (casReply, error) {
		return casReply{}, fmt.Errorf("redisstore: unexpected script reply (%s): %v", what, res)
	}
	if len(res) < 4 || (len(res)-4)%3 != 0 {
		return bad("length")
	}
	sec, err1 := strconv.ParseInt(fmt.Sprint(res[0]), 10, 64)
	usec, err2 := strconv.ParseInt(fmt.Sprint(res[1]), 10, 64)
	procs, ok := res[3].(int64)
	if err1 != nil || err2 != nil || !ok {
		return bad("time or processes")
	}
	r := casReply{time: time.Unix(sec, usec*1000), ok: res[2] == "ok", procs: int(procs)}
	for i := 4; i < len(res); i += 3 {
		idx, ok := res[i].(int64)
		if !ok || idx < 1 || int(idx) > n {
			return bad("index")
		}
		ver, err := strconv.ParseInt(fmt.Sprint(res[i+1]), 10, 64)
		state, ok := res[i+2].(string)
		if err != nil || !ok {
			return bad("state")
		}
		r.stale = append(r.stale, current{index: int(idx) - 1, ver: ver, state: state})
	}
	if r.ok == (len(r.stale) > 0) || !r.ok && res[2] != "stale" {
		return bad("status")
	}
	return r, nil
}
