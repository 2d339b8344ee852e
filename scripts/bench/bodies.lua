-- wrk script for scripts/bench.sh: POST one body per line of the file BENCH_BODIES to BENCH_PATH (content type
-- BENCH_CTYPE); without BENCH_BODIES, GET BENCH_PATH. Thread t of n sends lines t, t+n, t+2n, ... and cycles; with
-- BENCH_ONCE=1 each line is sent once (pools of single-use requests): a thread whose share is spent lets its
-- connections idle and stops once every one of its requests has been answered.
-- wrk's own duration is always the -d it was given, so the time is measured here (LuaJIT ffi, CLOCK_MONOTONIC):
-- from each thread's first request to its last answer, the run's span from the earliest start to the latest end.
-- wrk calls request() once on thread 1's state to check the script, so one line of each pool is never sent.
-- done() prints one line, "RESULT <2xx answers> <other answers and socket errors> <seconds> <p50 ms> <p99 ms>
-- <statuses of the other answers, as STATUSxCOUNT,... or ->".
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local path = os.getenv("BENCH_PATH") or "/"
local ctype = os.getenv("BENCH_CTYPE") or "application/x-www-form-urlencoded"
local file = os.getenv("BENCH_BODIES")
local once = os.getenv("BENCH_ONCE") == "1"
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")

local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local requests, n, sent, answered, ok, first, last = {}, 0, 0, 0, 0, nil, nil
local other = {} -- status -> count, of the answers that were not 2xx
function init(_)
  local tid = tonumber(wrk.thread:get("tid")) or 0
  if not file or file == "" then
    requests[1], n = wrk.format("GET", path), 1
    return
  end
  local k = 0
  for line in io.lines(file) do
    if k % nthreads == tid and line ~= "" then
      n = n + 1
      requests[n] = wrk.format("POST", path, { ["Content-Type"] = ctype }, line)
    end
    k = k + 1
  end
end

function delay()
  if once and sent >= n then
    return 60000 -- this thread's share is spent: idle until it stops
  end
  return 0
end

function request()
  if first == nil then
    first = now()
    wrk.thread:set("first", first)
  end
  sent = sent + 1
  local i = sent
  if i > n then
    i = once and n or ((i - 1) % n) + 1
  end
  return requests[i]
end

function response(status, _, _)
  answered = answered + 1
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    other[status] = (other[status] or 0) + 1
    local parts = {}
    for k, v in pairs(other) do
      table.insert(parts, k .. "x" .. v)
    end
    wrk.thread:set("other", table.concat(parts, ","))
  end
  last = now()
  wrk.thread:set("last", last)
  wrk.thread:set("ok", ok)
  wrk.thread:set("answered", answered)
  if once and answered >= n then
    wrk.thread:stop()
  end
end

function done(summary, latency, _)
  local t0, t1, good, all, statuses = nil, nil, 0, 0, {}
  for _, t in ipairs(threads) do
    local f, l = t:get("first"), t:get("last")
    if f and (t0 == nil or f < t0) then t0 = f end
    if l and (t1 == nil or l > t1) then t1 = l end
    good = good + (tonumber(t:get("ok")) or 0)
    all = all + (tonumber(t:get("answered")) or 0)
    local o = t:get("other")
    if o and o ~= "" then
      table.insert(statuses, o)
    end
  end
  local e = summary.errors
  local bad = all - good + e.connect + e.read + e.write + e.timeout
  io.write(string.format("RESULT %d %d %.6f %.3f %.3f %s\n", good, bad, (t1 or 1) - (t0 or 0),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, #statuses > 0 and table.concat(statuses, ",") or "-"))
end
