-- wrk script for scripts/bench api: POSTs /v1/eligibility for random existing persons.
-- Keys come from the file given after `--` (insurer|symbol|number|branch|birth per line);
-- the token from BENCH_TOKEN.
local keys = {}
local token = os.getenv("BENCH_TOKEN") or ""

function init(args)
  for line in io.lines(args[1]) do
    keys[#keys + 1] = line
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1000000) + #tostring({}))
end

function request()
  local k = keys[math.random(#keys)]
  local ins, sym, num, br, birth = k:match("([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)")
  local body = string.format(
    '{"insurer_number":"%s","symbol":"%s","number":"%s","branch":"%s","birth_date":"%s"}',
    ins, sym, num, br, birth)
  return wrk.format("POST", "/v1/eligibility",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end
