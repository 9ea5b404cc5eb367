/*
 * The worker's Redis connection (internal side of include/tollgate/redis.h).
 *
 * One hiredis async connection per worker on the worker's event_base, shared
 * by every plugin, commands pipelined. States: disconnected (a reconnect timer
 * is armed, 100 ms doubling to 5 s), connecting (TCP connect, then AUTH and
 * SELECT when configured and a PING, bounded by connect_timeout), ready. Only a ready
 * connection accepts commands: anything else fails at once, so a request never
 * waits for a dead Redis.
 *
 * Timeouts: replies come back in the order commands were sent and every
 * command has the same timeout, so the oldest call still waiting is always the
 * next to expire and one timer serves them all. A timed-out call gets
 * "timeout" and stays queued (hiredis still owns its slot) until its late
 * reply arrives and is dropped. When even a timed-out call gets no reply for
 * TG_REDIS_STALL_MS (or 10 timeouts, whichever is longer) the connection is
 * treated as lost, so a frozen server does not grow the queue forever.
 */
#ifndef TG_REDIS_H
#define TG_REDIS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "tollgate/redis.h"

#define TG_REDIS_STALL_MS 1000

/* A Sentinel node or a Cluster seed: numeric IP resolved at load, and port. */
typedef struct {
    char *host;
    int port;
} tg_redis_node_t;

struct tg_redis_conf_s {
    char *name; /* address as written (or "sentinel master NAME"), for logs */
    char *host; /* numeric IP resolved at load (NULL for unix sockets and sentinel) */
    int port;
    char *unix_path;                /* "unix:/path": the path; NULL for TCP */
    char *password;                 /* NULL = no AUTH */
    char *username;                 /* ACL user: AUTH username password; NULL = AUTH password */
    char *sentinel_master;          /* sentinel: the master's name; NULL = address mode */
    tg_redis_node_t *sentinels;     /* sentinel: the nodes asked in turn */
    size_t nsentinels;              /* sentinel: count of sentinels (>= 1) */
    char *sentinel_password;        /* sentinel: AUTH for the sentinels; NULL = none */
    tg_redis_node_t *cluster_seeds; /* cluster: nodes asked for the slot map; NULL = not cluster */
    size_t nseeds;                  /* cluster: count of seeds */
    uint32_t database;              /* SELECT when not 0 */
    uint64_t timeout_ms;            /* per command; default 50ms */
    uint64_t connect_timeout_ms;    /* connect + AUTH/SELECT; default 1s */
    int metric_errors;              /* tollgate_redis_errors_total id, -1 without a registry */
};

/* Error counts kept per connection (also exported as metrics when possible). */
typedef struct {
    uint64_t timeouts;     /* calls answered "timeout" */
    uint64_t disconnected; /* calls failed: not connected / connection lost */
    uint64_t errors;       /* Redis error replies */
    uint64_t connects;     /* successful connections (ready) */
    uint64_t late_replies; /* replies dropped because their call timed out */
} tg_redis_stats_t;

typedef struct tg_redis_s tg_redis_t;

/* Parses the top-level `redis:` map into cfg->redis (malloc'ed). Unknown keys
 * are errors at the key. Returns 0 or -1 with err filled. */
int tg_redis_conf_parse(tg_config_t *cfg, const tg_conf_node_t *node, tg_conf_err_t *err);
void tg_redis_conf_free(tg_redis_conf_t *conf);

/* On the worker thread: starts connecting (asynchronously; never blocks).
 * conf must outlive the connection. Returns NULL only when out of memory. */
tg_redis_t *tg_redis_new(const tg_redis_conf_t *conf, struct event_base *base, unsigned worker_id);
/* Pending calls get their callback with "shutdown" first. NULL is allowed. */
void tg_redis_free(tg_redis_t *rc);

/* tg_redis_command() without a request (the public one finds rc through it). */
tg_redis_call_t *tg_redis_send(tg_redis_t *rc, tg_redis_cb_t cb, void *data, int argc,
                               const char **argv, const size_t *argvlen);
/* A command formatted already (RESP text): redis_cluster.c resends one. cb
 * may be NULL (the reply is not wanted). Never for a cluster-mode rc. */
tg_redis_call_t *tg_redis_send_formatted(tg_redis_t *rc, tg_redis_cb_t cb, void *data,
                                         const char *cmd, size_t len);
bool tg_redis_ready(const tg_redis_t *rc);
/* argv as RESP text (what redisFormatCommandArgv makes, in one pass without
 * printf: a rate-limit batch has dozens of arguments). Into buf when it fits
 * in cap bytes, else into malloc'ed memory (free it when the result is not
 * buf); NULL when out of memory. argvlen NULL: strlen of each. NUL-terminated
 * (not counted in *len): hiredis reads one byte past a one-argument command. */
char *tg_redis_format(int argc, const char **argv, const size_t *argvlen, char *buf, size_t cap,
                      size_t *len);
void tg_redis_get_stats(const tg_redis_t *rc, tg_redis_stats_t *out);

#endif
