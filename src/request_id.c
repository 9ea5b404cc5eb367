#include "request_id.h"

#include <sys/random.h>

#include "tollgate/clock.h"

void tg_request_id_seed(tg_request_id_gen_t *g)
{
    if (getrandom(g->s, sizeof(g->s), 0) != (ssize_t)sizeof(g->s)) {
        uint64_t t = tg_now_us();
        g->s[0] = t * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)g;
        g->s[1] = (t >> 20) * 0xBF58476D1CE4E5B9ull + 1;
    }
    if ((g->s[0] | g->s[1]) == 0)
        g->s[1] = 1;
}

uint64_t tg_request_id_u64(tg_request_id_gen_t *g)
{
    uint64_t s1 = g->s[0];
    const uint64_t s0 = g->s[1];
    g->s[0] = s0;
    s1 ^= s1 << 23;
    g->s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return g->s[1] + s0;
}

void tg_request_id_generate(tg_request_id_gen_t *g, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t v[2] = {tg_request_id_u64(g), tg_request_id_u64(g)};
    for (int w = 0; w < 2; w++) {
        uint64_t x = v[w];
        for (int i = 0; i < 16; i++, x >>= 4)
            out[w * 16 + i] = hex[x & 0xf];
    }
    out[32] = '\0';
}

bool tg_request_id_valid(const char *id, size_t len)
{
    if (len == 0 || len > TG_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
            return false;
    }
    return true;
}
