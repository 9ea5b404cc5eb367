/*
 * Target choice for one request on one worker: smooth weighted round robin
 * (nginx's), weighted least connections, power of two choices over a peak
 * latency EWMA (Finagle/Linkerd), and consistent hashing (Maglev) on a
 * request key. Every policy takes only targets that may get traffic now
 * (tg_balance_usable) and prefers those this request has not tried yet.
 *
 * Also the request keys that `hash_key` and split's `sticky` name
 * (`ip`, `jwt.<claim>`, `header:<Name>`, `cookie:<name>`), parsed once at
 * load and read per request through the public request API.
 */
#ifndef TG_BALANCE_H
#define TG_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tollgate/arena.h"
#include "tollgate/conf.h"

typedef struct tg_upool_s tg_upool_t;
typedef struct tg_request_s tg_request_t;

typedef enum {
    TG_KEY_NONE = 0,
    TG_KEY_IP,     /* the client address (trusted proxies applied) */
    TG_KEY_CLAIM,  /* jwt.<claim>: a claim the authentication plugin published */
    TG_KEY_HEADER, /* header:<Name>: the first value */
    TG_KEY_COOKIE, /* cookie:<name>: the first cookie of that name */
} tg_key_kind_t;

typedef struct {
    tg_key_kind_t kind;
    const char *name; /* claim, header or cookie name (in the config's arena) */
    size_t name_len;
} tg_key_spec_t;

/* Parses a key spec node into k (names copied into arena). */
int tg_key_spec_parse(const tg_conf_node_t *n, tg_arena_t *arena, tg_key_spec_t *k,
                      tg_conf_err_t *err);

/* The key's bytes for req; NULL when the request has none (no such claim,
 * header or cookie). */
const char *tg_key_get(const tg_key_spec_t *k, const tg_request_t *req, size_t *len);

/* 64-bit hash of bytes (FNV-1a, then a finaliser that spreads every bit). */
uint64_t tg_hash64(const void *p, size_t n, uint64_t seed);

/* A Maglev lookup table (Eisenbud et al., NSDI 2016), weighted: each target
 * fills entries in proportion to its weight, and adding or removing one moves
 * about 1/N of the keys. Immutable once built, shared by every worker. */
typedef struct {
    uint32_t size; /* a prime, the same for every table */
    uint16_t *entry;
} tg_maglev_t;

#define TG_MAGLEV_MAX_TARGETS 4096

/* Builds m from n targets (names hash to their permutations). Allocated in
 * arena (128 KiB); -1 when n is 0 or above TG_MAGLEV_MAX_TARGETS. */
int tg_maglev_build(tg_maglev_t *m, tg_arena_t *arena, const char *const *names,
                    const uint32_t *weights, size_t n);

/* Why tg_balance_pick found nothing. */
typedef enum {
    TG_PICK_OK = 0,
    TG_PICK_ALL_DOWN,  /* every target is unhealthy, ejected or resting */
    TG_PICK_MAX_CONNS, /* the usable ones are at max_connections */
} tg_pick_result_t;

/* Chooses a target for a request. tried: bit i = target i already failed for
 * this request (avoided while another usable target exists); hash/has_hash:
 * the request's key hash for `balance: hash` (without a key, round robin).
 * Returns the index, or SIZE_MAX with *why set. */
size_t tg_balance_pick(tg_upool_t *p, uint64_t now_ms, uint64_t tried, bool has_hash, uint64_t hash,
                       tg_pick_result_t *why);

/* A target answered (response head) or failed after latency_us: feeds
 * p2c_ewma's peak EWMA. */
void tg_balance_observe(tg_upool_t *p, size_t target, uint64_t latency_us, uint64_t now_us);

#endif
