"""The Lua scripts that ringq.redis.StreamQueue runs on the server, one round trip each."""

# Atomic "add as many as fit": KEYS[1] the stream; ARGV: group, maxlen, all_or_nothing
# ("1" or "0"), field name, then the encoded items. Returns how many were added.
BOUNDED_XADD = """
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
local found, lag, last = false, false, '0-0'
for _, g in ipairs(groups) do
  local name, glag, glast
  for i = 1, #g, 2 do
    local k = g[i]
    if k == 'name' then name = g[i + 1]
    elseif k == 'lag' then glag = g[i + 1]
    elseif k == 'last-delivered-id' then glast = g[i + 1] end
  end
  if name == ARGV[1] then found = true; lag = glag; last = glast end
end
if not found then
  return redis.error_reply('NOGROUP no consumer group ' .. ARGV[1] .. ' on stream ' .. KEYS[1])
end
local maxlen = tonumber(ARGV[2])
if not lag then
  lag = #redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', maxlen)
end
local n = #ARGV - 4
local room = maxlen - lag
if room < n and ARGV[3] == '1' then return 0 end
if room > n then room = n end
for i = 1, room do redis.call('XADD', KEYS[1], '*', ARGV[4], ARGV[4 + i]) end
if room < 0 then return 0 end
return room
"""

# Unbounded put: KEYS[1] the stream; ARGV: field name, then the encoded items. One
# script call costs the client far less than a pipeline of XADDs (one command to
# pack, one reply to parse), and a chunk goes in atomically.
XADD_MANY = """
for i = 2, #ARGV do redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[i]) end
return #ARGV - 1
"""
