//! The Lua scripts: each runs atomically on the server, in the slot of its keys (every key of
//! one script shares the partition's hash tag, so they run on Redis Cluster too).

use std::sync::LazyLock;

use redis::Script;

/// Reclaims entries idle past the lease (`XAUTOCLAIM`, which counts a delivery); an entry
/// delivered more than the receive limit goes to the dead-letter stream and is acknowledged.
/// A pending entry deleted from the stream (trimmed by `DropOldest`) is acknowledged as gone:
/// Redis 7.0 and later drop it from the pending list and name it in `XAUTOCLAIM`'s third
/// element; Redis 6.2 answers a nil in its place, without the id, and keeps it pending, so
/// there (no `redis.REDIS_VERSION`, which 7.0 added) the candidates are listed first
/// (`XPENDING … IDLE`, 6.2's own) and those no longer in the stream acknowledged.
///
/// KEYS: stream, dead stream. ARGV: group, consumer, min idle ms, start id, count,
/// max receives, now ms, dead-letter id seed.
/// Returns `{next start, {{id, fields, deliveries}...}, dead count, gone ids}`.
pub(crate) static RECLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local candidates = nil
if not redis.REDIS_VERSION then
  candidates = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], ARGV[4], '+', ARGV[5])
end
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local out = {}
local dead = 0
local gone = {}
local nils = false
local seed = tonumber(ARGV[8])
for _, e in ipairs(r[2]) do
  if type(e) ~= 'table' or type(e[2]) ~= 'table' then
    -- Redis 6.2: a pending entry whose stream entry was deleted
    if type(e) == 'table' then
      redis.call('XACK', KEYS[1], ARGV[1], e[1])
      table.insert(gone, e[1])
    else
      nils = true
    end
  else
    local id = e[1]
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    local n = 1
    if p[1] then n = tonumber(p[1][4]) end
    if n > tonumber(ARGV[6]) then
      local f = {'group', ARGV[1], 'reason', 'receive limit reached (' .. n .. ' deliveries): the entry was reclaimed from workers that died or stalled holding it',
                 'dead_at', ARGV[7], 'dl', string.format('%.0f', seed + dead), 'receives', tostring(n), 'entry', id}
      for _, v in ipairs(e[2]) do table.insert(f, v) end
      redis.call('XADD', KEYS[2], '*', unpack(f))
      redis.call('XACK', KEYS[1], ARGV[1], id)
      dead = dead + 1
    else
      table.insert(out, {id, e[2], n})
    end
  end
end
if r[3] then
  for _, id in ipairs(r[3]) do table.insert(gone, id) end
end
if nils and candidates then
  for _, p in ipairs(candidates) do
    if #redis.call('XRANGE', KEYS[1], p[1], p[1]) == 0
        and redis.call('XACK', KEYS[1], ARGV[1], p[1]) == 1 then
      table.insert(gone, p[1])
    end
  end
end
return {r[1], out, dead, gone}
"#,
    )
});

/// Renews the lease of the entries this process holds (`XCLAIM … JUSTID` to itself resets
/// the idle time without counting a delivery), each only while it is still this consumer's
/// (one another worker claimed meanwhile stays claimed). Entries pending for this consumer that
/// the process never received (a read whose answer was lost with the connection) are not
/// renewed: they go idle and are claimed after the lease, by any worker.
///
/// KEYS: stream. ARGV: group, consumer, ids... Returns how many were renewed.
pub(crate) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local mine = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then table.insert(mine, ARGV[i]) end
end
local i = 1
while i <= #mine do
  -- (unpack last: Lua expands only a call's last argument)
  local args = {KEYS[1], ARGV[1], ARGV[2], 0}
  for j = i, math.min(i + 499, #mine) do table.insert(args, mine[j]) end
  table.insert(args, 'JUSTID')
  redis.call('XCLAIM', unpack(args))
  i = i + 500
end
return #mine
"#,
    )
});

/// Hands back every entry pending for this consumer (its `IDLE` set past any lease, so
/// another worker claims it at once, without counting a delivery), then forgets the consumer
/// if it holds nothing.
///
/// KEYS: stream. ARGV: group, consumer, idle ms to set. Returns how many were handed back.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local total = 0
local start = '-'
while true do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], start, '+', 500, ARGV[2])
  if #p == 0 then break end
  local args = {KEYS[1], ARGV[1], ARGV[2], 0}
  for _, e in ipairs(p) do table.insert(args, e[1]) end
  local last = args[#args]
  table.insert(args, 'IDLE')
  table.insert(args, ARGV[3])
  table.insert(args, 'JUSTID')
  redis.call('XCLAIM', unpack(args))
  total = total + #p
  if #p < 500 then break end
  start = '(' .. last
end
if total == 0 then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return total
"#,
    )
});

/// Trims the stream up to the oldest entry some group has not settled: entries every group
/// acknowledged go. Nothing is trimmed while no group exists.
///
/// KEYS: stream. Returns how many entries were deleted.
pub(crate) static TRIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local best_ms, best_seq = nil, nil
for _, g in ipairs(groups) do
  local m = {}
  for i = 1, #g, 2 do m[g[i]] = g[i + 1] end
  local ms, seq
  if tonumber(m['pending']) > 0 then
    local p = redis.call('XPENDING', KEYS[1], m['name'])
    ms, seq = parse(p[2])
  else
    ms, seq = parse(m['last-delivered-id'])
    seq = seq + 1
  end
  if best_ms == nil or ms < best_ms or (ms == best_ms and seq < best_seq) then
    best_ms, best_seq = ms, seq
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-%d', best_ms, best_seq))
"#,
    )
});

/// Takes the batches of one endpoint's retry set that are due: each moves to the held set,
/// scored by the end of the lease it gets, and its receive count grows by one. First, the
/// batches whose lease ran out (the process holding them died or stalled) become due at once.
/// Atomic, so any number of processes may run it at once: each due batch goes to one of them.
///
/// KEYS: due, held, data, meta. ARGV: now ms, lease ms, count.
/// Returns `{{{batch id, data or nil, receives}...}, next due score or -1}`.
pub(crate) static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local late = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, b in ipairs(late) do
  redis.call('ZREM', KEYS[2], b)
  redis.call('ZADD', KEYS[1], now, b)
end
local out = {}
if count > 0 then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, count)
  for _, b in ipairs(due) do
    redis.call('ZREM', KEYS[1], b)
    redis.call('ZADD', KEYS[2], now + lease, b)
    local r = redis.call('HINCRBY', KEYS[4], 'r:' .. b, 1)
    local d = redis.call('HGET', KEYS[3], b)
    table.insert(out, {b, d, r})
  end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local n = '-1'
if nxt[2] then n = nxt[2] end
return {out, n}
"#,
    )
});

/// Puts a batch in its endpoint's retry set, due at a time (a batch from the stream, or one
/// taken from the set and failed again): its data, its event count, its receive count reset,
/// out of the held set, into the due set; the partition's count of waiting events follows.
/// Sent with `EVAL` inside the writer's pipelines (so no `NOSCRIPT` there).
///
/// KEYS: due, held, data, meta, count. ARGV: batch, due ms, data, events.
pub(crate) const PARK: &str = r#"
local old = tonumber(redis.call('HGET', KEYS[4], 'n:' .. ARGV[1]) or '0')
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[4], 'n:' .. ARGV[1], ARGV[4])
redis.call('HDEL', KEYS[4], 'r:' .. ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local d = tonumber(ARGV[4]) - old
if d ~= 0 then redis.call('INCRBY', KEYS[5], d) end
return d
"#;

/// Removes a batch from its endpoint's retry set (settled); the partition's count of waiting
/// events follows.
///
/// KEYS: due, held, data, meta, count. ARGV: batch.
pub(crate) const UNPARK: &str = r#"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
local n = tonumber(redis.call('HGET', KEYS[4], 'n:' .. ARGV[1]) or '0')
redis.call('HDEL', KEYS[4], 'n:' .. ARGV[1], 'r:' .. ARGV[1])
if n > 0 then redis.call('DECRBY', KEYS[5], n) end
return n
"#;

/// Drops an endpoint's retry set in one partition (the endpoint was removed): the partition's
/// count of waiting events loses its events.
///
/// KEYS: due, held, data, meta, count. Returns how many events were dropped.
pub(crate) const DROP_RETRIES: &str = r#"
local n = 0
local m = redis.call('HGETALL', KEYS[4])
for i = 1, #m, 2 do
  if string.sub(m[i], 1, 2) == 'n:' then n = n + tonumber(m[i + 1]) end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
if n > 0 then redis.call('DECRBY', KEYS[5], n) end
return n
"#;
