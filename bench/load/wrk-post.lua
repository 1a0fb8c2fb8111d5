-- wrk script: POST the body from $BENCH_BODY as JSON on every request, and print one
-- machine-readable line at the end (latencies in microseconds).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"

-- $BENCH_MAX_REQUESTS (smoke mode): after that many responses, say so on a line of its own and
-- stop; the bench then interrupts wrk, which otherwise waits out its whole -d. Unset, no
-- response() is defined, so wrk does not hand each response to Lua and the load is as measured.
local max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "")
if max_requests ~= nil then
  local responses = 0
  function response()
    responses = responses + 1
    if responses == max_requests then
      io.write("BENCH_ENOUGH\n")
      io.flush()
      wrk.thread:stop()
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%.1f,"p99_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
