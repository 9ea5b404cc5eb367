/*
 * The `redis` backend: the decisions of every request that became ready in
 * one event-loop iteration of a worker (for one route's limiter, one Cluster
 * slot) in ONE Lua script, so one round trip and one script run for many
 * requests; atomically (a script runs alone on the server), on Redis's own
 * clock (TIME) so that gateway instances with skewed clocks agree.
 *
 * The requests of a batch come in groups, one per client (bucket key set):
 * every request of a limiter has the same cost and limits, so a group of m
 * requests is one entry "m requests" and each bucket name is sent once.
 *
 *   KEYS         group g (0-based), limit i (1-based): KEYS[g*n + i], the
 *                bucket of limit i for that group's client: its TAT in
 *                microseconds (a number, fractions kept)
 *   ARGV[1]      n, the number of limits
 *   ARGV[2]      cost
 *   ARGV[1+2i]   emission interval of limit i, microseconds (may be fractional)
 *   ARGV[2+2i]   burst of limit i
 *   ARGV[3+2n+g] m, the requests of group g
 *   returns      now (Redis TIME, microseconds), then per group: k, the
 *                requests admitted, and per limit the bucket's TAT before the
 *                batch, as tat - now = a + b / 2^32 (two integers a, b:
 *                exact, so that tg_rl_group_next() replays the script's
 *                arithmetic bit for bit)
 *
 * A group's m requests are decided in order, as m separate calls would be:
 * a request is admitted iff every limit admits it and then consumes from
 * every limit; a refused one consumes nothing, so once one is refused all
 * later ones of the group are, and k is where the loop stops (the loop is
 * a few additions per admitted request: no table, string or Redis call).
 * Redis work per batch: TIME, one GET per bucket, one SET per bucket of a
 * group that admitted (SET .. PX, so keys expire when their bucket is full
 * again and an idle client costs nothing); numbers go to SET as Lua numbers
 * (Redis writes them with %.17g: no string.format). Since Redis 5 scripts
 * replicate their effects, so reading TIME before writing is allowed.
 */
#include <math.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "rate_limit.h"

const char tg_rl_script[] =
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000000 + t[2]\n"
    "local n, cost = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local ct, cb = {}, {}\n"
    "for i = 1, n do\n"
    "  local T = tonumber(ARGV[1 + 2 * i])\n"
    "  ct[i], cb[i] = cost * T, (cost - tonumber(ARGV[2 + 2 * i])) * T\n"
    "end\n"
    "local out, tat, o = {now}, {}, 1\n"
    "for g = 0, #KEYS / n - 1 do\n"
    "  local m, base, at = tonumber(ARGV[3 + 2 * n + g]), g * n, o + 1\n"
    "  o = at\n"
    "  for i = 1, n do\n"
    "    local v = tonumber(redis.call('GET', KEYS[base + i])) or now\n"
    "    if v < now then v = now end\n"
    "    tat[i] = v\n"
    "    local d = v - now\n"
    "    local a = math.floor(d)\n"
    "    out[o + 1], out[o + 2], o = a, (d - a) * 4294967296, o + 2\n"
    "  end\n"
    "  local k = 0\n"
    "  while k < m do\n"
    "    local i = 1\n"
    "    while i <= n and tat[i] + cb[i] - now <= 0.001 do i = i + 1 end\n"
    "    if i <= n then break end\n"
    "    for j = 1, n do tat[j] = tat[j] + ct[j] end\n"
    "    k = k + 1\n"
    "  end\n"
    "  out[at] = k\n"
    "  if k > 0 then\n"
    "    for i = 1, n do\n"
    "      local v = tat[i]\n"
    "      redis.call('SET', KEYS[base + i], v, 'PX', math.ceil((v - now) / 1000))\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

void tg_rl_script_sha(char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)tg_rl_script, strlen(tg_rl_script), md);
    for (size_t i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

size_t tg_rl_reply_groups(const struct redisReply *reply, size_t nlimits)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 || nlimits == 0)
        return 0;
    size_t per = 1 + 2 * nlimits;
    return (reply->elements - 1) % per == 0 ? (reply->elements - 1) / per : 0;
}

int tg_rl_reply_group(const struct redisReply *reply, size_t g, size_t nlimits, size_t m,
                      tg_rl_group_t *out)
{
    size_t per = 1 + 2 * nlimits;
    if (nlimits == 0 || nlimits > TG_RL_MAX_LIMITS || g >= tg_rl_reply_groups(reply, nlimits))
        return -1;
    const redisReply *const *e = (const redisReply *const *)reply->element;
    const redisReply *const *ge = e + 1 + g * per;
    for (size_t i = 0; i < per; i++)
        if (ge[i]->type != REDIS_REPLY_INTEGER)
            return -1;
    if (e[0]->type != REDIS_REPLY_INTEGER || e[0]->integer < 0 || ge[0]->integer < 0 ||
        (unsigned long long)ge[0]->integer > m)
        return -1;
    out->now = (double)e[0]->integer;
    out->admit = (uint64_t)ge[0]->integer;
    for (size_t i = 0; i < nlimits; i++) {
        long long a = ge[1 + 2 * i]->integer, b = ge[2 + 2 * i]->integer;
        if (a < 0 || b < 0 || b >= 4294967296LL)
            return -1;
        /* Both sums are exact: the script's tat - now, then its tat. */
        out->tat[i] = out->now + ((double)a + (double)b / 4294967296.0);
    }
    return 0;
}

void tg_rl_group_next(tg_rl_group_t *g, const tg_rl_limit_t *limits, size_t nlimits, uint64_t cost,
                      tg_rl_result_t *out)
{
    out->allowed = g->admit > 0;
    if (out->allowed)
        g->admit--;
    double retry = 0;
    for (size_t i = 0; i < nlimits; i++) {
        const tg_rl_limit_t *l = &limits[i];
        /* The script's own operations, in its order: the same doubles. */
        if (out->allowed)
            g->tat[i] = g->tat[i] + (double)cost * l->t_us;
        double v = ceil(g->tat[i] - g->now);
        double rem = floor((double)l->burst - v / l->t_us + 1e-9);
        out->remaining[i] = rem > 0 ? (uint64_t)rem : 0;
        out->reset_us[i] = (uint64_t)v;
        /* Refused: until this bucket has room for cost again. */
        double w = v + ((double)cost - (double)l->burst) * l->t_us;
        if (w > retry)
            retry = w;
    }
    out->retry_us = out->allowed ? 0 : (uint64_t)ceil(retry);
}
