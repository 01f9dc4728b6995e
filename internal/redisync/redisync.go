// Package redisync shares rate-limit buckets between ConnX instances
// through Redis: it is the ratelimit.Store behind rateLimit.redis.
//
// Nothing here runs on an event loop or per request. Each instance decides
// every request from its own copy of each bucket (ratelimit.Limiter.Decide,
// unchanged and allocation-free); one goroutine per Redis wakes every
// SyncInterval, collects how many requests each bucket allowed since the
// last round, and sends all of them in one pipelined round trip: a Lua
// script adds each count to the shared bucket (a GCRA theoretical arrival
// time kept in Redis, in Redis's own clock) and returns how far it is from
// full, which becomes the local copy. See docs/ratelimit.md for the
// accuracy this gives and docs/design.md for why it was chosen.
//
// When Redis cannot be reached (down, slower than Timeout, restarting),
// every Limiter falls back to its local share of the limit, 1/N of the
// rate and burst, where N is the number of instances last seen in Redis,
// and the next successful round restores the shared limit. Each change is
// logged once.
package redisync

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/redis/rueidis"

	"github.com/connx/connx/internal/ratelimit"
)

// Defaults of Options' zero fields, as config documents them.
const (
	DefaultPrefix       = "connx:"
	DefaultSyncInterval = 50 * time.Millisecond
	DefaultTimeout      = 250 * time.Millisecond
)

// batch is the most buckets one script call updates: Redis runs a script
// without serving anything else, so calls are kept short (about 1 µs per
// bucket), and the calls of one round go out together in one pipeline.
const batch = 256

// Options say which Redis to use and how. The field order is that of
// config.RateLimitRedis, so one converts to the other.
type Options struct {
	// Address is "host:port". Empty means no Redis (For returns nil).
	Address string
	// Username and Password authenticate (AUTH); both empty: none.
	Username string
	Password string
	// DB is the database index (SELECT), >= 0.
	DB int
	// Prefix starts every key ConnX writes; fleets with different
	// prefixes do not share limits. Default DefaultPrefix.
	Prefix string
	// SyncInterval is the time between rounds. Default
	// DefaultSyncInterval.
	SyncInterval time.Duration
	// Timeout bounds connecting and each round trip; a round that takes
	// longer counts as Redis being unreachable. Default DefaultTimeout.
	Timeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// Status is what a Client reports for metrics and logs.
type Status struct {
	// Active is set while at least one Limiter uses the Client.
	Active bool
	// Up is set while rounds succeed; false before the first one.
	Up bool
	// Instances is the number of ConnX instances last seen sharing this
	// Redis (this one included), at least 1.
	Instances int
	// Syncs and Failures count rounds since the Client was made.
	Syncs, Failures uint64
}

// Client shares the buckets of any number of Limiters through one Redis.
// It is a ratelimit.Store; its methods are safe for concurrent use. A
// Client runs one goroutine, and one Redis connection, while a Limiter
// uses it; both stop once none does (Limiters are held weakly), and start
// again at the next Join.
type Client struct {
	opts Options
	id   string // this instance in the instances set
	log  *slog.Logger

	mu      sync.Mutex
	parts   []weak.Pointer[ratelimit.Shared]
	running bool
	stop    chan struct{} // closed by Close
	done    chan struct{} // closed when the goroutine ends
	state   int           // unknown, up or down; written by the goroutine
	share   int           // what parts are set to: 1 while up, instances while down

	afterRound func(error) // tests: called after each round, on the goroutine

	up        atomic.Bool
	instances atomic.Int64
	syncs     atomic.Uint64
	failures  atomic.Uint64
}

const (
	stateUnknown = iota
	stateUp
	stateDown
)

var _ ratelimit.Store = (*Client)(nil)

// New returns a Client for o; it connects at the first Join. log receives
// one line per change between Redis reachable and unreachable; nil is
// slog.Default(). Most code wants For, which shares Clients.
func New(o Options, log *slog.Logger) *Client {
	if log == nil {
		log = slog.Default()
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	c := &Client{opts: o.withDefaults(), id: hex.EncodeToString(id[:]), log: log, stop: make(chan struct{}), share: 1}
	c.instances.Store(1)
	return c
}

// Join starts sharing s; see ratelimit.Store. If Redis is known to be
// unreachable, s starts at its local share at once.
func (c *Client) Join(s *ratelimit.Shared) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.SetShare(c.share)
	c.parts = append(c.parts, weak.Make(s))
	select {
	case <-c.stop:
		return // closed
	default:
	}
	if !c.running {
		c.running = true
		c.done = make(chan struct{})
		go c.run(c.done)
	}
}

// Close stops c's goroutine and connection for good, and waits for them.
// Limiters that use c then keep their last state: the shared limit as of
// the last round, or their local share.
func (c *Client) Close() {
	c.mu.Lock()
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	done := c.done
	c.mu.Unlock()
	if done != nil {
		<-done
	}
}

// Status returns c's state now.
func (c *Client) Status() Status {
	c.mu.Lock()
	active := c.running
	c.mu.Unlock()
	return Status{Active: active, Up: c.up.Load(), Instances: int(c.instances.Load()),
		Syncs: c.syncs.Load(), Failures: c.failures.Load()}
}

// live returns the Shared values still in use, dropping the others. With
// none left it marks the goroutine stopped, under the same lock as Join
// checks it, and returns nil.
func (c *Client) live(dst []*ratelimit.Shared) []*ratelimit.Shared {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.parts[:0]
	for _, w := range c.parts {
		if s := w.Value(); s != nil && !s.Retired() {
			kept = append(kept, w)
			dst = append(dst, s)
		}
	}
	clear(c.parts[len(kept):])
	c.parts = kept
	if len(dst) == 0 {
		c.running = false
	}
	return dst
}

// run is the Client's goroutine: one round per SyncInterval while any
// Limiter uses c.
func (c *Client) run(done chan struct{}) {
	defer close(done)
	var r round
	r.c = c
	defer r.close()
	t := time.NewTicker(c.opts.SyncInterval)
	defer t.Stop()
	var parts []*ratelimit.Shared
	for {
		select {
		case <-c.stop:
			c.mu.Lock()
			c.running = false
			c.mu.Unlock()
			return
		case <-t.C:
		}
		parts = c.live(parts[:0])
		if len(parts) == 0 {
			return
		}
		err := r.sync(parts)
		clear(parts) // hold them only during a round
		c.setState(err)
		if c.afterRound != nil {
			c.afterRound(err)
		}
	}
}

// setState records the outcome of a round, logs a change and sets every
// Limiter's share.
func (c *Client) setState(err error) {
	if err == nil {
		c.syncs.Add(1)
	} else {
		c.failures.Add(1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := int(c.instances.Load())
	switch {
	case err == nil && c.state != stateUp:
		c.state = stateUp
		c.up.Store(true)
		c.log.Info("rate limits shared through Redis", "address", c.opts.Address, "db", c.opts.DB, "instances", n)
	case err != nil && c.state != stateDown:
		c.state = stateDown
		c.up.Store(false)
		c.log.Warn("Redis unreachable: each instance limits to its own share until it is back",
			"address", c.opts.Address, "db", c.opts.DB, "error", err.Error(), "instances", n,
			"share", "1/"+strconv.Itoa(n))
	}
	share := 1
	if c.state == stateDown {
		share = n
	}
	if share != c.share {
		c.share = share
		for _, w := range c.parts {
			if s := w.Value(); s != nil {
				s.SetShare(share)
			}
		}
	}
}

// round holds what the goroutine reuses from one round to the next.
type round struct {
	c     *Client
	rc    rueidis.Client // nil until connected
	items [][]ratelimit.SyncItem
	calls []call
	key   []byte
}

// call is one script call of a round: the items of parts[part] it covers.
type call struct {
	part     int
	from, to int
	keys     []string
	args     []string
}

func (r *round) close() {
	if r.rc != nil {
		r.rc.Close()
		r.rc = nil
	}
}

// sync runs one round for parts: collect, send, apply.
func (r *round) sync(parts []*ratelimit.Shared) error {
	o := &r.c.opts
	for len(r.items) < len(parts) {
		r.items = append(r.items, nil)
	}
	// Collect first, whatever happens next: counts of a failed round are
	// dropped, so that an outage's requests are not billed at once when
	// Redis is back.
	for i, s := range parts {
		r.items[i] = s.Collect(r.items[i][:0])
	}
	if r.rc == nil {
		rc, err := rueidis.NewClient(rueidis.ClientOption{
			InitAddress:       []string{o.Address},
			Username:          o.Username,
			Password:          o.Password,
			SelectDB:          o.DB,
			Dialer:            netDialer(o.Timeout),
			ConnWriteTimeout:  o.Timeout,
			DisableCache:      true, // no client-side caching: nothing is read twice
			DisableRetry:      true, // a round is not repeated; the next one follows
			ForceSingleClient: true,
			ClientName:        "connx-ratelimit",
		})
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		r.rc = rc
	}
	r.plan(parts)
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	res := r.rc.DoMulti(ctx, r.commands(false)...)
	if err, ok := rueidis.IsRedisErr(res[0].Error()); ok && err.IsNoScript() {
		// Redis lost its script cache (it restarted): send the scripts.
		res = r.rc.DoMulti(ctx, r.commands(true)...)
	}
	n, err := res[0].AsInt64()
	if err != nil {
		return err
	}
	r.c.instances.Store(max(n, 1))
	for ci, cl := range r.calls {
		ds, err := res[ci+1].AsIntSlice()
		if err != nil {
			return err
		}
		if len(ds) != cl.to-cl.from {
			return errors.New("redis: short script reply")
		}
		items := r.items[cl.part][cl.from:cl.to]
		for j := range items {
			items[j].Deficit = time.Duration(ds[j])
		}
	}
	for i, s := range parts {
		s.Apply(r.items[i])
	}
	return nil
}

// plan splits the collected items into script calls of at most batch
// buckets, with their keys and arguments.
func (r *round) plan(parts []*ratelimit.Shared) {
	o := &r.c.opts
	r.calls = r.calls[:0]
	for pi, s := range parts {
		items := r.items[pi]
		for from := 0; from < len(items); from += batch {
			to := min(from+batch, len(items))
			cl := call{part: pi, from: from, to: to}
			for _, it := range items[from:to] {
				r.key = append(r.key[:0], o.Prefix...)
				r.key = append(r.key, "rl:"...)
				r.key = append(r.key, s.Name()...)
				if it.Global {
					r.key = append(r.key, ":global"...)
				} else {
					r.key = append(r.key, ':')
					r.key = hex.AppendEncode(r.key, it.Key[:])
				}
				cl.keys = append(cl.keys, string(r.key))
				cl.args = append(cl.args, strconv.FormatInt(it.Count, 10),
					strconv.FormatFloat(float64(it.Interval)/1e3, 'g', -1, 64))
			}
			r.calls = append(r.calls, cl)
		}
	}
}

// commands builds the round's pipeline: the heartbeat, then the calls.
// eval sends the scripts' text instead of their SHA-1.
func (r *round) commands(eval bool) rueidis.Commands {
	o := &r.c.opts
	b := r.rc.B()
	window := max(2*time.Second, 10*o.SyncInterval)
	cmds := make(rueidis.Commands, 0, 1+len(r.calls))
	script := func(s *luaScript, keys, args []string) rueidis.Completed {
		if eval {
			return b.Eval().Script(s.src).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
		}
		return b.Evalsha().Sha1(s.sha).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
	}
	cmds = append(cmds, script(&heartbeat, []string{o.Prefix + "instances"},
		[]string{r.c.id, strconv.FormatInt(window.Milliseconds(), 10)}))
	for _, cl := range r.calls {
		cmds = append(cmds, script(&take, cl.keys, cl.args))
	}
	return cmds
}

// luaScript is a script and its SHA-1, for EVALSHA.
type luaScript struct{ src, sha string }

func newScript(src string) luaScript {
	sum := sha1.Sum([]byte(src))
	return luaScript{src: src, sha: hex.EncodeToString(sum[:])}
}

// take adds the counts of one instance to shared GCRA buckets and returns
// how far each is from full, in nanoseconds. KEYS are the buckets; ARGV
// has two values per bucket: the requests allowed since the last round,
// and the bucket's interval in microseconds. A bucket's value is its
// theoretical arrival time in microseconds of Redis's clock (TIME), so
// instances' clocks never meet; it expires a second after it is full
// again, which is the same as a full bucket. A bucket is never capped:
// requests the fleet allowed beyond it are debt, repaid before any
// instance allows more.
var take = newScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i = 1, #KEYS do
  local n = tonumber(ARGV[2*i-1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or 0) or 0
  if tat < now then tat = now end
  if n > 0 then
    tat = tat + n * tonumber(ARGV[2*i])
    redis.call('SET', KEYS[i], string.format('%.17g', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
  end
  out[i] = math.floor((tat - now) * 1000)
end
return out
`)

// heartbeat records this instance (ARGV[1]) as alive in the sorted set
// KEYS[1] and returns how many instances were seen within the last
// ARGV[2] milliseconds.
var heartbeat = newScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('PEXPIRE', KEYS[1], 2 * window)
return redis.call('ZCARD', KEYS[1])
`)
