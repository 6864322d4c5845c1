-- The request of bench/gateway.sh and bench/gateway-cost.sh: a POST with a small JSON body, which
-- the simulator answers with the pts success. done() prints one parseable line of results.
wrk.method = "POST"
wrk.body = '{"amount":1000,"currency":"USD","order_id":"bench-order"}'
wrk.headers["Content-Type"] = "application/json"
function done(summary, latency, _)
   local e = summary.errors
   io.write(string.format("wrk-result requests=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f non2xx=%d socket_errors=%d\n", summary.requests,
      summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
      latency:percentile(99) / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
