#include "balance.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "request.h"
#include "resolve.h"
#include "tollgate/request.h"
#include "upstream_pool.h"
#include "upstream_shared.h"

/* ---- keys ---------------------------------------------------------------- */

int tg_key_spec_parse(const tg_conf_node_t *n, tg_arena_t *arena, tg_key_spec_t *k,
                      tg_conf_err_t *err)
{
    const char *s, *name = NULL;
    if (tg_conf_get_string(n, &s, err) < 0)
        return -1;
    memset(k, 0, sizeof(*k));
    if (strcmp(s, "ip") == 0) {
        k->kind = TG_KEY_IP;
        return 0;
    }
    if (strncmp(s, "jwt.", 4) == 0) {
        k->kind = TG_KEY_CLAIM;
        name = s + 4;
    } else if (strncmp(s, "header:", 7) == 0) {
        k->kind = TG_KEY_HEADER;
        name = s + 7;
    } else if (strncmp(s, "cookie:", 7) == 0) {
        k->kind = TG_KEY_COOKIE;
        name = s + 7;
    } else {
        return tg_conf_error(
            err, n, "unknown key '%s' (ip, jwt.<claim>, header:<Name> or cookie:<name>)", s);
    }
    if (*name == '\0')
        return tg_conf_error(err, n, "key '%s' needs a name", s);
    k->name_len = strlen(name);
    k->name = tg_arena_strndup(arena, name, k->name_len);
    return 0;
}

/* RFC 6265 section 4.2.1: "a=1; b=2", in every Cookie line. */
static const char *cookie_value(const tg_request_t *req, const tg_key_spec_t *k, size_t *len)
{
    for (size_t i = 0;; i++) {
        const char *name, *v;
        size_t nl, vl;
        if (!tg_request_header_at(req, i, &name, &nl, &v, &vl))
            return NULL;
        if (nl != 6 || strncasecmp(name, "cookie", 6) != 0)
            continue;
        const char *end = v + vl;
        while (v < end) {
            while (v < end && (*v == ' ' || *v == ';'))
                v++;
            const char *semi = memchr(v, ';', (size_t)(end - v));
            const char *stop = semi ? semi : end;
            const char *eq = memchr(v, '=', (size_t)(stop - v));
            if (eq != NULL && (size_t)(eq - v) == k->name_len &&
                memcmp(v, k->name, k->name_len) == 0) {
                *len = (size_t)(stop - eq - 1);
                return eq + 1;
            }
            v = stop;
        }
    }
}

const char *tg_key_get(const tg_key_spec_t *k, const tg_request_t *req, size_t *len)
{
    const char *v = NULL;
    *len = 0;
    switch (k->kind) {
    case TG_KEY_IP:
        v = tg_request_client_ip(req);
        *len = v ? strlen(v) : 0;
        break;
    case TG_KEY_CLAIM:
        v = tg_request_claim(req, k->name, len);
        break;
    case TG_KEY_HEADER:
        v = tg_request_header(req, k->name, len);
        break;
    case TG_KEY_COOKIE:
        v = cookie_value(req, k, len);
        break;
    default:
        break;
    }
    return v;
}

uint64_t tg_hash64(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    /* splitmix64's finaliser: FNV alone leaves the high bits weak. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

/* ---- Maglev -------------------------------------------------------------- */

/* One size for every table: a key keeps its entry only while the table size
 * stays, so it must not depend on the number of targets (a prime, as the
 * paper's 65537, over 100 entries per target up to 655 targets). */
#define MAGLEV_SIZE 65521u

int tg_maglev_build(tg_maglev_t *m, tg_arena_t *arena, const char *const *names,
                    const uint32_t *weights, size_t n)
{
    if (n == 0 || n > TG_MAGLEV_MAX_TARGETS)
        return -1;
    uint32_t size = MAGLEV_SIZE;
    uint32_t maxw = 1;
    for (size_t i = 0; i < n; i++)
        maxw = weights[i] > maxw ? weights[i] : maxw;
    uint64_t *offset = calloc(n, sizeof(uint64_t)), *skip = calloc(n, sizeof(uint64_t));
    uint64_t *next = calloc(n, sizeof(uint64_t)), *credit = calloc(n, sizeof(uint64_t));
    m->entry = tg_arena_alloc(arena, size * sizeof(uint16_t));
    if (!offset || !skip || !next || !credit || !m->entry) {
        free(offset), free(skip), free(next), free(credit);
        return -1;
    }
    memset(m->entry, 0xff, size * sizeof(uint16_t));
    m->size = size;
    for (size_t i = 0; i < n; i++) {
        offset[i] = tg_hash64(names[i], strlen(names[i]), 0x6d61676c) % size;
        skip[i] = tg_hash64(names[i], strlen(names[i]), 0x65763221) % (size - 1) + 1;
    }
    /* Weighted population: each round every target earns weight/maxw of a
     * turn and claims its next free preferred entry per whole turn. */
    for (uint32_t filled = 0; filled < size;) {
        for (size_t i = 0; i < n && filled < size; i++) {
            credit[i] += weights[i];
            while (credit[i] >= maxw && filled < size) {
                credit[i] -= maxw;
                uint64_t c;
                do {
                    c = (offset[i] + next[i] * skip[i]) % size;
                    next[i]++;
                } while (m->entry[c] != 0xffff);
                m->entry[c] = (uint16_t)i;
                filled++;
            }
        }
    }
    free(offset), free(skip), free(next), free(credit);
    return 0;
}

/* ---- choosing ------------------------------------------------------------ */

/* How a target stands for this request. */
typedef enum { T_OK, T_TRIED, T_FULL, T_DOWN, T_NONE } standing_t;

static standing_t standing(const tg_upool_t *p, size_t i, uint64_t now, uint64_t tried)
{
    const tg_target_t *t = &p->conf->targets[i];
    if (t->dynamic && tg_target_endpoint(t) == NULL)
        return T_NONE; /* a slot without an address: not even in panic mode */
    if (!tg_tshared_usable(t->shared, now))
        return T_DOWN;
    uint32_t max = p->conf->circuit.max_connections;
    if (max && p->targets[i].idle_head == NULL &&
        atomic_load_explicit(&t->shared->conns, memory_order_relaxed) >= max)
        return T_FULL;
    if (i < 64 && (tried >> i) & 1)
        return T_TRIED;
    return T_OK;
}

static uint64_t rng_next(tg_upool_t *p)
{
    /* xorshift64*: per worker, no lock. */
    uint64_t x = p->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    p->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* nginx's smooth weighted round robin over the candidates: every candidate's
 * current weight grows by its weight, the largest wins and pays the total. */
static size_t pick_wrr(tg_upool_t *p, const uint8_t *ok)
{
    size_t n = p->conf->ntargets, best = SIZE_MAX;
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ok[i])
            continue;
        tg_target_state_t *t = &p->targets[i];
        t->wrr_current += p->conf->targets[i].weight;
        total += p->conf->targets[i].weight;
        if (best == SIZE_MAX || t->wrr_current > p->targets[best].wrr_current)
            best = i;
    }
    if (best != SIZE_MAX)
        p->targets[best].wrr_current -= total;
    return best;
}

/* Fewest active connections per unit of weight; ties go round. */
static size_t pick_least_conn(tg_upool_t *p, const uint8_t *ok)
{
    size_t n = p->conf->ntargets, best = SIZE_MAX;
    for (size_t k = 0; k < n; k++) {
        size_t i = (p->rr_next + k) % n;
        if (!ok[i])
            continue;
        if (best == SIZE_MAX || (uint64_t)p->targets[i].active * p->conf->targets[best].weight <
                                    (uint64_t)p->targets[best].active * p->conf->targets[i].weight)
            best = i;
    }
    p->rr_next = (p->rr_next + 1) % n;
    return best;
}

/* Finagle's peak EWMA: a slower answer counts at once, faster ones (and
 * time without answers) pull it down with a 10 s decay, so a target that was
 * slow gets tried again after a while instead of never. */
#define EWMA_TAU_US 10e6

static double ewma_now(const tg_target_state_t *t, uint64_t now_us)
{
    if (t->ewma_stamp_us == 0 || now_us <= t->ewma_stamp_us)
        return t->ewma_us;
    return t->ewma_us * exp(-(double)(now_us - t->ewma_stamp_us) / EWMA_TAU_US);
}

/* The cost Finagle's and Linkerd's p2c balancers compare: latency EWMA times
 * (in flight + 1), over the weight. A target never measured costs nothing
 * more than its load, so new targets get tried. */
static double ewma_cost(const tg_upool_t *p, size_t i, uint64_t now_us)
{
    const tg_target_state_t *t = &p->targets[i];
    return (ewma_now(t, now_us) + 1.0) * (double)(t->active + 1) /
           (double)p->conf->targets[i].weight;
}

static size_t nth_ok(const uint8_t *ok, size_t n, size_t k)
{
    for (size_t i = 0; i < n; i++)
        if (ok[i] && k-- == 0)
            return i;
    return SIZE_MAX;
}

static size_t pick_p2c(tg_upool_t *p, const uint8_t *ok, size_t count, uint64_t now_ms)
{
    size_t n = p->conf->ntargets;
    if (count == 1)
        return nth_ok(ok, n, 0);
    size_t a = (size_t)(rng_next(p) % count);
    size_t b = (size_t)(rng_next(p) % (count - 1));
    if (b >= a)
        b++;
    a = nth_ok(ok, n, a);
    b = nth_ok(ok, n, b);
    uint64_t now = now_ms * 1000; /* the coarse clock is plenty for a 10 s decay */
    return ewma_cost(p, a, now) <= ewma_cost(p, b, now) ? a : b;
}

/* The key's entry, then re-hashed entries (a different target for a key
 * whose own is out), then the first candidate. */
static size_t pick_hash(tg_upool_t *p, const uint8_t *ok, uint64_t hash)
{
    const tg_maglev_t *m = &p->conf->maglev;
    uint64_t h = hash;
    for (int round = 0; round < 8; round++) {
        size_t i = m->entry[h % m->size];
        if (ok[i])
            return i;
        h = tg_hash64(&h, sizeof(h), (uint64_t)round + 1);
    }
    return nth_ok(ok, p->conf->ntargets, 0);
}

size_t tg_balance_pick(tg_upool_t *p, uint64_t now, uint64_t tried, bool has_hash, uint64_t hash,
                       tg_pick_result_t *why)
{
    size_t n = p->conf->ntargets;
    uint8_t stack_ok[64];
    uint8_t *ok = n <= 64 ? stack_ok : p->scratch_ok;
    size_t fresh = 0, retry = 0, full = 0;
    for (size_t i = 0; i < n; i++) {
        standing_t s = standing(p, i, now, tried);
        ok[i] = (uint8_t)s;
        fresh += s == T_OK;
        retry += s == T_TRIED;
        full += s == T_FULL;
    }
    /* Untried targets first; a tried one again rather than none (a single
     * target gets its retries). */
    size_t count = fresh ? fresh : retry;
    uint8_t want = fresh ? T_OK : T_TRIED;
    if (count == 0 && p->conf->all_down == TG_ALL_DOWN_FAIL_OPEN) {
        /* Envoy's panic mode: with every target out, all of them share the
         * traffic rather than none (a health verdict can be wrong). */
        for (size_t i = 0; i < n; i++)
            count += ok[i] == T_DOWN;
        want = T_DOWN;
    }
    if (count == 0) {
        *why = full ? TG_PICK_MAX_CONNS : TG_PICK_ALL_DOWN;
        return SIZE_MAX;
    }
    for (size_t i = 0; i < n; i++)
        ok[i] = ok[i] == want;
    *why = TG_PICK_OK;
    switch (p->conf->balance) {
    case TG_BALANCE_LEAST_CONN:
        return pick_least_conn(p, ok);
    case TG_BALANCE_P2C_EWMA:
        return pick_p2c(p, ok, count, now);
    case TG_BALANCE_HASH:
        if (has_hash)
            return pick_hash(p, ok, hash);
        return pick_wrr(p, ok);
    default:
        return pick_wrr(p, ok);
    }
}

void tg_balance_observe(tg_upool_t *p, size_t target, uint64_t latency_us, uint64_t now_us)
{
    if (p->conf->balance != TG_BALANCE_P2C_EWMA)
        return;
    tg_target_state_t *t = &p->targets[target];
    double rtt = (double)latency_us, cur = ewma_now(t, now_us);
    if (rtt > cur || t->ewma_stamp_us == 0) {
        t->ewma_us = rtt;
    } else {
        double w = exp(-(double)(now_us - t->ewma_stamp_us) / EWMA_TAU_US);
        t->ewma_us = t->ewma_us * w + rtt * (1.0 - w);
    }
    t->ewma_stamp_us = now_us;
}
