// Package redisstore is a retry.Store on Redis: every process on the same
// Redis (one server, Sentinel or Cluster, through go-redis's
// UniversalClient) and Prefix paces its calls with one state per limit, so
// that a fleet of processes on one API key acts as one client.
//
//	s, err := redisstore.Open("redis://redis.internal:6379", redisstore.Options{})
//	…
//	creds, err := retry.NewCredentials(fleetSecret) // the same in every process
//	r, err := retry.New(cfg, retry.WithStore(s), retry.WithCredentials(creds))
//	defer s.Close()
//
// # One implementation of the pacing
//
// Redis runs no pacing logic: PaceState.Book and PaceState.Observe run in
// Go, in each process, on the states as that process last read them, and
// one Lua script (EVALSHA, loaded again after NOSCRIPT) compares and sets
// them: it writes the new states only if their versions are still those the
// process read, and returns the server's TIME. When another process changed
// a state meanwhile, the same reply carries the current states, and the
// process computes again on them (a second round trip; a computation that
// then writes nothing — a place confirmed, a call refused — is answered at
// once, having been made on the states as Redis held them).
//
// In a process, one goroutine per credential (a worker) does this: the
// process's own calls never conflict with each other, and the calls that
// arrive while a round trip is out go together in the next one, so that a
// booking costs at most one round trip, and many callers share one.
// Observe returns at once: what it teaches goes to Redis with the next
// booking, at once when it is news for the fleet (a failure, a hold), or
// within 100 ms on its own (a success, which only syncs the windows).
//
// # Time
//
// Every time in Redis is the server's: each process keeps the offset of its
// clock to Redis's TIME (measured from every reply, within half a round
// trip) and of each asker's clock to its own (a Retrier may have its own,
// retry.WithClock), and translates each Ask, Observation and Verdict. Clocks
// that disagree by minutes pace as one.
//
// # What Redis holds
//
// Per credential (a provider and a Credentials ID, never a key, nor a plain
// hash of one), under one hash tag so that a Cluster keeps them in one slot
// and the script may touch them together:
//
//	{prefix}{provider/credential}:m:{model}   a hash: v (version), s (the limit's PaceState, JSON)
//	{prefix}{provider/credential}:c           the same for the credential's state (a block of
//	                                          every model, written only once it holds one)
//	{prefix}{provider/credential}:p           a sorted set: the processes seen in the last minute
//
// The tag is the credential's rather than the limit's because one booking
// reads the limit's state and its credential's (a billing block holds every
// model of the key): in one slot, that is one script. Every key has a time
// to live, refreshed on write: 10 minutes past the last instant its state
// names (a hold, a window full again, a block's end, capped at 48 h), so
// that limits no longer used expire as MemoryStore forgets idle states.
//
// # Faults
//
// Each round trip is bounded by Options.Timeout (default 50 ms). A failure
// (unreachable, too slow, restarted, failing over) opens the store's
// breaker: the call is answered from local state, and so is every later
// one, with no Redis wait, until a background probe (PING and the script
// loaded, every 250 ms) finds Redis again. Local state is the states as
// last read, the limit's windows refilling at a share of their rate:
// 1/(1.25·N), N the processes of the credential seen in the last minute (1
// alone: the whole rate); the provider's counts, which are the fleet's, do
// not reset that share. Verdicts from local state are retry.Verdict.Local.
// When Redis answers again, each process folds what it learned meanwhile
// into the shared states (a later hold, emptier windows, a block) and
// paces with the fleet again; a state Redis lost (a restart) is written
// back from the process's own. No call fails because of Redis.
package redisstore
