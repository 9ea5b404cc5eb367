/*
 * tollgate public API: plugins.
 *
 * A plugin is a shared module exporting one descriptor, `tg_plugin`:
 *
 *     TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
 *         .abi = TG_PLUGIN_ABI,
 *         .name = "my-plugin",
 *         .create = my_create, .destroy = my_destroy,
 *         .request_head = my_request_head,
 *     };
 *
 * Lifecycle (a reload builds a new config generation beside the old one):
 *   create()          at config load (start, every reload, --check), once per
 *                     place the plugin is configured (the global chain or a
 *                     route); parses its YAML node and reports errors as
 *                     FILE:LINE:COL (tg_conf_error). The instance it returns
 *                     is immutable afterwards and shared by all worker threads.
 *   worker_init()     on every worker thread, on that thread's event loop,
 *                     once per instance and config generation: at start and
 *                     again after every reload, for the new instances, while
 *                     the old generation may still serve its last requests.
 *                     Per worker state (buffers, connections) without locks.
 *   request phases    on the worker thread that owns the request, with the
 *                     instance and worker state of the generation the request
 *                     started on.
 *   worker_fini()     on the worker thread, when that generation is released:
 *                     after a reload once its last request ended, or at
 *                     shutdown.
 *   destroy()         when the config is released (after every worker's
 *                     worker_fini() for it; without worker_init() when the
 *                     config never ran: a failed load or --check).
 *
 * Chain: the global `plugins:` run first, then the route's, in the order
 * written (a route entry naming a global plugin switches it off or gives it
 * another config in its place: docs/design.md). request_head and request_body hooks run in that order; the
 * response hooks (response_head, response_body) run last plugin first; log
 * hooks in chain order. The response_head and log hooks of every plugin in
 * the chain run for every response the client gets (but a 101 that starts a
 * WebSocket tunnel: log only): the upstream's, a plugin's answer, or one the
 * gateway makes (413, 502, ...), whether or not the plugin's request_head ran
 * (its ctx is then still zeroed). Until a route is chosen the chain is the
 * global one: for a 404 without a route, and for the answer to a head refused
 * before routing (400, 408, 431, ...); a head that could not be parsed has no
 * method, path or headers (NULL and 0).
 * response_body hooks run when a response_head hook asked for the body
 * (request.h).
 *
 * A phase hook returns a tg_filter_status_t. Each value means, by hook:
 *
 *   TG_FILTER_CONTINUE   done; the next plugin runs. (request_head: a plugin
 *                        that answered anyway gets its answer sent, as with
 *                        RESPONDED.)
 *   TG_FILTER_PAUSE      request_head only: the plugin started asynchronous
 *                        work and will call tg_request_resume() exactly once
 *                        from the same worker thread. Nothing else happens to
 *                        the request meanwhile. If the client goes away first,
 *                        the request's cleanups run (tg_request_on_cleanup) and
 *                        the plugin must not touch the request afterwards.
 *                        The resume may come before the hook returns (a
 *                        tg_fetch_start() or tg_redis_command() callback that
 *                        ran at once): it is recorded, and when the hook
 *                        returns PAUSE the chain goes on at once as if the
 *                        hook had returned the resume's status. A hook that
 *                        resumed and then returns anything but PAUSE keeps its
 *                        own status; the resume is ignored and logged as a
 *                        warning. From any other hook PAUSE counts as ERROR.
 *   TG_FILTER_RESPONDED  the plugin answered with tg_request_respond*()
 *                        (without an answer: a 500).
 *                        From request_head: the rest of the request_head
 *                        hooks and the upstream are skipped; the answer goes
 *                        through the response hooks (see Chain).
 *                        From request_body: the body is refused; the upstream
 *                        exchange is abandoned (its connection closed) and
 *                        the answer is sent if the upstream's response head
 *                        has not arrived yet, else the client connection is
 *                        closed. When the body was not read to its end, the
 *                        client connection closes after the answer.
 *                        From response_head: the answer replaces the response
 *                        (no head byte has gone out; an upstream's body is not
 *                        read). It goes through the response_head hooks that
 *                        have not run yet (plugins earlier in the chain), not
 *                        through this one or those that ran before it, and not
 *                        through response_body hooks. Headers set with
 *                        tg_response_set_header() on the replaced response are
 *                        gone; those of tg_request_add_response_header() stay.
 *                        From response_body: the plugin refuses the body; its
 *                        answer replaces the response while no byte of the
 *                        response head went to the client (a buffered body, or
 *                        the first piece of a filtered one), else the client
 *                        connection is closed so that the cut body never looks
 *                        complete. The answer goes through the response_head
 *                        hooks, not the response_body ones.
 *                        Every refusal is logged as a warning.
 *   TG_FILTER_ERROR      internal failure: the client gets a 500 naming the
 *                        plugin, from any hook, under the same rules as
 *                        RESPONDED (the 500 is the answer).
 * An unknown value counts as ERROR. The log hook returns nothing.
 */
#ifndef TOLLGATE_PLUGIN_H
#define TOLLGATE_PLUGIN_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tollgate/arena.h"
#include "tollgate/cidr.h"
#include "tollgate/clock.h"
#include "tollgate/conf.h"
#include "tollgate/log.h"
#include "tollgate/metrics.h"
#include "tollgate/request.h"
#include "tollgate/template.h"
#include "tollgate/text.h"
#include "tollgate/units.h"

/* ABI versions (docs/design.md, "Plugin ABI").
 *
 * MAJOR is bumped on every incompatible change of the public headers: a
 * changed or removed function, field or hook signature, a field moved. The
 * core loads only modules built for its own major.
 *
 * MINOR is bumped when something is added compatibly: a function, a value of
 * an enum a plugin only reads, a field appended to tg_plugin_t or to a struct
 * the core allocates (tg_plugin_env_t, tg_filter_t). A module built for an
 * older minor loads into a newer core: the core copies its descriptor into a
 * zeroed tg_plugin_t of its own size, so every field past the module's
 * `abi.size` (a hook added later) reads as NULL / 0. A module built for a
 * newer minor than the core is refused: it may call functions or read fields
 * the core does not have. So a plugin always runs on a core at least as new
 * as its headers, and structs the core allocates and hands out read-only
 * (tg_plugin_env_t, tg_filter_t) grow by appending, without a size field.
 *
 * History: 2.0 is the descriptor up to `reopen`; 2.1 appended `version`;
 * 2.2 added functions: tollgate/cidr.h, tg_query_find/tg_query_without
 * (text.h), tg_conf_doc_load/root/free (conf.h), tg_request_set_consumer /
 * tg_request_consumer (request.h); 2.3 added tollgate/template.h,
 * tg_request_add_header / tg_response_add_header (request.h) and
 * tg_query_bytes_valid (text.h); 2.4 appended tg_plugin_env_t.check_only; 2.5
 * added tg_request_protocol (request.h); 2.6 added tg_request_retries (request.h);
 * 2.7 added the TLS connection facts: tg_request_tls_version / _cipher / _sni /
 * _alpn (request.h); 2.8 added tg_response_header_at (request.h) and
 * tollgate/admin.h; 2.9 added tg_request_read_body (request.h); 2.10 added
 * tollgate/trace.h; 2.11 (Redis for admin actions) added tg_admin_redis_*
 * (admin.h); 2.12 (rate-limit batching) added tg_redis_key_slot (redis.h);
 * 2.13 (rate-limit speed) added tg_response_name_init /
 * tg_request_add_response_header_named (request.h). */
#define TG_PLUGIN_API_MAJOR 2
#define TG_PLUGIN_API_MINOR 13

/* Fills tg_plugin_t.abi with what the module is compiled against. */
#define TG_PLUGIN_ABI                                                           \
    {                                                                           \
        TG_PLUGIN_API_MAJOR, TG_PLUGIN_API_MINOR, (uint32_t)sizeof(tg_plugin_t) \
    }

#define TG_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef enum {
    TG_FILTER_CONTINUE = 0,
    TG_FILTER_PAUSE,
    TG_FILTER_RESPONDED,
    TG_FILTER_ERROR,
} tg_filter_status_t;

/* What a hook is given besides the request. */
typedef struct {
    void *instance; /* what create() returned */
    void *worker;   /* what worker_init() returned on this worker (NULL without it) */
    void *ctx;      /* the plugin's per-request slot: ctx_size zeroed bytes, or NULL */
} tg_filter_t;

/* Facts a plugin may use while it is created. */
typedef struct {
    const char *route_name;    /* NULL for the global chain */
    const char *config_dir;    /* directory of the main config file (relative paths) */
    const char *const *before; /* names of the plugins that run before this one, NULL-terminated */
    tg_metrics_t *metrics;     /* registry for the plugin's own metrics */
    /* A top-level `redis:` is configured: without it every tg_redis_command()
     * fails with "redis not configured", so a plugin that needs Redis refuses
     * the config here (an error at load, not a warning per request). */
    bool redis_configured;
    tg_sensitive_t *sensitive; /* the config's credential names: tg_sensitive_add() */
    /* API 2.4: the config is only checked (tollgate -t / -T) and will never
     * run: create() checks what it would open (a file is there and writable,
     * or its directory is) but creates no file, and starts no thread or
     * connection. The core gives this to every module it loads; one built
     * against an older minor never reads it. */
    bool check_only;
    /* New fields are appended (a minor bump). The core allocates this struct
     * and a module never runs on a core older than its headers (see
     * TG_PLUGIN_API_MINOR), so every field a module knows exists: no size
     * field is needed here. */
} tg_plugin_env_t;

/* From create() only: marks a query parameter, cookie or header name as one
 * that carries a credential in every request of this config, so that loggers
 * mask its value (tg_request_sensitive in request.h). set is env->sensitive.
 * Returns 0, or -1 when name is empty, longer than TG_SENSITIVE_NAME_MAX, or
 * memory ran out. */
int tg_sensitive_add(tg_sensitive_t *set, tg_sensitive_kind_t kind, const char *name);

/* What a module was compiled against: always TG_PLUGIN_ABI. `major` sits at
 * offset 0 where API 1's `api_version` was, so a module built for API 1 is
 * refused as "built for plugin API 1". */
typedef struct {
    uint32_t major; /* TG_PLUGIN_API_MAJOR */
    uint32_t minor; /* TG_PLUGIN_API_MINOR */
    uint32_t size;  /* sizeof(tg_plugin_t) in the module's headers */
} tg_plugin_abi_t;

/* The descriptor. Loader rules (src/chain.c), each a config error at the
 * plugin entry's FILE:LINE:COL: abi.major must equal TG_PLUGIN_API_MAJOR;
 * abi.minor must not exceed TG_PLUGIN_API_MINOR; abi.size must hold at least
 * the 2.0 descriptor (up to `reopen`) and, for a module of this core's minor
 * or older, no more than this core's sizeof(tg_plugin_t). Fields are only
 * ever appended, at the end, with a minor bump; none are reserved. */
typedef struct tg_plugin_s {
    tg_plugin_abi_t abi; /* TG_PLUGIN_ABI */
    const char *name;    /* as written in the config: "request-log" */
    size_t ctx_size;     /* bytes of per-request state (zeroed, arena-allocated) */

    /* node: the `config:` map (TG_CONF_NULL when absent). Returns 0 with
     * *instance set, or -1 with err filled. */
    int (*create)(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **instance,
                  tg_conf_err_t *err);
    void (*destroy)(void *instance);

    void *(*worker_init)(void *instance, struct event_base *base, unsigned worker_id);
    void (*worker_fini)(void *instance, void *worker);

    /* Request head received and routed (path canonical, route known). May
     * read/set/remove headers, rewrite the path, answer, or pause. */
    tg_filter_status_t (*request_head)(tg_request_t *r, const tg_filter_t *f);
    /* Request body bytes on their way upstream; chunk may be modified in
     * place (with a request_body hook in the chain the body always goes
     * upstream chunked, since its length may change); last is true once with
     * the final bytes (possibly none). May refuse the body (RESPONDED). */
    tg_filter_status_t (*request_body)(tg_request_t *r, const tg_filter_t *f,
                                       struct evbuffer *chunk, bool last);
    /* Response head (from the upstream or generated; not a 101 that starts
     * a WebSocket tunnel): status and headers may be changed;
     * tg_response_buffer_body() asks for the whole body at once. May answer
     * instead (RESPONDED). */
    tg_filter_status_t (*response_head)(tg_request_t *r, const tg_filter_t *f);
    /* Response body bytes on their way to the client, modified in place. With
     * tg_response_buffer_body() this is called once, last = true, with the
     * whole body. */
    tg_filter_status_t (*response_body)(tg_request_t *r, const tg_filter_t *f,
                                        struct evbuffer *chunk, bool last);
    /* After the response ended (or the connection failed): never fails. */
    void (*log)(tg_request_t *r, const tg_filter_t *f);

    /* SIGUSR1: reopen files (log rotation). Called on the main thread. */
    void (*reopen)(void *instance);

    /* ---- 2.1 ---- */
    /* The plugin's own version ("1.4.2", NUL-terminated) or NULL. Logged
     * (info) when the module is loaded, with the API it was built for. */
    const char *version;
} tg_plugin_t;

/* Readiness: the admin endpoint's /readyz answers 503 while any hold is
 * outstanding, e.g. from worker_init() until a first key set download
 * finished. Every hold must be released exactly once. Thread-safe. */
void tg_readiness_hold(void);
void tg_readiness_release(void);

#endif
