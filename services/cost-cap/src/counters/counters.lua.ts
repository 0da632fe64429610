/**
 * The Redis side of admission: Lua scripts run atomically by Redis, so check-and-hold cannot interleave.
 * decideAdmission() in libs/domain/src/admission.ts is the reference of RESERVE (an integration test
 * compares the two on random cases).
 *
 * Layout (every key under the service's prefix):
 *   epoch           random id of the current counter generation; absent = counters lost, rebuild first
 *   run:<tenant>:<run>   hash tc/tr (tokens committed/reserved), cc/cr (cost), ec/er (external), stop
 *   day:<tenant>:<day>   hash cc/cr (cost of the tenant-day)
 *   resv:<id>            hash t/c/e held by one reservation, run and day keys it holds on
 *   resv-expiry          sorted set of open reservation ids by expiry (ms)
 *   applied:<entry>      the epoch in which a ledger entry was added (so a retried apply adds nothing)
 *
 * Every script refuses to work (returns REBUILD) without an epoch: after Redis lost its data nothing is
 * counted or admitted until the counters are rebuilt from PostgreSQL. Amounts are integers (micro-USD,
 * tokens) below 2^53, exact in Lua numbers; they are formatted with %d because tostring() would write
 * large ones in exponent notation.
 */

const COMMON = `
local function fmt(n) return string.format('%d', n) end
`;

/**
 * KEYS: epoch, run, day, resv, resv-expiry
 * ARGV: id, kind (llm|charge), tokens, money, partial (1|0), limit run_tokens, run_cost, run_external,
 *       tenant_cost ('' = none), expires_at ms, run ttl s, day ttl s, resv ttl s
 * Returns: status, dimension (1..4, 5 = wall time, 0 = none), granted money, then committed and reserved
 * of run_tokens, run_cost, run_external, tenant_cost (as held after the call), and the epoch it ran in.
 */
export const RESERVE = `${COMMON}
local epoch = redis.call('GET', KEYS[1])
if not epoch then return {'REBUILD'} end
local r = redis.call('HMGET', KEYS[2], 'tc', 'tr', 'cc', 'cr', 'ec', 'er', 'stop')
local d = redis.call('HMGET', KEYS[3], 'cc', 'cr')
local c = {tonumber(r[1]) or 0, tonumber(r[3]) or 0, tonumber(r[5]) or 0, tonumber(d[1]) or 0}
local h = {tonumber(r[2]) or 0, tonumber(r[4]) or 0, tonumber(r[6]) or 0, tonumber(d[2]) or 0}
local lim = {tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])}
local charge = ARGV[2] == 'charge'
local tokens = tonumber(ARGV[3])
local money = tonumber(ARGV[4])
local function reply(status, dim, granted)
  return {status, fmt(dim), fmt(granted), fmt(c[1]), fmt(h[1]), fmt(c[2]), fmt(h[2]), fmt(c[3]), fmt(h[3]),
    fmt(c[4]), fmt(h[4]), epoch}
end
if r[7] then return reply('DENY_STOPPED', 5, 0) end
for i = 1, 4 do
  if lim[i] and c[i] >= lim[i] then return reply('DENY_REACHED', i, 0) end
end
local need = {charge and 0 or tokens, money, charge and money or 0, money}
local granted = money
local tight = 0
for i = 1, 4 do
  if lim[i] and need[i] > 0 then
    local room = lim[i] - c[i] - h[i]
    if need[i] > room then
      if ARGV[5] ~= '1' or i == 1 then return reply('DENY_INSUFFICIENT', i, 0) end
      if room < granted then
        granted = room
        tight = i
      end
    end
  end
end
if tight > 0 and granted <= 0 then return reply('DENY_INSUFFICIENT', tight, 0) end
local t = charge and 0 or tokens
local e = charge and granted or 0
redis.call('HINCRBY', KEYS[2], 'tr', fmt(t))
redis.call('HINCRBY', KEYS[2], 'cr', fmt(granted))
redis.call('HINCRBY', KEYS[2], 'er', fmt(e))
redis.call('HINCRBY', KEYS[3], 'cr', fmt(granted))
redis.call('EXPIRE', KEYS[2], ARGV[11])
redis.call('EXPIRE', KEYS[3], ARGV[12])
redis.call('HSET', KEYS[4], 'run', KEYS[2], 'day', KEYS[3], 't', fmt(t), 'c', fmt(granted), 'e', fmt(e))
redis.call('EXPIRE', KEYS[4], ARGV[13])
redis.call('ZADD', KEYS[5], ARGV[10], ARGV[1])
h[1] = h[1] + t
h[2] = h[2] + granted
h[3] = h[3] + e
h[4] = h[4] + granted
if granted < money then return reply('PARTIAL', 0, granted) end
return reply('ALLOW', 0, granted)
`;

/**
 * Releases a reservation's hold (when it is still held) and, when asked, adds a ledger entry to the
 * committed counters once per epoch.
 * KEYS: epoch, run, day, resv, resv-expiry, applied marker
 * ARGV: reservation id ('' = none), apply (1|0), tokens, cost, external, marker ttl s, run ttl s, day ttl s
 * Returns: OK, released (1|0), applied (1|0), then tc, tr, cc, cr, ec, er, day cc, day cr, stopped (1|0).
 */
export const SETTLE = `${COMMON}
local epoch = redis.call('GET', KEYS[1])
if not epoch then return {'REBUILD'} end
local released = 0
if ARGV[1] ~= '' then
  local v = redis.call('HMGET', KEYS[4], 't', 'c', 'e')
  if v[1] then
    redis.call('HINCRBY', KEYS[2], 'tr', fmt(-tonumber(v[1])))
    redis.call('HINCRBY', KEYS[2], 'cr', fmt(-tonumber(v[2])))
    redis.call('HINCRBY', KEYS[2], 'er', fmt(-tonumber(v[3])))
    redis.call('HINCRBY', KEYS[3], 'cr', fmt(-tonumber(v[2])))
    redis.call('DEL', KEYS[4])
    released = 1
  end
  redis.call('ZREM', KEYS[5], ARGV[1])
end
local applied = 0
if ARGV[2] == '1' and redis.call('GET', KEYS[6]) ~= epoch then
  redis.call('HINCRBY', KEYS[2], 'tc', ARGV[3])
  redis.call('HINCRBY', KEYS[2], 'cc', ARGV[4])
  redis.call('HINCRBY', KEYS[2], 'ec', ARGV[5])
  redis.call('HINCRBY', KEYS[3], 'cc', ARGV[4])
  redis.call('SET', KEYS[6], epoch, 'EX', ARGV[6])
  applied = 1
end
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('EXPIRE', KEYS[3], ARGV[8])
local r = redis.call('HMGET', KEYS[2], 'tc', 'tr', 'cc', 'cr', 'ec', 'er', 'stop')
local d = redis.call('HMGET', KEYS[3], 'cc', 'cr')
return {'OK', released, applied, r[1] or '0', r[2] or '0', r[3] or '0', r[4] or '0', r[5] or '0', r[6] or '0',
  d[1] or '0', d[2] or '0', r[7] and 1 or 0}
`;

/**
 * Releases the holds of reservations whose expiry is due.
 * KEYS: epoch, resv-expiry. ARGV: now ms, max count, resv key prefix.
 * Returns: REBUILD, or the ids released.
 */
export const EXPIRE_DUE = `${COMMON}
local epoch = redis.call('GET', KEYS[1])
if not epoch then return {'REBUILD'} end
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  local key = ARGV[3] .. id
  local v = redis.call('HMGET', key, 'run', 'day', 't', 'c', 'e')
  if v[1] then
    redis.call('HINCRBY', v[1], 'tr', fmt(-tonumber(v[3])))
    redis.call('HINCRBY', v[1], 'cr', fmt(-tonumber(v[4])))
    redis.call('HINCRBY', v[1], 'er', fmt(-tonumber(v[5])))
    redis.call('HINCRBY', v[2], 'cr', fmt(-tonumber(v[4])))
    redis.call('DEL', key)
  end
  redis.call('ZREM', KEYS[2], id)
end
return ids
`;

/**
 * Marks a run stopped (its wall-time cap fired) or clears the mark (a raise).
 * KEYS: epoch, run. ARGV: reason ('' clears), run ttl s.
 */
export const SET_STOP = `
if not redis.call('GET', KEYS[1]) then return 'REBUILD' end
if ARGV[1] == '' then
  redis.call('HDEL', KEYS[2], 'stop')
else
  redis.call('HSET', KEYS[2], 'stop', ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 'OK'
`;
