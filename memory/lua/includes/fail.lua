-- fail(code, message): an error reply whose first word picks the Python exception
-- (memory/scripts.py, SCRIPT_ERRORS).
local function fail(code, message)
  return redis.error_reply(code .. ' ' .. message)
end
