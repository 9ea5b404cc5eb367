/*
 * The loaded gateway configuration. Built once by tg_config_load(), immutable
 * afterwards and shared by all workers; refcounted so that a reload can swap a
 * pointer while requests in flight finish on the config they started with.
 */
#ifndef TG_CONFIG_H
#define TG_CONFIG_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "balance.h"
#include "client_fields.h"
#include "conf_errors.h"
#include "log_conf.h"
#include "tollgate/cidr.h"
#include "tollgate/conf.h"

typedef struct tg_router_s tg_router_t;
typedef struct tg_chain_s tg_chain_t;
typedef struct tg_plugin_inst_s tg_plugin_inst_t;
typedef struct tg_redis_conf_s tg_redis_conf_t;     /* src/redis.h */
typedef struct tg_aggregate_s tg_aggregate_t;       /* src/aggregate.h */
typedef struct tg_tracing_conf_s tg_tracing_conf_t; /* src/trace_conf.h */

/* `balance:` (src/balance.h) */
typedef enum {
    TG_BALANCE_ROUND_ROBIN = 0, /* smooth weighted */
    TG_BALANCE_LEAST_CONN,      /* weighted */
    TG_BALANCE_P2C_EWMA,
    TG_BALANCE_HASH, /* Maglev on hash_key */
} tg_balance_t;

/* `all_down:` what an upstream does when no target may get traffic. */
typedef enum {
    TG_ALL_DOWN_FAIL_OPEN = 0, /* every target shares the traffic (Envoy's panic mode) */
    TG_ALL_DOWN_FAIL_CLOSED,   /* 503 at once */
} tg_all_down_t;

/* `circuit_breaker:` (0 = no limit). */
typedef struct {
    uint32_t max_connections; /* per target, all workers together */
    uint32_t max_pending;     /* requests waiting for a new connection, per upstream */
    uint32_t max_requests;    /* requests in flight, per upstream */
} tg_circuit_conf_t;

/* `outlier_detection:` (src/outlier.h); consecutive_* 0 = that rule is off. */
typedef struct {
    uint32_t consecutive_5xx;
    uint32_t consecutive_gateway_errors;
    uint64_t base_ejection_time_ms;
    uint32_t max_ejection_percent;
} tg_outlier_conf_t;

/* Method bits for route matching; TG_METHOD_OTHER covers extension methods. */
enum {
    TG_METHOD_GET = 1u << 0,
    TG_METHOD_HEAD = 1u << 1,
    TG_METHOD_POST = 1u << 2,
    TG_METHOD_PUT = 1u << 3,
    TG_METHOD_DELETE = 1u << 4,
    TG_METHOD_PATCH = 1u << 5,
    TG_METHOD_OPTIONS = 1u << 6,
    TG_METHOD_TRACE = 1u << 7,
    TG_METHOD_CONNECT = 1u << 8,
    TG_METHOD_OTHER = 1u << 9,
};

typedef struct {
    struct sockaddr_storage addr; /* resolved at load */
    socklen_t addrlen;
    char *name;                  /* as written ("127.0.0.1:9001", "users.internal:80"), for logs */
    char *host_header;           /* "host:port" or "host" when port is 80: default Host toward it */
    uint32_t weight;             /* 1 unless written (`{address, weight}`) */
    struct tg_tshared_s *shared; /* cross-worker state (src/upstream_shared.h) */
    char *key;                   /* name, or "name#slot": shared state and hashing */
    /* A slot of a re-resolved name (src/resolve.h): addr is unused, the
     * address is endpoint's (NULL: none now). Slots of a name are adjacent. */
    bool dynamic;
    uint8_t slot;                           /* index among its name's slots */
    struct tg_endpoint_s *_Atomic endpoint; /* published by the resolver */
    struct tg_endpoint_s *history;          /* every endpoint it had (freed with the config) */
} tg_target_t;

typedef struct {
    char *name;
    size_t index; /* position in tg_config_t.upstreams: index of per-worker state */
    tg_target_t *targets;
    size_t ntargets;
    tg_balance_t balance;
    uint32_t keepalive;          /* idle pooled connections per worker (0 = no pooling) */
    uint64_t keepalive_trim_ms;  /* idle above keepalive this long is closed; 0 = at release */
    uint64_t connect_timeout_ms; /* default 1s */
    uint64_t timeout_ms;         /* to first response byte, and between reads; default 30s */
    uint32_t retries;            /* default 1 */
    uint32_t max_fails;          /* passive health: consecutive failures; default 3, 0 = off */
    uint64_t fail_timeout_ms;    /* passive health: cooldown; default 10s */
    struct tg_tls_client_s *tls; /* `tls:` toward the targets (src/tls.h); NULL = plain */
    tg_key_spec_t hash_key;      /* balance: hash */
    tg_maglev_t maglev;          /* balance: hash, built at load */
    uint8_t all_down;            /* tg_all_down_t */
    tg_circuit_conf_t circuit;
    tg_outlier_conf_t outlier;
    struct tg_health_conf_s *health; /* `health_check:` (src/health_check.h); NULL = none */
    struct tg_ushared_s *shared;     /* cross-worker state (src/upstream_shared.h) */
    uint64_t resolve_ms;             /* `resolve:`: names re-resolved this often; 0 = at load */
    bool counts_requests; /* max_requests or a route's retry budget needs requests in flight */
} tg_upstream_conf_t;

typedef enum {
    TG_PATH_ANY = 0, /* no path condition */
    TG_PATH_EXACT,
    TG_PATH_PREFIX,
    TG_PATH_REGEX,
} tg_path_match_t;

typedef struct {
    char *name;  /* lower-case header name */
    char *value; /* exact value (case-sensitive) */
} tg_header_match_t;

typedef struct {
    char *name;
    size_t index; /* position in tg_config_t.routes (file order) */
    /* match */
    char *host;         /* lower-case; NULL = any host */
    bool host_wildcard; /* host is "*.example.com": stored as ".example.com" */
    tg_path_match_t path_kind;
    char *path; /* exact path or prefix */
    size_t path_len;
    pcre2_code *regex;   /* path_regex, compiled + JIT at load */
    uint32_t methods;    /* TG_METHOD_* bits; 0 = any */
    char **method_names; /* extension methods listed (upper-case as written), NULL-terminated */
    tg_header_match_t *headers;
    size_t nheaders;
    /* action */
    char *strip_prefix; /* NULL = none */
    size_t strip_prefix_len;
    tg_upstream_conf_t *upstream; /* NULL for an aggregation, redirect or respond route */
    tg_aggregate_t *aggregate;    /* `aggregate:` calls instead of an upstream */
    /* src/route_action.h */
    struct tg_redirect_s *redirect; /* `redirect:` instead of an upstream */
    struct tg_respond_s *respond;   /* `respond:` instead of an upstream */
    struct tg_template_s *rewrite;  /* `rewrite:`: the path and query sent upstream */
    bool rewrite_drops_query;       /* the rewrite ends with "?": the client's query goes */
    uint8_t host_mode;              /* `host_header:` (tg_host_mode_t) */
    char *host_literal;             /* host_header: "a literal host" */
    bool websocket;                 /* forward Upgrade: websocket handshakes, then tunnel */
    uint64_t timeout_ms;            /* `timeout`: to the response head over all tries; 0 = none */
    uint64_t max_body_size;         /* `max_body_size` (when has_max_body_size) */
    bool has_max_body_size;
    struct tg_retry_policy_s *retry; /* `retry:` (src/retry_policy.h); NULL = the upstream's */
    struct tg_split_s *split;        /* `split:` instead of upstream (src/split.h) */
    tg_chain_t *chain;               /* global plugins + the route's own */
    const tg_conf_node_t *node;      /* only valid during load */
} tg_route_t;

typedef struct {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *name;                  /* as written */
    struct tg_tls_server_s *tls; /* `tls:` termination (src/tls.h); NULL = plain */
    uint32_t backlog;            /* listen(2) backlog as configured (default 4096) */
    uint8_t http2;               /* plain listener: tg_h2_mode_t (`http2:`, default off) */
} tg_listen_conf_t;

/* `listen[].http2:` on a plain listener (over TLS, h2 is chosen by ALPN). */
typedef enum {
    TG_H2_OFF = 0,             /* HTTP/1.1 only */
    TG_H2_PRIOR_KNOWLEDGE = 1, /* h2c when the client starts with the connection preface */
} tg_h2_mode_t;

/* `limits.http2:` (src/h2_session.c). */
typedef struct {
    uint32_t max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS; default 128 */
    uint32_t initial_window_size;    /* per stream, SETTINGS_INITIAL_WINDOW_SIZE; default 256KiB */
    uint32_t max_header_list_size;   /* decoded; past it the stream gets a 431; default 32KiB */
    uint64_t idle_timeout_ms;        /* the connection with no stream open; default 60s */
} tg_h2_limits_t;

#define TG_LISTEN_BACKLOG 4096

typedef struct {
    uint64_t header_timeout_ms; /* default 10s -> 408 */
    uint64_t idle_timeout_ms;   /* default 60s */
    uint64_t body_timeout_ms;   /* default 60s: inactivity while reading a request body -> 408 */
    uint64_t send_timeout_ms;   /* default 60s: client not reading our output -> close */
    uint64_t drain_timeout_ms;  /* default 30s: graceful shutdown deadline */
    uint64_t max_header_size;   /* default 16KiB -> 431 */
    uint64_t max_body_size;     /* default 10MiB -> 413; 0 = unlimited */
    uint32_t max_headers;       /* default 100 -> 431 */
    unsigned path_flags;        /* TG_PATH_* (src/path_norm.h): encoded_slashes: keep */
    tg_underscores_t headers_with_underscores; /* default drop (src/client_fields.h) */
    tg_h2_limits_t http2;                      /* `http2:` */
} tg_limits_t;

typedef struct tg_config_s {
    atomic_uint refcount;
    char *file;       /* path it was loaded from */
    unsigned workers; /* resolved: "auto" = number of online CPUs */
    tg_listen_conf_t *listeners;
    size_t nlisteners;
    bool has_admin;
    tg_listen_conf_t admin;
    bool has_admin_token;                 /* admin.token set: /config, POST /reload need it */
    unsigned char admin_token_sha256[32]; /* SHA-256 of admin.token; the token is not kept */
    tg_limits_t limits;
    tg_cidr_t *trusted_proxies;
    size_t ntrusted_proxies;
    tg_upstream_conf_t *upstreams;
    size_t nupstreams;
    tg_route_t *routes;
    size_t nroutes;
    tg_router_t *router;          /* built from routes at load */
    char *dir;                    /* directory of file: base of relative paths */
    char *plugin_path;            /* directory of bundled plugins (plugin_path: or the default) */
    tg_plugin_inst_t **instances; /* every plugin instance of this config */
    size_t ninstances;
    /* credential names the plugins marked (sensitive.h) */
    struct tg_sensitive_s *sensitive;
    tg_chain_t *global_chain; /* global `plugins:` (also the chain of unrouted requests) */
    tg_redis_conf_t *redis;   /* top-level `redis:`, NULL when absent */
    bool check_only;          /* loaded by -t/-T: plugins open and create no file */
    char **nameservers;       /* `resolver:` (src/resolve.h); NULL: /etc/resolv.conf */
    size_t nnameservers;
    tg_tracing_conf_t *tracing; /* `tracing:`, NULL when absent (trace_conf.h) */
    tg_log_conf_t log;          /* `log:` (log_conf.h) */
} tg_config_t;

typedef struct {
    /* Only checked (-t, -T): plugins are told (tg_plugin_env_t.check_only)
     * and create no file; the config is never run. */
    bool check_only;
    /* NULL, or where every error of the file goes (at most
     * TG_CONF_MAX_ERRORS messages, and their total count). */
    tg_conf_errors_t *errors;
    /* NULL, or where a load that succeeds writes the effective config as
     * YAML (tollgate -T, src/conf_print.h). */
    FILE *print;
} tg_config_opts_t;

/* Loads and validates path, collecting every error of the file (conf_errors.h)
 * rather than stopping at the first. On failure returns -1 with err holding
 * the first "FILE:LINE:COL: message" (or "FILE: message" when there is no
 * position) followed by " (and N more errors)" when there are more, and
 * opts->errors (when given) holding them all. */
int tg_config_load_opts(const char *path, const tg_config_opts_t *opts, tg_config_t **out,
                        tg_conf_err_t *err);
/* tg_config_load_opts() without options. */
int tg_config_load(const char *path, tg_config_t **out, tg_conf_err_t *err);

tg_config_t *tg_config_ref(tg_config_t *cfg);
void tg_config_unref(tg_config_t *cfg);

/* Finds an upstream by name; NULL if absent. */
tg_upstream_conf_t *tg_config_upstream(const tg_config_t *cfg, const char *name);

/* Parses "host:port", "[v6]:port", "*:port" or ":port" and resolves it
 * (getaddrinfo, at load). Used for listeners and targets. */
int tg_config_parse_address(const char *text, struct sockaddr_storage *ss, socklen_t *len,
                            char *errbuf, size_t errlen);

/* Whether addr is inside one of cfg's trusted_proxies. */
bool tg_config_is_trusted_proxy(const tg_config_t *cfg, const struct sockaddr *addr);

#endif
