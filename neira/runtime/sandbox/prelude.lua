-- The trusted half of the script sandbox (neira/runtime/sandbox/lua.py). It runs once in a fresh Lua state,
-- keeps what it needs as locals, strips the global table, and answers the function that runs one script:
-- the script gets an allow-listed environment, and a count hook (fuel and the wall clock) is set before its
-- chunk runs and never cleared (the state is thrown away after the run), so every line of untrusted code runs
-- under it: the answer's encoding into JSON and any metamethod Python's side may touch included. `note` tells
-- Python which limit was hit; `clock` is Python's monotonic clock.
local clock, note, FUEL, EVERY, DEADLINE, OUTPUT = ...
local sethook, load, pcall, error, type, next, select = debug.sethook, load, pcall, error, type, next, select
local rawget, rawlen, rawequal, setmetatable, getmetatable = rawget, rawlen, rawequal, setmetatable, getmetatable
local format, gsub, byte, concat, mtype, huge = string.format, string.gsub, string.byte, table.concat, math.type, math.huge
local co_create, co_resume, co_close = coroutine.create, coroutine.resume, coroutine.close

local tripped = nil -- "fuel" | "time" | "output" once a limit is hit: every error from then on goes up
local used = 0
local function hook()
  if tripped == nil then
    used = used + EVERY
    if used > FUEL then tripped = "fuel" elseif clock() > DEADLINE then tripped = "time" end
    if tripped == nil then return end
    note(tripped)
  end
  sethook(hook, "", 1) -- from now on every instruction errors: a handler that swallows it gets nowhere
  error("sandbox limit", 0)
end

local function rethrow(ok, ...)
  if not ok and (tripped ~= nil or rawequal((...), "not enough memory")) then error((...), 0) end
  return ok, ...
end

local function copy(t, without)
  local out = {}
  for k, v in next, t do if not (without and without[k]) then out[k] = v end end
  return out
end

string.dump = nil -- the string metatable's __index is this very table
local env = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, rawequal = rawequal,
  rawget = rawget, rawlen = rawlen, rawset = rawset, select = select, tonumber = tonumber, tostring = tostring,
  type = type, getmetatable = getmetatable, _VERSION = _VERSION,
  math = copy(math), string = copy(string), table = copy(table), utf8 = copy(utf8),
  coroutine = copy(coroutine),
}
env.pcall = function(...) return rethrow(pcall(...)) end
env.xpcall = function(f, handler, ...)
  -- a message handler runs inside the raising call: for the hook's own error that is with hooks off, so
  -- once a limit is hit the script's handler is skipped
  return rethrow(xpcall(f, function(e)
    if tripped ~= nil then return e end
    return handler(e)
  end, ...))
end
-- debug.sethook hooks one thread: every coroutine gets the hook when it is made
local function create(f)
  local co = co_create(f)
  sethook(co, hook, "", tripped == nil and EVERY or 1)
  return co
end
local function unwrap(ok, ...)
  if not ok then error((...), 0) end
  return ...
end
env.coroutine.create = create
env.coroutine.wrap = function(f)
  local co = create(f)
  return function(...) return unwrap(co_resume(co, ...)) end
end
env.coroutine.resume = function(...) return rethrow(co_resume(...)) end
env.coroutine.close = function(...) return rethrow(co_close(...)) end
env.setmetatable = function(t, mt)
  -- finalizers run with hooks off: a metatable with __gc is refused (one added later is never called)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then error("__gc metamethods are not available", 2) end
  return setmetatable(t, mt)
end
env._G = env

for _, name in next, {"debug", "io", "os", "package", "require", "load", "loadfile", "dofile", "loadstring",
                      "collectgarbage", "python", "print"} do
  _G[name] = nil
end

-- the answer as JSON, walked raw (no __index / __pairs), within the output limit
local ESC = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t'}
local function escape(c) return ESC[c] or format("\\u%04x", byte(c)) end
local function encoder()
  local parts, size = {}, 0
  local function put(s)
    size = size + #s
    if size > OUTPUT then tripped = "output"; note(tripped); error("sandbox limit", 0) end
    parts[#parts + 1] = s
  end
  local function value(v, depth)
    local t = type(v)
    if t == "string" then put('"' .. gsub(v, '[%c"\\]', escape) .. '"')
    elseif t == "boolean" then put(v and "true" or "false")
    elseif t == "number" then
      if v ~= v or v == huge or v == -huge then error("the answer holds a number JSON cannot carry", 0) end
      put(mtype(v) == "integer" and format("%d", v) or format("%.17g", v))
    elseif t == "table" then
      if depth > 64 then error("the answer is nested deeper than 64 levels", 0) end
      local n = rawlen(v)
      if n > 0 then
        put("[")
        for i = 1, n do if i > 1 then put(",") end value(rawget(v, i), depth + 1) end
        put("]")
      else
        put("{")
        local first = true
        for k, item in next, v do
          if type(k) ~= "string" then error("an object in the answer has a key that is not a string", 0) end
          if not first then put(",") end
          first = false
          value(k, depth + 1); put(":"); value(item, depth + 1)
        end
        put("}")
      end
    elseif v == nil then put("null")
    else error("the answer holds a " .. t .. ", which JSON cannot carry", 0) end
  end
  return function(v) value(v, 0); return concat(parts) end
end

return function(source, input)
  local chunk, problem = load(source, "=script", "t", env)
  if chunk == nil then error(problem, 0) end
  sethook(hook, "", EVERY) -- never cleared: the state is thrown away after this one run
  chunk()
  local run = rawget(env, "run")
  if type(run) ~= "function" then error("the script defines no function run(input)", 0) end
  return encoder()(run(input))
end
