-- One wrk script for every scenario, set up through environment variables:
--
--   BENCH_METHOD  GET (default), POST, PATCH, ...
--   BENCH_PATH    path and query; default: the one in the URL given to wrk
--   BENCH_TOKEN   sent as "Authorization: Bearer <token>" when set
--   BENCH_BODY    request body (JSON); "{n}" becomes a number unique to the request
--   BENCH_IDS     comma-separated ids; "{id}" in the path takes them round-robin;
--                 with BENCH_THREADS (wrk's -t) each thread keeps to its own share of
--                 them, so no two requests write the same row at once as long as there
--                 are more ids per thread than connections per thread
--
-- Every response's status is counted, and `done` prints one line "BENCH_JSON {...}" with
-- throughput, latency percentiles (µs) and the number of non-2xx responses, for
-- bench/run.py to read.

local method = os.getenv("BENCH_METHOD") or "GET"
local token = os.getenv("BENCH_TOKEN")
local body = os.getenv("BENCH_BODY")
local ids_env = os.getenv("BENCH_IDS")
local thread_count = tonumber(os.getenv("BENCH_THREADS") or "1") or 1
local path = os.getenv("BENCH_PATH")
if not path or path == "" then
  path = wrk.path
end

local headers = {}
if token and token ~= "" then
  headers["Authorization"] = "Bearer " .. token
end
if body and body ~= "" then
  headers["Content-Type"] = "application/json"
else
  body = nil
end

local ids = {}
if ids_env and ids_env ~= "" then
  for id in string.gmatch(ids_env, "[^,]+") do
    ids[#ids + 1] = id
  end
end

local threads = {}
local thread_number = 0

-- Globals below live in each thread's own Lua state.
statuses = {}
non2xx = 0
counter = 0
slot = 0

function setup(thread)
  thread:set("slot", thread_number)
  thread_number = thread_number + 1
  threads[#threads + 1] = thread
end

function init(_args)
  wrk.method = method
  wrk.path = path
  wrk.body = body
  for name, value in pairs(headers) do
    wrk.headers[name] = value
  end
end

local dynamic = (#ids > 0 and string.find(path, "{id}", 1, true) ~= nil)
  or (body ~= nil and string.find(body, "{n}", 1, true) ~= nil)

if dynamic then
  -- Defining `request` makes wrk build each request here instead of reusing one.
  function request()
    counter = counter + 1
    local this_path = path
    if #ids > 0 then
      local id = ids[((counter * thread_count + slot) % #ids) + 1]
      this_path = string.gsub(this_path, "{id}", id, 1)
    end
    local this_body = body
    if this_body ~= nil then
      this_body = string.gsub(this_body, "{n}", tostring(counter * thread_count + slot))
    end
    return wrk.format(method, this_path, nil, this_body)
  end
end

function response(status, _headers, _body)
  statuses[status] = (statuses[status] or 0) + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

local function status_json(counts)
  local parts = {}
  for status, count in pairs(counts) do
    parts[#parts + 1] = string.format('"%d":%d', status, count)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, _requests)
  local total_non2xx = 0
  local merged = {}
  for _, thread in ipairs(threads) do
    total_non2xx = total_non2xx + (thread:get("non2xx") or 0)
    for status, count in pairs(thread:get("statuses") or {}) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,'
      .. '"status_errors":%d,"non2xx":%d,"statuses":%s,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout,
    e.status, total_non2xx, status_json(merged),
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean
  ))
end
