/*
 * rate-limit plugin: what its files share.
 *
 * Every limit is a token bucket of capacity `burst` refilled at rate/per,
 * evaluated as GCRA (the equivalent "virtual scheduling" form): one number per
 * bucket, the theoretical arrival time (TAT) of the next request when the
 * bucket is full. With T = per / rate (time per token):
 *
 *     tat = max(stored_tat, now)
 *     admitted   iff  tat + cost*T - burst*T <= now      -> store tat + cost*T
 *     remaining  = burst - (tat_after - now) / T          (tokens left)
 *     full again = tat_after                             (expiry of the key)
 *
 * A request is admitted only if every limit admits it; a refused request
 * consumes from none. bucket_redis.c runs this in one Lua script on Redis's
 * clock, for a batch of requests at once (rate_limit.c collects the requests
 * that became ready in one event-loop iteration); bucket_local.c runs it
 * under a shard mutex on CLOCK_MONOTONIC.
 */
#ifndef TG_RATE_LIMIT_H
#define TG_RATE_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tollgate/plugin.h"
#include "tollgate/redis.h"

#define TG_RL_MAX_LIMITS 8
#define TG_RL_MAX_KEY_PARTS 8

typedef struct {
    uint64_t rate;   /* tokens per `per` */
    uint64_t per_ms; /* refill period */
    uint64_t burst;  /* capacity (defaults to rate) */
    double t_us;     /* emission interval: per / rate, in microseconds */
    char t_arg[32];  /* t_us as the script's argument ("%.17g") */
    char burst_arg[24];
} tg_rl_limit_t;

/* Outcome of one decision, whichever backend made it. */
typedef struct {
    bool allowed;
    uint64_t retry_us;                    /* refused: until every limit admits */
    uint64_t remaining[TG_RL_MAX_LIMITS]; /* tokens left per limit */
    uint64_t reset_us[TG_RL_MAX_LIMITS];  /* until each bucket is full again */
} tg_rl_result_t;

/* ---- key.c: the `key` expression ---- */
typedef enum {
    TG_RL_KEY_IP,
    TG_RL_KEY_JWT,
    TG_RL_KEY_HEADER,
    TG_RL_KEY_ROUTE,
    TG_RL_KEY_CONSUMER, /* tg_request_consumer (key-auth) */
} tg_rl_key_kind_t;

typedef struct {
    tg_rl_key_kind_t kind;
    char *name; /* JWT: "jwt.<claim>" as written (tg_request_claim); HEADER: the header name */
} tg_rl_key_part_t;

typedef struct {
    tg_rl_key_part_t parts[TG_RL_MAX_KEY_PARTS];
    size_t nparts;
    bool uses_jwt;
    const tg_conf_node_t *jwt_node;      /* only during create(): where jwt.* was written */
    const tg_conf_node_t *consumer_node; /* only during create(): where consumer was written */
} tg_rl_key_t;

/* Parses a scalar or a list of scalars. Returns 0 or -1 with err filled. */
int tg_rl_key_parse(const tg_conf_node_t *n, tg_rl_key_t *key, tg_conf_err_t *err);
void tg_rl_key_free(tg_rl_key_t *key);
/* Appends the canonical text of the expression (for the instance hash). */
size_t tg_rl_key_describe(const tg_rl_key_t *key, char *buf, size_t cap);
/* The key value of r: parts "i:<ip>", "j:<claim>", "h:<header>", "r:<route>",
 * "c:<consumer>" joined by '|' ('|' and '\' escaped when there are several); a
 * missing JWT claim, header or consumer falls back to the client IP. Values longer than 64 bytes
 * are replaced by "#<sha1 hex>". Arena-allocated. */
const char *tg_rl_key_value(tg_request_t *r, const tg_rl_key_t *key, size_t *len);

/* ---- bucket_local.c: the in-process backend ---- */
typedef struct tg_rl_local_s tg_rl_local_t;

tg_rl_local_t *tg_rl_local_new(size_t max_entries);
void tg_rl_local_free(tg_rl_local_t *l);
/* Decides for key at now_us (monotonic). */
void tg_rl_local_decide(tg_rl_local_t *l, const char *key, size_t len, const tg_rl_limit_t *limits,
                        size_t nlimits, uint64_t cost, uint64_t now_us, tg_rl_result_t *out);
size_t tg_rl_local_count(tg_rl_local_t *l);
/* The GCRA step on one set of TATs (also used by the unit tests). */
bool tg_rl_gcra(double *tats, const tg_rl_limit_t *limits, size_t nlimits, uint64_t cost,
                double now_us, tg_rl_result_t *out);

/* ---- bucket_redis.c: the Lua script ---- */
extern const char tg_rl_script[];
/* SHA-1 hex of tg_rl_script (41 bytes with the NUL). */
void tg_rl_script_sha(char out[41]);

/* One group of a script reply: the requests of one client in one batch, in
 * the order they were sent. */
typedef struct {
    double now;                   /* Redis TIME of the script, microseconds */
    double tat[TG_RL_MAX_LIMITS]; /* per limit: the TAT before the next request */
    uint64_t admit;               /* how many of the next requests are admitted */
} tg_rl_group_t;

/* The number of groups a script reply carries for nlimits limits; 0 when the
 * reply's shape is not the script's. */
size_t tg_rl_reply_groups(const struct redisReply *reply, size_t nlimits);
/* Reads group g, which was sent with m requests, into out; -1 when the
 * reply's shape is not the expected one. */
int tg_rl_reply_group(const struct redisReply *reply, size_t g, size_t nlimits, size_t m,
                      tg_rl_group_t *out);
/* The decision of the group's next request (each request of the group in
 * turn, including those that ended meanwhile): what the script decided for
 * it, with the values one script call per request would have given. */
void tg_rl_group_next(tg_rl_group_t *g, const tg_rl_limit_t *limits, size_t nlimits, uint64_t cost,
                      tg_rl_result_t *out);

#endif
