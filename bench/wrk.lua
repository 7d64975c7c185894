-- wrk's requests for bench/load.py: POST one JSON body, read from a file.
--   wrk ... -s bench/wrk.lua URL -- BODY_FILE [AUTHORIZATION]
-- A body containing {n} gets a fresh number per request (1, 2, ...), so that titles
-- stay unique; run one thread (-t1), whose counter is the only one.
-- When done, prints one line "BENCH-RESULT {json}" with the raw figures.
-- Ref: https://github.com/wg/wrk/blob/master/SCRIPTING

local template, fixed
local counter = 0

function init(args)
  local file = assert(io.open(args[1], "rb"))
  template = file:read("*a")
  file:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if args[2] ~= nil and args[2] ~= "" then
    wrk.headers["Authorization"] = args[2]
  end
  if not template:find("{n}", 1, true) then
    fixed = wrk.format(nil, nil, nil, template)
  end
end

function request()
  if fixed then
    return fixed
  end
  counter = counter + 1
  return wrk.format(nil, nil, nil, (template:gsub("{n}", tostring(counter))))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
