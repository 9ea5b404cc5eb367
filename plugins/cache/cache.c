/*
 * cache plugin: a shared HTTP cache (RFC 9111) in memory or Redis, with
 * collapsed forwarding, stale-while-revalidate / stale-if-error (RFC 5861),
 * revalidation and an admin purge.
 *
 *   - name: cache
 *     config:
 *       storage: memory             # memory | redis (the top-level redis:, shared by instances)
 *       max_size: 256MiB            # the process's store, LRU by bytes
 *       max_body: 1MiB              # larger responses are not stored
 *       default_ttl: 0s             # only without freshness info; 0: not stored
 *       key: [method, host, path, query, "header:Accept-Language"]
 *       methods: [GET, HEAD]
 *       stale_while_revalidate: 30s # when the response does not say (RFC 5861)
 *       stale_if_error: 5m          # likewise
 *       collapse: true              # one upstream fetch per key at a time
 *
 * Phases:
 *   request_head   a GET or HEAD without Range is looked up (HEAD reads the
 *                  GET's entry). Fresh: answered from the entry (or 304 when
 *                  the client's validators match), Cache-Status "tollgate;
 *                  hit" and Age. Stale within stale-while-revalidate: one
 *                  request revalidates upstream, the others get the stale
 *                  entry. Otherwise the request goes upstream, conditional
 *                  when the entry has validators; with collapse, only the
 *                  first request for a key does, the others wait (PAUSE) for
 *                  its entry.
 *   response_head  an upstream 304 to our validators refreshes the entry and
 *                  answers from it; a 5xx (the gateway's 502/504 included)
 *                  within stale-if-error answers from the stale entry; a
 *                  storable response (section 3) gets its body buffered.
 *   response_body  stores the whole body with the head.
 *   log            counts tollgate_cache_total{result}.
 * storage: redis keeps each entry as one value (cache_codec.h) under
 * "tollgate:cache:<key>" with a TTL of its freshness plus the longer stale
 * window; the lookup is one GET (the request pauses), a Redis error is a
 * miss. One variant per key there (the latest stored; another variant is a
 * miss). Collapsing: the process's claim (the memory store's), then a
 * Redis lock (SET NX, 5 s) so that other instances poll (MGET entry and
 * lock) for the entry instead of fetching; the holder deletes the lock when
 * its response is stored or found unstorable. Each stored entry is also
 * indexed by route and path (cache_redis_index.h), so that POST /cache/purge
 * removes the Redis entries too (over the admin thread's own connection).
 * Put response-shape before cache in the chain: response hooks run last
 * plugin first, so the cache stores the upstream's body and shaping applies
 * to every answer, stored or not.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache_capture.h"
#include "cache_codec.h"
#include "cache_entry.h"
#include "cache_key.h"
#include "cache_policy.h"
#include "cache_redis_index.h"
#include "cache_store.h"
#include "tollgate/admin.h"
#include "tollgate/plugin.h"
#include "tollgate/redis.h"

#include <hiredis/hiredis.h>

/* A waiter gives up on the fetch it waits for after this long and goes
 * upstream itself; a claim this old is taken over. */
#define COLLAPSE_MAX_MS 30000
/* Waiters look for the entry every few ms, backing off to this. */
#define WAIT_FIRST_MS 2
#define WAIT_MAX_MS 50
#define PURGE_PATH "/cache/purge"
/* storage redis: the instance that fetches a key holds this lock (SET NX) so
 * that other instances wait for its entry rather than fetch too; it expires
 * on its own when the holder dies. */
#define LOCK_PREFIX "tollgate:cache-lock:"
#define LOCK_MS 5000
#define LOCK_MS_TEXT "5000"
/* Deletes the lock only while it is still ours. */
#define UNLOCK_SCRIPT \
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

typedef enum {
    R_NONE = 0,
    R_HIT,
    R_MISS,
    R_STALE,
    R_REVALIDATED,
    R_STALE_ERROR,
    R_BYPASS
} result_t;
static const char *const result_names[] = {"hit",         "miss",           "stale",
                                           "revalidated", "stale_if_error", "bypass"};

typedef struct {
    unsigned storage;
    uint64_t max_size, max_body;
    tg_cache_defaults_t d; /* default_ttl, stale_while_revalidate, stale_if_error */
    char **key;
    size_t nkey;
    char **methods;
    size_t nmethods;
    bool collapse;
    tg_cache_part_t *parts;
    size_t nparts;
    bool head;       /* HEAD is cached (GET always is) */
    bool store_held; /* holds a reference on the process's store */
    int metric;
} cache_conf_t;

enum { STORAGE_MEMORY = 0, STORAGE_REDIS };

typedef enum { ST_NONE = 0, ST_BYPASS, ST_SERVED, ST_WAIT, ST_FORWARD } state_t;

typedef struct {
    const cache_conf_t *c;
    tg_request_t *r;
    uint8_t state, result;
    bool reload;      /* the client asked for an end-to-end check (no-cache) */
    bool no_store;    /* the client said no-store */
    bool auth;        /* the request carries Authorization */
    bool conditional; /* our validators went upstream */
    bool head;        /* a HEAD request */
    char *key;
    size_t klen;
    const char *inm, *ims; /* the client's If-None-Match / If-Modified-Since (copies) */
    size_t inm_len, ims_len;
    tg_cache_entry_t *entry;   /* the stale entry being revalidated */
    tg_cache_entry_t *capture; /* the response being stored */
    uint64_t claim;            /* our claim on key, 0 without */
    uint64_t holder;           /* the claim we wait for */
    uint64_t wait_start_ms, wait_ms;
    struct event *timer;
    tg_redis_call_t *call; /* storage redis: the pending GET */
    bool may_wait;         /* ...and what decide() gets when it answers */
    bool locked;           /* holds the Redis lock of key */
    bool remote;           /* waits for another instance's fetch */
} cache_ctx_t;

/* ---- the process's store ---- */

static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;
static tg_cache_store_t *store;
static unsigned store_users;
static unsigned redis_users; /* instances with storage redis: a purge reaches Redis too */

static int purge_action(void *data, const char *body, size_t len, char *out);

static int store_acquire(uint64_t max_size, bool redis)
{
    int rc = 0;
    pthread_mutex_lock(&store_lock);
    if (store == NULL) {
        store = tg_cache_store_new(max_size);
        if (store == NULL)
            rc = -1;
        else if (tg_admin_action_add(PURGE_PATH, purge_action, store) < 0)
            tg_log(TG_LOG_WARN, "cache: %s is served by someone else", PURGE_PATH);
    } else {
        /* The latest config's bound (a reload) applies to the whole store. */
        tg_cache_store_set_limit(store, max_size);
    }
    if (rc == 0) {
        store_users++;
        redis_users += redis;
    }
    pthread_mutex_unlock(&store_lock);
    return rc;
}

static void store_release(bool redis)
{
    pthread_mutex_lock(&store_lock);
    redis_users -= redis;
    if (--store_users == 0) {
        tg_admin_action_remove(PURGE_PATH, store);
        tg_cache_store_free(store);
        store = NULL;
    }
    pthread_mutex_unlock(&store_lock);
}

/* The memory store's entries, then Redis's when an instance stores there. A
 * Redis failure answers 503 with what was purged from memory. */
static int purge(tg_cache_store_t *s, const char *route, const char *path, bool prefix, char *out)
{
    long n = (long)tg_cache_store_purge(s, route, path, prefix);
    pthread_mutex_lock(&store_lock);
    bool redis = redis_users > 0;
    pthread_mutex_unlock(&store_lock);
    char err[200];
    long r = redis ? tg_cache_redis_purge(route, path, prefix, err, sizeof(err)) : 0;
    if (r < 0) {
        json_t *j = json_pack("{s:i, s:s+}", "purged", (json_int_t)n, "error", "redis: ", err);
        char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        snprintf(out, TG_ADMIN_ACTION_OUT_MAX, "%s", text != NULL ? text : "{}");
        free(text);
        json_decref(j);
        return 503;
    }
    snprintf(out, TG_ADMIN_ACTION_OUT_MAX, "{\"purged\": %ld}", n + r);
    return 200;
}

/* POST /cache/purge {"route": "...", "path": "/p"} | {"route": "...", "prefix": "/p/"} */
static int purge_action(void *data, const char *body, size_t len, char *out)
{
    json_error_t jerr;
    json_t *j = json_loadb(body, len, 0, &jerr);
    const char *route = j != NULL ? json_string_value(json_object_get(j, "route")) : NULL;
    const char *path = j != NULL ? json_string_value(json_object_get(j, "path")) : NULL;
    const char *prefix = j != NULL ? json_string_value(json_object_get(j, "prefix")) : NULL;
    int status = 400;
    if (route == NULL || (path == NULL) == (prefix == NULL) ||
        (path != NULL ? path : prefix)[0] != '/') {
        snprintf(out, TG_ADMIN_ACTION_OUT_MAX, "%s",
                 "{\"error\": \"expected {\\\"route\\\": name, \\\"path\\\" or \\\"prefix\\\": "
                 "\\\"/...\\\"}\"}");
    } else {
        status = purge(data, route, path != NULL ? path : prefix, path == NULL, out);
    }
    json_decref(j);
    return status;
}

/* ---- config ---- */

static const char *const storage_names[] = {"memory", "redis", NULL};

static const tg_conf_field_t conf_fields[] = {
    {"storage", TG_CONF_FIELD_ENUM, TG_CONF_AT(cache_conf_t, storage), .names = storage_names},
    {"max_size", TG_CONF_FIELD_SIZE, TG_CONF_AT(cache_conf_t, max_size), .min = 64 << 10,
     .def = 256ULL << 20},
    {"max_body", TG_CONF_FIELD_SIZE, TG_CONF_AT(cache_conf_t, max_body), .min = 1,
     .max = 1ULL << 30, .def = 1 << 20},
    {"default_ttl", TG_CONF_FIELD_DURATION, TG_CONF_AT(cache_conf_t, d.default_ttl_ms)},
    {"key", TG_CONF_FIELD_STRINGS, TG_CONF_AT(cache_conf_t, key),
     .count_offset = offsetof(cache_conf_t, nkey), .min = 1, .flags = TG_CONF_NONEMPTY},
    {"methods", TG_CONF_FIELD_STRINGS, TG_CONF_AT(cache_conf_t, methods),
     .count_offset = offsetof(cache_conf_t, nmethods), .min = 1, .flags = TG_CONF_NONEMPTY},
    {"stale_while_revalidate", TG_CONF_FIELD_DURATION, TG_CONF_AT(cache_conf_t, d.swr_ms)},
    {"stale_if_error", TG_CONF_FIELD_DURATION, TG_CONF_AT(cache_conf_t, d.sie_ms)},
    {"collapse", TG_CONF_FIELD_BOOL, TG_CONF_AT(cache_conf_t, collapse), .def = true},
    TG_CONF_END,
};

static void conf_free(cache_conf_t *c)
{
    for (size_t i = 0; i < c->nparts; i++)
        free(c->parts[i].header);
    free(c->parts);
    tg_conf_fields_free(conf_fields, c);
    free(c);
}

static int parse_key(cache_conf_t *c, const tg_conf_node_t *node, tg_conf_err_t *err)
{
    static const char *const def[] = {"method", "host", "path", "query"};
    size_t n = c->nkey > 0 ? c->nkey : 4;
    const tg_conf_node_t *at = tg_conf_map_get(node, "key");
    if ((c->parts = calloc(n, sizeof(*c->parts))) == NULL)
        return tg_conf_error(err, node, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *s = c->nkey > 0 ? c->key[i] : def[i];
        if (tg_cache_part_parse(s, &c->parts[i]) < 0)
            return tg_conf_error(err, at != NULL ? at : node,
                                 "key: '%s' is not method, host, path, query or header:<Name>", s);
        c->nparts++;
    }
    return 0;
}

static int parse_methods(cache_conf_t *c, const tg_conf_node_t *node, tg_conf_err_t *err)
{
    c->head = c->nmethods == 0;
    for (size_t i = 0; i < c->nmethods; i++) {
        if (strcmp(c->methods[i], "HEAD") == 0)
            c->head = true;
        else if (strcmp(c->methods[i], "GET") != 0)
            return tg_conf_error(err, tg_conf_map_get(node, "methods"),
                                 "methods: only GET and HEAD are cached, not '%s'", c->methods[i]);
    }
    return 0;
}

static int create(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **out,
                  tg_conf_err_t *err)
{
    cache_conf_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return tg_conf_error(err, node, "out of memory");
    if (tg_conf_read(node, conf_fields, NULL, c, err) < 0 || parse_key(c, node, err) < 0 ||
        parse_methods(c, node, err) < 0)
        goto fail;
    if (c->storage == STORAGE_REDIS && !env->redis_configured) {
        tg_conf_error(err, tg_conf_map_get(node, "storage"),
                      "storage: redis needs a top-level 'redis:' section");
        goto fail;
    }
    if (c->max_body > c->max_size / TG_CACHE_SHARDS) {
        tg_conf_error(err, node, "max_size must be at least %d x max_body", TG_CACHE_SHARDS);
        goto fail;
    }
    if (!env->check_only) {
        if (store_acquire(c->max_size, c->storage == STORAGE_REDIS) < 0) {
            tg_conf_error(err, node, "out of memory");
            goto fail;
        }
        c->store_held = true;
    }
    c->metric =
        tg_metrics_counter(env->metrics, "tollgate_cache_total",
                           "Requests seen by the cache, by outcome.", "result", result_names, 6);
    *out = c;
    return 0;
fail:
    conf_free(c);
    return -1;
}

static void destroy(void *instance)
{
    cache_conf_t *c = instance;
    if (c->store_held)
        store_release(c->storage == STORAGE_REDIS);
    conf_free(c);
}

/* ---- helpers ---- */

/* The client's validators against e (ours may have replaced them upstream). */
static bool client_not_modified(const cache_ctx_t *x, const tg_cache_entry_t *e)
{
    if (x->inm != NULL) /* RFC 9110 section 13.1.3: then If-Modified-Since is ignored */
        return tg_etag_match(x->inm, x->inm_len, e->etag);
    if (x->ims == NULL || e->last_modified == NULL)
        return false;
    int64_t since = tg_http_date(x->ims, x->ims_len);
    int64_t lm = tg_http_date(e->last_modified, strlen(e->last_modified));
    return since >= 0 && lm >= 0 && lm <= since;
}

/* RFC 9110 section 15.4.5: what a 304 carries. */
static bool in_304(const char *name)
{
    static const char *const keep[] = {"ETag", "Cache-Control",    "Expires", "Vary",
                                       "Date", "Content-Location", NULL};
    for (const char *const *k = keep; *k; k++)
        if (strcasecmp(*k, name) == 0)
            return true;
    return false;
}

/* Answers r from e. */
static void serve(tg_request_t *r, cache_ctx_t *x, const tg_cache_entry_t *e, int64_t age,
                  const char *status)
{
    bool nm = e->status == 200 && client_not_modified(x, e);
    if (nm)
        tg_request_respond(r, 304, NULL, "", 0);
    else
        tg_request_respond(r, e->status, e->content_type, e->body, e->body_len);
    for (size_t i = 0; i < e->nheaders; i++)
        if (!nm || in_304(e->headers[i].name))
            tg_request_add_response_header(r, e->headers[i].name, e->headers[i].value,
                                           e->headers[i].value_len);
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%lld", (long long)(age > 0 ? age : 0));
    tg_request_add_response_header(r, "Age", buf, (size_t)n);
    tg_request_add_response_header(r, "Cache-Status", status, strlen(status));
    x->state = ST_SERVED;
}

typedef struct {
    tg_request_t *r;
    bool auth;
} match_arg_t;

static bool variant_fits(const tg_cache_entry_t *e, void *arg)
{
    match_arg_t *m = arg;
    if (m->auth && !e->shared_auth) /* RFC 9111 section 3.5 */
        return false;
    if (e->vary == NULL)
        return true;
    const char *vk = tg_cache_vary_key(m->r, e->vary);
    return vk != NULL && strcmp(vk, e->vary_key) == 0;
}

static void release_claim(cache_ctx_t *x)
{
    if (x->claim != 0 && x->claim != UINT64_MAX)
        tg_cache_pending_release(store, x->key, x->klen, x->claim);
    x->claim = 0;
}

static void ctx_cleanup(void *data)
{
    cache_ctx_t *x = data;
    release_claim(x);
    tg_cache_entry_unref(x->entry);
    tg_cache_entry_unref(x->capture);
    x->entry = x->capture = NULL;
    if (x->timer != NULL)
        event_free(x->timer);
    x->timer = NULL;
    if (x->call != NULL)
        tg_redis_cancel(x->call);
    x->call = NULL;
}

/* ---- request_head ---- */

static tg_filter_status_t forward(tg_request_t *r, cache_ctx_t *x)
{
    x->state = ST_FORWARD;
    if (x->entry == NULL)
        return TG_FILTER_CONTINUE;
    const tg_cache_entry_t *e = x->entry;
    if (e->etag == NULL && e->last_modified == NULL)
        return TG_FILTER_CONTINUE;
    /* Our validators replace the client's: a 304 then refreshes the entry
     * and the client's own conditions are answered from it. */
    tg_request_remove_header(r, "If-None-Match");
    tg_request_remove_header(r, "If-Modified-Since");
    if (e->etag != NULL)
        tg_request_set_header(r, "If-None-Match", e->etag, strlen(e->etag));
    if (e->last_modified != NULL)
        tg_request_set_header(r, "If-Modified-Since", e->last_modified, strlen(e->last_modified));
    x->conditional = true;
    return TG_FILTER_CONTINUE;
}

static void wait_cb(evutil_socket_t fd, short what, void *arg);

static void redis_stored(void *data, const struct redisReply *reply, const char *error)
{
    (void)data;
    (void)reply;
    (void)error; /* a lost store is a later miss, a lost unlock expires */
}

static tg_filter_status_t wait_for(tg_request_t *r, cache_ctx_t *x)
{
    if (x->timer == NULL)
        x->timer = evtimer_new(tg_request_event_base(r), wait_cb, x);
    if (x->timer == NULL)
        return forward(r, x);
    x->state = ST_WAIT;
    x->wait_start_ms = tg_now_ms();
    x->wait_ms = WAIT_FIRST_MS;
    struct timeval tv = tg_timeval_ms(x->wait_ms);
    evtimer_add(x->timer, &tv);
    return TG_FILTER_PAUSE;
}

static const char *lock_key(tg_request_t *r, const cache_ctx_t *x)
{
    return tg_arena_printf(tg_request_arena(r), LOCK_PREFIX "%.*s", (int)x->klen, x->key);
}

static void lock_got(void *data, const struct redisReply *reply, const char *error)
{
    cache_ctx_t *x = data;
    x->call = NULL;
    if (error == NULL && reply->type == REDIS_REPLY_NIL) {
        x->remote = true; /* another instance fetches: wait for its entry */
        tg_filter_status_t st = wait_for(x->r, x);
        if (st != TG_FILTER_PAUSE)
            tg_request_resume(x->r, st);
        return;
    }
    /* Ours, or Redis failed: fetch (uncollapsed across instances then). */
    x->locked = error == NULL && reply->type == REDIS_REPLY_STATUS;
    tg_request_resume(x->r, forward(x->r, x));
}

/* This process's claim is ours; with storage redis, take the instances'
 * lock too. */
static tg_filter_status_t lead(tg_request_t *r, cache_ctx_t *x)
{
    if (x->c->storage != STORAGE_REDIS)
        return forward(r, x);
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)x->claim);
    const char *lk = lock_key(r, x);
    const char *argv[6] = {"SET", lk, id, "NX", "PX", LOCK_MS_TEXT};
    size_t argvlen[6] = {3, strlen(lk), strlen(id), 2, 2, strlen(LOCK_MS_TEXT)};
    x->state = ST_WAIT;
    x->call = tg_redis_command(r, lock_got, x, 6, argv, argvlen);
    return TG_FILTER_PAUSE;
}

static void unlock(tg_request_t *r, cache_ctx_t *x)
{
    if (!x->locked)
        return;
    x->locked = false;
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)x->claim);
    const char *lk = lock_key(r, x);
    const char *argv[5] = {"EVAL", UNLOCK_SCRIPT, "1", lk, id};
    size_t argvlen[5] = {4, strlen(UNLOCK_SCRIPT), 1, strlen(lk), strlen(id)};
    tg_redis_command(r, redis_stored, NULL, 5, argv, argvlen);
}

/* Looks up and answers, forwards or waits. may_wait is false after a wait:
 * then a request that finds no usable entry goes upstream unclaimed (the
 * fetch it waited for stored nothing: the others go at once, not one by
 * one). */
static tg_filter_status_t decide_with(tg_request_t *r, cache_ctx_t *x, tg_cache_entry_t *e,
                                      bool may_wait)
{
    const cache_conf_t *c = x->c;
    int64_t now = tg_cache_now();
    x->result = R_MISS;
    if (e != NULL) {
        int64_t age = tg_cache_entry_age(e, now);
        if (!e->no_cache && !x->reload && age < e->lifetime) {
            x->result = R_HIT;
            serve(r, x, e, age, "tollgate; hit");
            tg_cache_entry_unref(e);
            return TG_FILTER_RESPONDED;
        }
        tg_cache_entry_unref(x->entry);
        x->entry = e;
        x->result = R_STALE;
        bool swr = !x->reload && !e->must_revalidate && !e->no_cache && age < e->lifetime + e->swr;
        if (swr && !may_wait)
            return forward(r, x);
        if (swr) {
            /* A GET that claims the key revalidates it; a HEAD (it would
             * store nothing) and every other request get the stale entry. */
            uint64_t holder;
            if (!x->head)
                x->claim = tg_cache_pending_claim(store, x->key, x->klen, tg_now_ms(),
                                                  COLLAPSE_MAX_MS, &holder);
            if (x->claim != 0)
                return forward(r, x);
            x->result = R_HIT;
            serve(r, x, e, age, "tollgate; hit; detail=stale-while-revalidate");
            return TG_FILTER_RESPONDED;
        }
    }
    /* A HEAD stores nothing (no body): it neither claims nor waits. */
    if (!c->collapse || x->reload || !may_wait || x->head)
        return forward(r, x);
    x->claim =
        tg_cache_pending_claim(store, x->key, x->klen, tg_now_ms(), COLLAPSE_MAX_MS, &x->holder);
    return x->claim != 0 ? lead(r, x) : wait_for(r, x);
}

static void redis_got(void *data, const struct redisReply *reply, const char *error)
{
    cache_ctx_t *x = data;
    x->call = NULL;
    tg_cache_entry_t *e = NULL;
    if (error != NULL)
        tg_request_log(x->r, TG_LOG_WARN, "cache: redis: %s (a miss)", error);
    else if (reply->type == REDIS_REPLY_STRING)
        e = tg_cache_decode(reply->str, reply->len);
    match_arg_t m = {x->r, x->auth};
    if (e != NULL && !variant_fits(e, &m)) { /* another variant: only the latest is kept */
        tg_cache_entry_unref(e);
        e = NULL;
    }
    tg_filter_status_t st = decide_with(x->r, x, e, x->may_wait);
    if (st != TG_FILTER_PAUSE)
        tg_request_resume(x->r, st);
}

/* The entry for the request, then decide_with(). With storage redis the
 * answer comes later (PAUSE; redis_got resumes). */
static tg_filter_status_t decide(tg_request_t *r, cache_ctx_t *x, bool may_wait)
{
    if (x->c->storage == STORAGE_REDIS) {
        const char *argv[2] = {"GET",
                               tg_arena_printf(tg_request_arena(r), TG_CACHE_REDIS_PREFIX "%.*s",
                                               (int)x->klen, x->key)};
        size_t argvlen[2] = {3, strlen(argv[1])};
        x->may_wait = may_wait;
        x->state = ST_WAIT;
        x->call = tg_redis_command(r, redis_got, x, 2, argv, argvlen);
        return TG_FILTER_PAUSE;
    }
    match_arg_t m = {r, x->auth};
    return decide_with(r, x, tg_cache_store_get(store, x->key, x->klen, variant_fits, &m),
                       may_wait);
}

static void rearm(cache_ctx_t *x)
{
    x->wait_ms = x->wait_ms * 2 < WAIT_MAX_MS ? x->wait_ms * 2 : WAIT_MAX_MS;
    struct timeval tv = tg_timeval_ms(x->wait_ms);
    evtimer_add(x->timer, &tv);
}

/* Another instance's fetch: its entry and its lock in one MGET. */
static void remote_got(void *data, const struct redisReply *reply, const char *error)
{
    cache_ctx_t *x = data;
    x->call = NULL;
    bool ok = error == NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2;
    const redisReply *val = ok ? reply->element[0] : NULL;
    tg_cache_entry_t *e =
        val != NULL && val->type == REDIS_REPLY_STRING ? tg_cache_decode(val->str, val->len) : NULL;
    match_arg_t m = {x->r, x->auth};
    int64_t now = tg_cache_now();
    if (e != NULL && variant_fits(e, &m) && !e->no_cache &&
        tg_cache_entry_age(e, now) < e->lifetime) {
        x->result = R_HIT;
        serve(x->r, x, e, tg_cache_entry_age(e, now), "tollgate; hit");
        tg_cache_entry_unref(e);
        release_claim(x);
        tg_request_resume(x->r, TG_FILTER_RESPONDED);
        return;
    }
    tg_cache_entry_unref(e);
    if (ok && reply->element[1]->type != REDIS_REPLY_NIL) {
        rearm(x); /* still fetching */
        return;
    }
    x->remote = false; /* the fetch ended without an entry, or Redis failed */
    tg_request_resume(x->r, forward(x->r, x));
}

static void remote_poll(cache_ctx_t *x, uint64_t waited)
{
    if (waited >= LOCK_MS) {
        x->remote = false;
        tg_request_resume(x->r, forward(x->r, x));
        return;
    }
    tg_arena_t *a = tg_request_arena(x->r);
    const char *argv[3] = {"MGET",
                           tg_arena_printf(a, TG_CACHE_REDIS_PREFIX "%.*s", (int)x->klen, x->key),
                           lock_key(x->r, x)};
    size_t argvlen[3] = {4, strlen(argv[1]), strlen(argv[2])};
    x->call = tg_redis_command(x->r, remote_got, x, 3, argv, argvlen);
}

static void wait_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cache_ctx_t *x = arg;
    uint64_t waited = tg_now_ms() - x->wait_start_ms;
    if (x->remote) {
        remote_poll(x, waited);
        return;
    }
    if (tg_cache_pending_held(store, x->key, x->klen, x->holder) && waited < COLLAPSE_MAX_MS) {
        x->wait_ms = x->wait_ms * 2 < WAIT_MAX_MS ? x->wait_ms * 2 : WAIT_MAX_MS;
        struct timeval tv = tg_timeval_ms(x->wait_ms);
        evtimer_add(x->timer, &tv);
        return;
    }
    tg_filter_status_t st = decide(x->r, x, false);
    if (st != TG_FILTER_PAUSE)
        tg_request_resume(x->r, st);
}

static bool method_cached(const cache_conf_t *c, tg_request_t *r)
{
    size_t len;
    const char *m = tg_request_method(r, &len);
    return (len == 3 && memcmp(m, "GET", 3) == 0) ||
           (c->head && len == 4 && memcmp(m, "HEAD", 4) == 0);
}

static tg_filter_status_t request_head(tg_request_t *r, const tg_filter_t *f)
{
    const cache_conf_t *c = f->instance;
    cache_ctx_t *x = f->ctx;
    x->c = c;
    x->r = r;
    if (store == NULL || !method_cached(c, r))
        return TG_FILTER_CONTINUE;
    size_t len;
    /* Range requests pass through: the store holds whole bodies only. */
    if (tg_request_header(r, "Range", &len) != NULL ||
        (x->key = tg_cache_key(r, c->parts, c->nparts, &x->klen)) == NULL) {
        x->state = ST_BYPASS;
        x->result = R_BYPASS;
        return TG_FILTER_CONTINUE;
    }
    tg_cc_t cc;
    tg_cc_init(&cc);
    const char *v = tg_request_header(r, "Cache-Control", &len);
    if (v != NULL)
        tg_cc_parse(v, len, &cc);
    v = tg_request_header(r, "Pragma", &len);
    /* RFC 9111 section 5.4: Pragma: no-cache counts only without Cache-Control. */
    bool pragma = !cc.any && v != NULL && tg_list_has(v, len, "no-cache", 8);
    x->reload = cc.no_cache || cc.max_age == 0 || pragma;
    x->no_store = cc.no_store;
    x->auth = tg_request_header(r, "Authorization", &len) != NULL;
    x->head = tg_request_method(r, &len)[0] == 'H';
    tg_arena_t *a = tg_request_arena(r);
    if ((v = tg_request_header(r, "If-None-Match", &x->inm_len)) != NULL)
        x->inm = tg_arena_strndup(a, v, x->inm_len);
    if ((v = tg_request_header(r, "If-Modified-Since", &x->ims_len)) != NULL)
        x->ims = tg_arena_strndup(a, v, x->ims_len);
    tg_request_on_cleanup(r, ctx_cleanup, x);
    return decide(r, x, true);
}

/* ---- response_head ---- */

/* Stores e (takes the caller's reference). Redis keeps it while it may be
 * used: fresh, then stale within its windows. */
static void put(tg_request_t *r, const cache_conf_t *c, tg_cache_entry_t *e)
{
    if (c->storage == STORAGE_MEMORY) {
        tg_cache_store_put(store, e);
        return;
    }
    int64_t keep = e->lifetime + (e->swr > e->sie ? e->swr : e->sie) - e->initial_age;
    struct evbuffer *b = evbuffer_new();
    if (b != NULL && keep > 0 && e->body_len <= c->max_body && tg_cache_encode(e, b) == 0) {
        char ttl[24];
        snprintf(ttl, sizeof(ttl), "%lld", (long long)keep * 1000);
        const char *key = tg_arena_printf(tg_request_arena(r), TG_CACHE_REDIS_PREFIX "%.*s",
                                          (int)e->klen, e->key);
        const char *argv[5] = {"SET", key, (const char *)evbuffer_pullup(b, -1), "PX", ttl};
        size_t argvlen[5] = {3, strlen(key), evbuffer_get_length(b), 2, strlen(ttl)};
        tg_redis_command(r, redis_stored, NULL, 5, argv, argvlen);
        tg_cache_redis_index(r, e, key, keep);
    }
    if (b != NULL)
        evbuffer_free(b);
    tg_cache_entry_unref(e);
}

static void add_cache_status(tg_request_t *r, const char *fwd, int status)
{
    char buf[80];
    int n = snprintf(buf, sizeof(buf), "tollgate; fwd=%s; fwd-status=%d", fwd, status);
    tg_response_add_header(r, "Cache-Status", buf, (size_t)n);
}

static tg_filter_status_t response_head(tg_request_t *r, const tg_filter_t *f)
{
    const cache_conf_t *c = f->instance;
    cache_ctx_t *x = f->ctx;
    if (x->state != ST_FORWARD)
        return TG_FILTER_CONTINUE;
    x->state = ST_SERVED; /* an answer given below is not ours to see again */
    int status = tg_response_status(r);
    int64_t now = tg_cache_now();
    tg_cc_t cc;
    tg_cache_read_cc(r, &cc);
    const char *fwd = x->entry != NULL ? "stale" : "miss";
    if (x->conditional && status == 304) {
        tg_cache_entry_t *e = tg_cache_refresh(&c->d, r, &cc, x->entry);
        if (e == NULL) {
            release_claim(x);
            return TG_FILTER_ERROR;
        }
        tg_cache_entry_ref(e);
        put(r, c, e);
        unlock(r, x);
        release_claim(x);
        x->result = R_REVALIDATED;
        serve(r, x, e, tg_cache_entry_age(e, now), "tollgate; fwd=stale; fwd-status=304");
        tg_cache_entry_unref(e);
        return TG_FILTER_RESPONDED;
    }
    const tg_cache_entry_t *old = x->entry;
    if (old != NULL && status >= 500 && !old->must_revalidate &&
        tg_cache_entry_age(old, now) < old->lifetime + old->sie) {
        char buf[96];
        snprintf(buf, sizeof(buf), "tollgate; fwd=stale; fwd-status=%d; detail=stale-if-error",
                 status);
        unlock(r, x);
        release_claim(x);
        x->result = R_STALE_ERROR;
        serve(r, x, old, tg_cache_entry_age(old, now), buf);
        return TG_FILTER_RESPONDED;
    }
    add_cache_status(r, fwd, status);
    if (!x->no_store && tg_cache_storable(&c->d, r, &cc, x->auth) &&
        (x->capture = tg_cache_capture(&c->d, r, &cc, x->key, x->klen)) != NULL) {
        if (status == 204) { /* no body, no body hook: stored now */
            tg_cache_entry_account(x->capture);
            put(r, c, x->capture);
            x->capture = NULL;
            unlock(r, x);
            release_claim(x);
            return TG_FILTER_CONTINUE;
        }
        tg_response_buffer_body(r, (size_t)c->max_body);
        return TG_FILTER_CONTINUE;
    }
    unlock(r, x);
    release_claim(x);
    return TG_FILTER_CONTINUE;
}

/* ---- response_body ---- */

static tg_filter_status_t response_body(tg_request_t *r, const tg_filter_t *f,
                                        struct evbuffer *chunk, bool last)
{
    const cache_conf_t *c = f->instance;
    cache_ctx_t *x = f->ctx;
    tg_cache_entry_t *e = x->capture;
    if (e == NULL)
        return TG_FILTER_CONTINUE;
    if (!tg_response_body_buffered(r) || !last) { /* over max_body: not stored */
        tg_cache_entry_unref(e);
        x->capture = NULL;
        unlock(r, x);
        release_claim(x);
        return TG_FILTER_CONTINUE;
    }
    size_t len = evbuffer_get_length(chunk);
    if ((e->body = malloc(len + 1)) != NULL) {
        evbuffer_copyout(chunk, e->body, len);
        e->body_len = len;
        tg_cache_entry_account(e);
        x->capture = NULL;
        put(r, c, e);
    }
    unlock(r, x);
    release_claim(x);
    return TG_FILTER_CONTINUE;
}

static void log_request(tg_request_t *r, const tg_filter_t *f)
{
    const cache_conf_t *c = f->instance;
    const cache_ctx_t *x = f->ctx;
    if (x->result != R_NONE && c->metric >= 0)
        tg_metrics_add(r, c->metric, (size_t)x->result - 1, 1);
}

TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = TG_PLUGIN_ABI,
    .name = "cache",
    .version = TG_VERSION,
    .ctx_size = sizeof(cache_ctx_t),
    .create = create,
    .destroy = destroy,
    .request_head = request_head,
    .response_head = response_head,
    .response_body = response_body,
    .log = log_request,
};
