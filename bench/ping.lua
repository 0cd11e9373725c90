-- wrk script for `make bench`: pings from callers spread over every state.
-- bench/run.py fills in the area codes of each state and the demo key authorized everywhere.
local states = {
--AREA_CODES--
}
local key = "--VENDOR_KEY--"
local counter = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  thread:set("seed", math.random(1, 2147483647))
end

function init(args)
  math.randomseed(seed or os.time())
end

request = function()
  -- A state at random, then one of its area codes: every state gets its share of the load.
  local codes = states[math.random(#states)]
  local area = codes[math.random(#codes)]
  counter = counter + 1
  local phone = string.format("+1%s%07d", area, math.random(0, 9999999))
  local body = string.format(
    '{"vendorKey":"%s","phoneNumber":"%s","lead_id":"bench-%d","source":"wrk"}',
    key, phone, counter)
  return wrk.format(nil, nil, nil, body)
end
