-- wrk script for `make bench`: pings from callers spread over every state.
-- bench/run.py fills in the area codes of each state and the demo key authorized everywhere.
-- Requests are built once, in init, so wrk spends no more time per ping than per trivial request.
local states = {
--AREA_CODES--
}
local key = "--VENDOR_KEY--"
local requests = {}
local count = 20000
local index = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  thread:set("seed", math.random(1, 2147483647))
end

function init(args)
  math.randomseed(seed or os.time())
  for i = 1, count do
    -- A state at random, then one of its area codes: every state gets its share of the load.
    local codes = states[math.random(#states)]
    local area = codes[math.random(#codes)]
    local phone = string.format("+1%s%07d", area, math.random(0, 9999999))
    -- Consent evidence in every body, so the policies phase pings with the same bodies.
    local body = string.format(
      '{"vendorKey":"%s","phoneNumber":"%s","lead_id":"bench-%d","source":"wrk",' ..
      '"jornaya_leadid":"A1B2C3D4-E5F6-4711-8899-%012d"}',
      key, phone, i, i)
    requests[i] = wrk.format(nil, nil, nil, body)
  end
end

request = function()
  index = index % count + 1
  return requests[index]
end
