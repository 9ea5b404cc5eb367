/*
 * The `redis` backend: the decisions of every request that became ready in
 * one event-loop iteration of a worker (for one route's limiter, one Cluster
 * slot) in ONE Lua script, so one round trip and one script run for many
 * requests; atomically (a script runs alone on the server), on Redis's own
 * clock (TIME) so that gateway instances with skewed clocks agree.
 *
 *   KEYS         decision d (0-based), limit i (1-based): KEYS[d*n + i], the
 *                bucket of limit i for that request's client: its TAT in
 *                microseconds (a number, fractions kept)
 *   ARGV[1]      cost
 *   ARGV[2i]     emission interval of limit i, microseconds (may be fractional)
 *   ARGV[2i+1]   burst of limit i
 *   returns      one integer per key, in KEYS order: microseconds until that
 *                bucket is full again (after the decision); the first of a
 *                decision is -1 - value when the request is refused
 *
 * Decisions are taken in KEYS order, as separate EVALSHAs would be: a bucket
 * that several requests of the batch share (one client, many requests) is
 * read once, decided in Lua, and written once at the end (SET .. PX, so keys
 * expire when their bucket is full again and an idle client costs nothing).
 * Redis CPU per batch: TIME, one GET per distinct bucket, one SET per
 * distinct bucket that admitted; numbers go to SET as Lua numbers (Redis
 * writes them with %.17g: no string.format). Since Redis 5 scripts replicate
 * their effects, so reading TIME before writing is allowed.
 */
#include <math.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "rate_limit.h"

const char tg_rl_script[] = "local t = redis.call('TIME')\n"
                            "local now = t[1] * 1000000 + t[2]\n"
                            "local cost, n = tonumber(ARGV[1]), (#ARGV - 1) / 2\n"
                            "local T, B = {}, {}\n"
                            "for i = 1, n do\n"
                            "  T[i], B[i] = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])\n"
                            "end\n"
                            "local tats, dirty, out = {}, {}, {}\n"
                            "for d = 0, #KEYS - n, n do\n"
                            "  local wait = -1\n"
                            "  for i = 1, n do\n"
                            "    local k = KEYS[d + i]\n"
                            "    local tat = tats[k]\n"
                            "    if tat == nil then\n"
                            "      tat = tonumber(redis.call('GET', k)) or now\n"
                            "      if tat < now then tat = now end\n"
                            "      tats[k] = tat\n"
                            "    end\n"
                            "    local w = tat + (cost - B[i]) * T[i] - now\n"
                            "    if w > wait then wait = w end\n"
                            "  end\n"
                            "  local ok = wait <= 0.001\n"
                            "  for i = 1, n do\n"
                            "    local k = KEYS[d + i]\n"
                            "    local tat = tats[k]\n"
                            "    if ok then\n"
                            "      tat = tat + cost * T[i]\n"
                            "      tats[k] = tat\n"
                            "      dirty[k] = true\n"
                            "    end\n"
                            "    out[d + i] = math.ceil(tat - now)\n"
                            "  end\n"
                            "  if not ok then out[d + 1] = -1 - out[d + 1] end\n"
                            "end\n"
                            "for k in pairs(dirty) do\n"
                            "  local tat = tats[k]\n"
                            "  redis.call('SET', k, tat, 'PX', math.ceil((tat - now) / 1000))\n"
                            "end\n"
                            "return out\n";

void tg_rl_script_sha(char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)tg_rl_script, strlen(tg_rl_script), md);
    for (size_t i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int tg_rl_parse_reply(const struct redisReply *reply, size_t d, size_t ndecisions,
                      const tg_rl_limit_t *limits, size_t nlimits, uint64_t cost,
                      tg_rl_result_t *out)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || nlimits > TG_RL_MAX_LIMITS ||
        nlimits == 0 || d >= ndecisions || reply->elements != ndecisions * nlimits)
        return -1;
    const redisReply *const *e = (const redisReply *const *)reply->element + d * nlimits;
    double retry = 0;
    for (size_t i = 0; i < nlimits; i++) {
        if (e[i]->type != REDIS_REPLY_INTEGER)
            return -1;
        long long v = e[i]->integer;
        if (i == 0) {
            out->allowed = v >= 0;
            v = v >= 0 ? v : -1 - v;
        }
        if (v < 0)
            return -1;
        const tg_rl_limit_t *l = &limits[i];
        double rem = floor((double)l->burst - (double)v / l->t_us + 1e-9);
        out->remaining[i] = rem > 0 ? (uint64_t)rem : 0;
        out->reset_us[i] = (uint64_t)v;
        /* Refused: until this bucket has room for cost again. */
        double w = (double)v + ((double)cost - (double)l->burst) * l->t_us;
        if (w > retry)
            retry = w;
    }
    out->retry_us = out->allowed ? 0 : (uint64_t)ceil(retry);
    return 0;
}
