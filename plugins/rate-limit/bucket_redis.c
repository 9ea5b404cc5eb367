/*
 * The `redis` backend: every limit of a request decided in ONE Lua script, so
 * one round trip, atomically (a script runs alone on the server), on Redis's
 * own clock (TIME) so that gateway instances with skewed clocks agree.
 *
 *   KEYS[i]      bucket of limit i: its TAT in microseconds (a string)
 *   ARGV[1]      cost
 *   ARGV[2i]     emission interval of limit i, microseconds (may be fractional)
 *   ARGV[2i+1]   burst of limit i
 *   returns      {admitted 0|1, retry_us, remaining_1, reset_us_1, ...}
 *
 * Keys expire (SET .. PX) when their bucket is full again: an idle client
 * costs nothing. Since Redis 5 scripts replicate their effects, so reading
 * TIME before writing is allowed.
 */
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "rate_limit.h"

const char tg_rl_script[] = "local t = redis.call('TIME')\n"
                            "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
                            "local cost = tonumber(ARGV[1])\n"
                            "local tats, wait = {}, 0\n"
                            "for i = 1, #KEYS do\n"
                            "  local T, B = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])\n"
                            "  local tat = tonumber(redis.call('GET', KEYS[i])) or now\n"
                            "  if tat < now then tat = now end\n"
                            "  tats[i] = tat\n"
                            "  local w = tat + (cost - B) * T - now\n"
                            "  if w > wait then wait = w end\n"
                            "end\n"
                            "local ok = wait <= 0.001\n"
                            "local out = {ok and 1 or 0, ok and 0 or math.ceil(wait)}\n"
                            "for i = 1, #KEYS do\n"
                            "  local T, B = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])\n"
                            "  local tat = tats[i]\n"
                            "  if ok then\n"
                            "    tat = tat + cost * T\n"
                            "    redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX',\n"
                            "               math.max(1, math.ceil((tat - now) / 1000)))\n"
                            "  end\n"
                            "  local rem = math.floor(B - (tat - now) / T + 1e-9)\n"
                            "  if rem < 0 then rem = 0 end\n"
                            "  out[#out + 1] = rem\n"
                            "  out[#out + 1] = math.ceil(tat - now)\n"
                            "end\n"
                            "return out\n";

void tg_rl_script_sha(char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)tg_rl_script, strlen(tg_rl_script), md);
    for (size_t i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int int_at(const redisReply *reply, size_t i, uint64_t *out)
{
    const redisReply *e = reply->element[i];
    if (e->type != REDIS_REPLY_INTEGER || e->integer < 0)
        return -1;
    *out = (uint64_t)e->integer;
    return 0;
}

int tg_rl_parse_reply(const struct redisReply *reply, size_t nlimits, tg_rl_result_t *out)
{
    uint64_t ok;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 + 2 * nlimits ||
        nlimits > TG_RL_MAX_LIMITS)
        return -1;
    if (int_at(reply, 0, &ok) < 0 || ok > 1 || int_at(reply, 1, &out->retry_us) < 0)
        return -1;
    out->allowed = ok == 1;
    for (size_t i = 0; i < nlimits; i++)
        if (int_at(reply, 2 + 2 * i, &out->remaining[i]) < 0 ||
            int_at(reply, 3 + 2 * i, &out->reset_us[i]) < 0)
            return -1;
    return 0;
}
