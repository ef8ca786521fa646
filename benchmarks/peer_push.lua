-- The pushers of bench_peer.py's saturation run against Vigil (peer_vigil.py), for wrk:
--   wrk -s peer_push.lua URL -- TOKEN BATCH INSTANCES METRIC=VALUE ...
-- Every request is a push of BATCH samples, built as it is sent: the given metrics at
-- successive instants 50 ms apart, newest first, the newest being the moment of sending,
-- from one of INSTANCES services ("load-0", "load-1", ...) in turn.
-- wrk is C and holds many connections on one thread, so the load generator leaves Vigil the
-- CPU that a Python load generator would take from it on a small machine.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_usec; } vigil_bench_timeval;
int gettimeofday(vigil_bench_timeval *tv, void *tz);
]]

local clock = ffi.new("vigil_bench_timeval")
local headers, batch
local prefixes = {} -- per instance, the body up to its samples
local heads = {} -- per metric, its sample's text up to the time
local sent = 0

function init(args)
  batch = tonumber(args[2])
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. args[1] }
  for k = 1, tonumber(args[3]) do
    prefixes[k] = '{"instance":"load-' .. (k - 1) .. '","samples":['
  end
  for k = 4, #args do
    local metric, value = args[k]:match("^(.-)=(.*)$")
    heads[#heads + 1] = '{"metric":"' .. metric .. '","value":' .. value .. ',"time":"'
  end
end

local function rfc3339(micros)
  local seconds = math.floor(micros / 1000000)
  return os.date("!%Y-%m-%dT%H:%M:%S", seconds) .. string.format(".%06dZ", micros - seconds * 1000000)
end

function request()
  ffi.C.gettimeofday(clock, nil)
  local now = tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_usec)
  local parts, n, step = {}, 0, 0
  while n < batch do
    local tail = rfc3339(now - step * 50000) .. '"}'
    for _, head in ipairs(heads) do
      if n == batch then break end
      n = n + 1
      parts[n] = head .. tail
    end
    step = step + 1
  end
  sent = sent + 1
  local prefix = prefixes[sent % #prefixes + 1]
  return wrk.format("POST", nil, headers, prefix .. table.concat(parts, ",") .. "]}")
end
