-- wrk script for bench/serve.sh: POST /v1/normalize round robin over a request corpus, or GET /healthz.
--
--   wrk -s bench/normalize.lua URL -- mode=normalize corpus=bench/normalize-requests.ndjson
--   wrk -s bench/normalize.lua URL -- mode=healthz
--   ... mode=normalize corpus=... rate=R threads=T connections=C     (paced at about R req/s in all)
--
-- Why healthz goes through this script too: a script with a request() function makes wrk call into Lua
-- for every request, which costs client CPU. On a 2-core machine wrk and the server share the CPU, so
-- the baseline must pay the same client-side cost, or the ratio would charge wrk's Lua to the server.
-- Every request string is therefore formatted once in init() and request() only picks one.
--
-- Pacing (rate=): wrk has no fixed-rate mode, only a delay() hook: before each request on a connection,
-- wrk waits delay() ms (whole ms; the wait is not counted in the latency). The plain recipe, a fixed
-- delay of connections * 1000 / rate ms per connection, undershoots badly at high rates: each cycle
-- is delay + latency + timer slack, and at ~1 ms delays that slack is as large as the delay (measured
-- here: 65% of the target). So each thread keeps a schedule instead: its k-th request is due at
-- start + k * threads * 1000 / rate ms, and delay() returns the time left until the next free slot,
-- read from a monotonic clock through LuaJIT's ffi (wrk embeds LuaJIT). Rounding errors then do not
-- accumulate, and the achieved rate is the target as long as the server keeps up. Without ffi it
-- falls back to the fixed delay, dithered so its average is exact.
--
-- done() prints one `wrk-result key=value ...` line for serve.sh and exits 1 when any response was not
-- 2xx/3xx or any socket error happened: a fast error page must never count as throughput.
--
-- Lua state is per thread: setup() runs in the main state, init()/request()/delay() in each thread's
-- own state (hence the corpus is loaded once per thread), done() in the main state again, where only
-- wrk's aggregated summary is visible (not the threads' globals).
-- Set BENCH_SHOW_ERRORS=1 to print the first few failing responses of each thread (this defines a
-- response() hook, which makes wrk parse every body, so it is off by default).

local threads = 0

function setup(thread)
   threads = threads + 1
   thread:set("id", threads)
end

local function parse_args(args)
   local opts = {}
   for _, a in ipairs(args) do
      local k, v = a:match("^([%w_]+)=(.*)$")
      if not k then
         error("normalize.lua: argument " .. a .. " is not key=value")
      end
      opts[k] = v
   end
   return opts
end

local requests = {}
local next_index = 1

-- Monotonic milliseconds, or nil without LuaJIT's ffi.
local now_ms = nil
do
   local ok, ffi = pcall(require, "ffi")
   if ok then
      ffi.cdef [[
         typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
         int clock_gettime(int clock_id, bench_timespec *tp);
      ]]
      local ts = ffi.new("bench_timespec")
      local CLOCK_MONOTONIC = 1
      now_ms = function()
         ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
         return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
      end
   end
end

-- Scheduled pacing: the thread's next free slot, interval_ms apart. Timer slack makes the thread fall
-- a little behind all the time, so missed slots are caught up (back to back, at most as many at once
-- as the thread has connections), but only those of the last MAX_LAG_MS: after a real stall the
-- schedule restarts rather than bursting to make up for it.
local MAX_LAG_MS = 50
local interval_ms, next_due = nil, nil
local function scheduled_delay()
   local now = now_ms()
   next_due = math.max(next_due or now, now - MAX_LAG_MS)
   local wait = next_due - now
   next_due = next_due + interval_ms
   return wait > 0 and math.floor(wait + 0.5) or 0
end

-- Fallback pacing: a fixed per-connection delay, dithered to whole milliseconds.
local fixed_ms, carry = nil, 0
local function fixed_delay()
   carry = carry + fixed_ms
   local whole = math.floor(carry)
   carry = carry - whole
   return whole
end

function init(args)
   local opts = parse_args(args)
   local headers = { ["Host"] = wrk.headers["Host"] }
   if opts.mode == "healthz" then
      requests[1] = wrk.format("GET", "/healthz", headers, nil)
   elseif opts.mode == "normalize" then
      assert(opts.corpus, "normalize.lua: mode=normalize needs corpus=PATH")
      local file = assert(io.open(opts.corpus, "r"))
      headers["Content-Type"] = "application/json"
      for line in file:lines() do
         if line ~= "" then
            -- wrk.format sets Content-Length from the byte length (UTF-8 safe).
            requests[#requests + 1] = wrk.format("POST", "/v1/normalize", headers, line)
         end
      end
      file:close()
      assert(#requests > 0, "normalize.lua: empty corpus " .. opts.corpus)
   else
      error("normalize.lua: mode must be normalize or healthz, not " .. tostring(opts.mode))
   end
   -- Threads start at different points of the corpus so they do not send the same case in lockstep.
   next_index = ((id or 1) - 1) * 97 % #requests + 1
   if opts.rate then
      local rate, nthreads, connections = tonumber(opts.rate), tonumber(opts.threads), tonumber(opts.connections)
      assert(rate and rate > 0 and nthreads and connections, "normalize.lua: pacing needs rate=, threads=, connections=")
      interval_ms = nthreads * 1000 / rate
      fixed_ms = connections * 1000 / rate
      -- wrk paces only when a global delay() exists, and looks for it after init(), so it is defined
      -- here, only when asked for.
      delay = now_ms and scheduled_delay or fixed_delay
   end
end

function request()
   local r = requests[next_index]
   next_index = next_index % #requests + 1
   return r
end

if os.getenv("BENCH_SHOW_ERRORS") == "1" then
   local shown = 0
   function response(status, _, body)
      if (status < 200 or status > 399) and shown < 5 then
         shown = shown + 1
         io.stderr:write(string.format("non-2xx: %d %s\n", status, body or ""))
      end
   end
end

function done(summary, latency, _)
   local e = summary.errors
   local seconds = summary.duration / 1e6
   local socket_errors = e.connect + e.read + e.write + e.timeout
   io.write(string.format(
      "wrk-result requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d"
         .. " socket_errors=%d connect=%d read=%d write=%d timeout=%d\n",
      summary.requests, seconds, summary.requests / seconds,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
      e.status, socket_errors, e.connect, e.read, e.write, e.timeout))
   if e.status > 0 or socket_errors > 0 then
      io.write("wrk-result FAILED: non-2xx/3xx responses or socket errors during the run\n")
      io.stdout:flush()
      os.exit(1)
   end
end
