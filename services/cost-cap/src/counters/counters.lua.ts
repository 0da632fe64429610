/**
 * The Redis side of admission: Lua scripts run atomically by Redis, so check-and-hold cannot interleave.
 * decideAdmission() in libs/domain/src/caps/admission.ts is the reference of RESERVE (an integration test
 * compares the two on random cases).
 *
 * Layout (every key under the service's prefix):
 *   epoch           random id of the current counter generation; absent = counters lost, rebuild first
 *   run:<tenant>:<run>   hash tc/tr (tokens committed/reserved), cc/cr (cost), ec/er (external), stop, g
 *   day:<tenant>:<day>   hash cc/cr (cost of the tenant-day), g
 *   resv:<id>            hash t/c/e held by one reservation, run and day keys it holds on, rg/dg: the
 *                        generations of those keys that count the hold
 *   resv-expiry          sorted set of the reservations holding (for the open-holds gauge)
 *   applied:<entry>      the epoch and key generations in which a ledger entry was added (so a retried
 *                        apply adds nothing)
 *
 * Every script refuses to work (returns REBUILD) without an epoch: after Redis lost its data nothing is
 * counted or admitted until the counters are rebuilt from PostgreSQL.
 *
 * A counter key is never read as zero when it is absent: every run and day key carries a generation `g`
 * (written with the key, by a rebuild or a load), and a script that needs a key without one answers MISSING
 * with the keys it lacks. The service then loads those keys from the ledger (RebuildService.load) and tries
 * again: so losing any key — one run's, one tenant-day's — never loosens a cap, and a new run or day starts
 * from what the ledger says (nothing). A hold remembers the generations it was added in; giving it back only
 * subtracts it from a key of the same generation (a reloaded key counts exactly the rows it was loaded from).
 *
 * Amounts are integers (micro-USD, tokens) below 2^53, exact in Lua numbers; they are formatted with %d
 * because tostring() would write large ones in exponent notation.
 */

const COMMON = `
local function fmt(n) return string.format('%d', n) end
local function missing(rg, dg) return {'MISSING', rg and '0' or '1', dg and '0' or '1'} end
`;

/**
 * KEYS: epoch, run, day, resv, resv-expiry
 * ARGV: id, kind (llm|charge), tokens, money, partial (1|0), limit run_tokens, run_cost, run_external,
 *       tenant_cost ('' = none), expires_at ms, run ttl s, day ttl s, resv ttl s
 * Returns: MISSING (see above), or status, dimension (1..4, 5 = wall time, 0 = none), granted money, then
 * committed and reserved of run_tokens, run_cost, run_external, tenant_cost (as held after the call), the
 * epoch it ran in and the generations of the run and day keys.
 */
export const RESERVE = `${COMMON}
local epoch = redis.call('GET', KEYS[1])
if not epoch then return {'REBUILD'} end
local r = redis.call('HMGET', KEYS[2], 'tc', 'tr', 'cc', 'cr', 'ec', 'er', 'stop', 'g')
local d = redis.call('HMGET', KEYS[3], 'cc', 'cr', 'g')
if not r[8] or not d[3] then return missing(r[8], d[3]) end
local c = {tonumber(r[1]) or 0, tonumber(r[3]) or 0, tonumber(r[5]) or 0, tonumber(d[1]) or 0}
local h = {tonumber(r[2]) or 0, tonumber(r[4]) or 0, tonumber(r[6]) or 0, tonumber(d[2]) or 0}
local lim = {tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])}
local charge = ARGV[2] == 'charge'
local tokens = tonumber(ARGV[3])
local money = tonumber(ARGV[4])
local function reply(status, dim, granted)
  return {status, fmt(dim), fmt(granted), fmt(c[1]), fmt(h[1]), fmt(c[2]), fmt(h[2]), fmt(c[3]), fmt(h[3]),
    fmt(c[4]), fmt(h[4]), epoch, r[8], d[3]}
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
redis.call('HSET', KEYS[4], 'run', KEYS[2], 'day', KEYS[3], 't', fmt(t), 'c', fmt(granted), 'e', fmt(e),
  'rg', r[8], 'dg', d[3])
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
 * committed counters once per epoch and key generations. Adding needs both keys (else MISSING, nothing
 * changed); releasing subtracts the hold only from a key of the generation it was added in.
 * KEYS: epoch, run, day, resv, resv-expiry, applied marker
 * ARGV: reservation id ('' = none), apply (1|0), tokens, cost, external, marker ttl s, run ttl s, day ttl s
 * Returns: OK, released (1|0), applied (1|0), then tc, tr, cc, cr, ec, er, day cc, day cr, stopped (1|0).
 */
export const SETTLE = `${COMMON}
local epoch = redis.call('GET', KEYS[1])
if not epoch then return {'REBUILD'} end
local rg = redis.call('HGET', KEYS[2], 'g')
local dg = redis.call('HGET', KEYS[3], 'g')
if ARGV[2] == '1' and (not rg or not dg) then return missing(rg, dg) end
local released = 0
if ARGV[1] ~= '' then
  local v = redis.call('HMGET', KEYS[4], 't', 'c', 'e', 'rg', 'dg')
  if v[1] then
    if rg and v[4] == rg then
      redis.call('HINCRBY', KEYS[2], 'tr', fmt(-tonumber(v[1])))
      redis.call('HINCRBY', KEYS[2], 'cr', fmt(-tonumber(v[2])))
      redis.call('HINCRBY', KEYS[2], 'er', fmt(-tonumber(v[3])))
    end
    if dg and v[5] == dg then redis.call('HINCRBY', KEYS[3], 'cr', fmt(-tonumber(v[2]))) end
    redis.call('DEL', KEYS[4])
    released = 1
  end
  redis.call('ZREM', KEYS[5], ARGV[1])
end
local applied = 0
local mark = ARGV[2] == '1' and (epoch .. '/' .. rg .. '/' .. dg) or ''
if ARGV[2] == '1' and redis.call('GET', KEYS[6]) ~= mark then
  redis.call('HINCRBY', KEYS[2], 'tc', ARGV[3])
  redis.call('HINCRBY', KEYS[2], 'cc', ARGV[4])
  redis.call('HINCRBY', KEYS[2], 'ec', ARGV[5])
  redis.call('HINCRBY', KEYS[3], 'cc', ARGV[4])
  redis.call('SET', KEYS[6], mark, 'EX', ARGV[6])
  applied = 1
end
if rg then redis.call('EXPIRE', KEYS[2], ARGV[7]) end
if dg then redis.call('EXPIRE', KEYS[3], ARGV[8]) end
local r = redis.call('HMGET', KEYS[2], 'tc', 'tr', 'cc', 'cr', 'ec', 'er', 'stop')
local d = redis.call('HMGET', KEYS[3], 'cc', 'cr')
return {'OK', released, applied, r[1] or '0', r[2] or '0', r[3] or '0', r[4] or '0', r[5] or '0', r[6] or '0',
  d[1] or '0', d[2] or '0', r[7] and 1 or 0}
`;

/**
 * Writes one counter key loaded from PostgreSQL (under the exclusive counters lock), with a new generation,
 * and gives that generation to the holds it counts. Skipped when the epoch changed (a rebuild ran) or,
 * unless forced, when the key exists with a generation (another replica loaded it first).
 * KEYS: epoch, the key. ARGV: expected epoch, force (1|0), field of the holds ('rg'|'dg'), generation, key ttl s,
 *   resv key prefix, resv ttl s, field count n, n field/value pairs, then per hold: id, run key, day key, t, c, e.
 * Returns: STALE, EXISTS, or OK followed by the ids of holds whose hash was missing (written again here, with
 * only this key's generation: the other key of the hold must be reloaded too).
 */
export const LOAD = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'STALE'} end
if ARGV[2] ~= '1' and redis.call('HGET', KEYS[2], 'g') then return {'EXISTS'} end
redis.call('DEL', KEYS[2])
local n = tonumber(ARGV[8])
local fields = {}
for i = 9, 8 + 2 * n do fields[#fields + 1] = ARGV[i] end
fields[#fields + 1] = 'g'
fields[#fields + 1] = ARGV[4]
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('EXPIRE', KEYS[2], ARGV[5])
local lost = {'OK'}
for i = 9 + 2 * n, #ARGV, 6 do
  local key = ARGV[6] .. ARGV[i]
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, ARGV[3], ARGV[4])
  else
    redis.call('HSET', key, 'run', ARGV[i + 1], 'day', ARGV[i + 2], 't', ARGV[i + 3], 'c', ARGV[i + 4],
      'e', ARGV[i + 5], ARGV[3], ARGV[4])
    redis.call('EXPIRE', key, ARGV[7])
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
`;

/**
 * Marks a run stopped (its wall-time cap fired) or clears the mark (a raise). A run key that is absent is left
 * absent: its load reads the stop from cost_runs, written in the same transaction.
 * KEYS: epoch, run. ARGV: reason ('' clears), run ttl s.
 */
export const SET_STOP = `
if not redis.call('GET', KEYS[1]) then return 'REBUILD' end
if not redis.call('HGET', KEYS[2], 'g') then return 'OK' end
if ARGV[1] == '' then
  redis.call('HDEL', KEYS[2], 'stop')
else
  redis.call('HSET', KEYS[2], 'stop', ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 'OK'
`;
