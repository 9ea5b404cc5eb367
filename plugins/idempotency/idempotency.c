/*
 * idempotency plugin: the IETF Idempotency-Key header
 * (draft-ietf-httpapi-idempotency-key-header) for retried writes.
 *
 *   - name: idempotency
 *     config:
 *       storage: redis          # redis (needs the top-level redis:) | memory
 *       header: Idempotency-Key
 *       methods: [POST, PATCH]
 *       required: false         # true: 400 when the header is missing
 *       scope: [route, jwt.sub] # route | ip | consumer | subject | jwt.<claim> | header:<Name>
 *       ttl: 24h                # how long a completed response is replayed
 *       lock_ttl: 60s           # how long an "in progress" record lives at most
 *       max_body: 1MiB          # larger responses are not stored
 *       max_keys_per_scope: 10000 # live records one client (scope value) may hold: 429 past it
 *       max_size_per_scope: 4MiB # memory: their bytes
 *       max_size: 64MiB         # memory: the process's store
 *
 * request_head has the body read whole first (tg_request_read_body: the
 * fingerprint holds its digest), then claims the key atomically (Redis: one EVAL that GETs the
 * record or SETs "in progress" with PX lock_ttl; memory: under the store's
 * lock). The claimer goes upstream; response_head/response_body copy the
 * response; the log hook stores it (or releases the key after a 5xx or a
 * transport failure). Anyone else meeting the record gets, by its state:
 * a different fingerprint -> 422, in progress -> 409, completed -> the
 * stored response with Idempotent-Replayed: true, completed but too large to
 * store -> 409 (the request was processed; see docs/idempotency.md).
 * Redis unreachable -> 503 for a request with a key: never "run it twice".
 * A client (scope value) holding max_keys_per_scope live records (memory) or
 * having claimed that many keys within one ttl (Redis: a counter per scope in
 * the claim's script) gets 429: it cannot fill the store for everyone.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>

#include "idempotency.h"
#include "tollgate/redis.h"

#define P_LEN (1 + TG_IDEM_HASH + TG_IDEM_TOKEN_HEX)
/* Redis names: the scope's hash (its first 16 bytes) as the hash tag, so a
 * record and its scope's counter share a Cluster slot (one script). */
#define TAG_HEX 32
#define RKEY_SIZE (8 + 1 + TAG_HEX + 1 + 2 * TG_IDEM_HASH + 1)
#define QKEY_SIZE (10 + 1 + TAG_HEX + 1 + 1)

typedef enum { STORAGE_REDIS, STORAGE_MEMORY } storage_t;
static const char *const storage_names[] = {"redis", "memory", NULL};

typedef enum {
    O_STORED,
    O_REPLAYED,
    O_CONFLICT,
    O_MISMATCH,
    O_RELEASED,
    O_TOO_LARGE,
    O_BAD_KEY,
    O_UNAVAILABLE,
    O_OVER_QUOTA,
} outcome_t;
static const char *const outcome_names[] = {"stored",   "replayed",    "conflict",
                                            "mismatch", "released",    "too_large",
                                            "bad_key",  "unavailable", "over_quota"};

typedef struct {
    storage_t storage;
    char *header;
    char **methods;
    size_t nmethods;
    bool required;
    tg_idem_scope_t scope;
    uint64_t ttl_ms, lock_ttl_ms, max_body, max_size;
    tg_idem_quota_t quota;
    char ttl_arg[24], lock_arg[24], quota_arg[24];
    tg_idem_mem_t *mem;
    int m_outcomes;
} idem_t;

/* Per-request state (the chain's zeroed ctx slot). */
typedef struct {
    tg_request_t *r;
    const idem_t *conf;
    tg_redis_call_t *call;
    bool claimed;   /* this request owns the "in progress" record */
    bool done;      /* stored or released */
    bool too_large; /* the body passed unbuffered */
    bool have_body;
    int status;
    uint8_t key[TG_IDEM_HASH];
    uint8_t scope[TG_IDEM_HASH]; /* the client's key space */
    uint8_t fp[TG_IDEM_HASH];    /* the request's fingerprint */
    char rkey[RKEY_SIZE];        /* "tg:idem:{<scope>}<key>" */
    char qkey[QKEY_SIZE];        /* "tg:idem:n:{<scope>}" */
    char pval[P_LEN];            /* the in-progress value this request set */
    uint8_t *fields;             /* the response's header block (arena) */
    size_t fields_len;
    char *body;
    size_t body_len;
} idem_ctx_t;

/* ------------------------------------------------------------ config ---- */

static int parse_scope(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    return tg_idem_scope_parse(n, out, err);
}

static const tg_conf_field_t fields[] = {
    {"storage", TG_CONF_FIELD_ENUM, TG_CONF_AT(idem_t, storage), .names = storage_names,
     .def = STORAGE_REDIS},
    {"header", TG_CONF_FIELD_STRING, TG_CONF_AT(idem_t, header), .flags = TG_CONF_NONEMPTY,
     .max = 128, .def_str = "Idempotency-Key"},
    {"methods", TG_CONF_FIELD_STRINGS, TG_CONF_AT(idem_t, methods),
     .count_offset = offsetof(idem_t, nmethods), .flags = TG_CONF_NONEMPTY, .min = 1, .max = 16},
    {"required", TG_CONF_FIELD_BOOL, TG_CONF_AT(idem_t, required), .def = false},
    {"scope", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(idem_t, scope), .parse = parse_scope},
    {"ttl", TG_CONF_FIELD_DURATION, TG_CONF_AT(idem_t, ttl_ms), .min = 1000,
     .max = 366ull * 86400 * 1000, .def = 86400000},
    {"lock_ttl", TG_CONF_FIELD_DURATION, TG_CONF_AT(idem_t, lock_ttl_ms), .min = 100,
     .max = 86400000, .def = 60000},
    {"max_body", TG_CONF_FIELD_SIZE, TG_CONF_AT(idem_t, max_body), .min = 0, .max = 512ull << 20,
     .def = 1 << 20},
    {"max_keys_per_scope", TG_CONF_FIELD_UINT, TG_CONF_AT(idem_t, quota.keys), .min = 0,
     .max = 1ull << 32, .def = 10000},
    {"max_size_per_scope", TG_CONF_FIELD_SIZE, TG_CONF_AT(idem_t, quota.bytes), .min = 0,
     .max = 1ull << 40, .def = 4 << 20},
    {"max_size", TG_CONF_FIELD_SIZE, TG_CONF_AT(idem_t, max_size), .min = 64 << 10,
     .max = 1ull << 40, .def = 64 << 20},
    TG_CONF_END,
};

static const char *const default_methods[] = {"POST", "PATCH"};

static void destroy(void *instance)
{
    idem_t *c = instance;
    if (c == NULL)
        return;
    tg_conf_fields_free(fields, c);
    tg_idem_scope_free(&c->scope);
    tg_idem_mem_release(c->mem);
    free(c);
}

static bool runs_before(const char *const *before, const char *name)
{
    for (; before != NULL && *before != NULL; before++)
        if (strcmp(*before, name) == 0)
            return true;
    return false;
}

static int check_conf(const tg_conf_node_t *node, idem_t *c, const tg_plugin_env_t *env,
                      tg_conf_err_t *err)
{
    const tg_conf_node_t *at;
    if (!tg_token_valid(c->header, strlen(c->header)))
        return tg_conf_error(err, tg_conf_map_get(node, "header"), "header '%s' is not a token",
                             c->header);
    for (size_t i = 0; i < c->nmethods; i++)
        if (!tg_token_valid(c->methods[i], strlen(c->methods[i])))
            return tg_conf_error(err, tg_conf_map_get(node, "methods"),
                                 "method '%s' is not a token", c->methods[i]);
    if (c->storage == STORAGE_REDIS && !env->redis_configured) {
        at = tg_conf_map_get(node, "storage");
        return tg_conf_error(err, at != NULL ? at : node,
                             "storage redis%s needs a top-level 'redis:' section (or storage: "
                             "memory)",
                             at != NULL ? "" : " (the default)");
    }
    static const char *const memory_only[] = {"max_size", "max_size_per_scope"};
    for (size_t i = 0; i < 2 && c->storage == STORAGE_REDIS; i++)
        if ((at = tg_conf_map_get(node, memory_only[i])) != NULL)
            return tg_conf_error(err, at,
                                 "%s bounds the memory store; with storage redis, Redis's "
                                 "maxmemory bounds the records",
                                 memory_only[i]);
    if (c->lock_ttl_ms > c->ttl_ms)
        return tg_conf_error(err, tg_conf_map_get(node, "lock_ttl"),
                             "lock_ttl must not exceed ttl");
    at = tg_conf_map_get(node, "scope");
    if (c->scope.uses_jwt && !runs_before(env->before, "jwt"))
        return tg_conf_error(err, at,
                             "scope reads the JWT subject or a claim but no jwt plugin "
                             "runs before idempotency");
    if (c->scope.uses_consumer && !runs_before(env->before, "key-auth"))
        return tg_conf_error(err, at, "scope 'consumer' needs key-auth before idempotency");
    return 0;
}

/* The defaults that tg_conf_read cannot give: methods [POST, PATCH], scope
 * [route, ip]. */
static int set_defaults(idem_t *c)
{
    if (c->nmethods == 0) {
        c->methods = calloc(3, sizeof(char *));
        if (c->methods == NULL)
            return -1;
        for (size_t i = 0; i < 2; i++)
            if ((c->methods[c->nmethods++] = strdup(default_methods[i])) == NULL)
                return -1;
    }
    if (c->scope.nparts == 0) {
        c->scope.parts[0].kind = TG_IDEM_SCOPE_ROUTE;
        c->scope.parts[1].kind = TG_IDEM_SCOPE_IP;
        c->scope.nparts = 2;
    }
    return 0;
}

static int create(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **out,
                  tg_conf_err_t *err)
{
    idem_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return tg_conf_error(err, node, "out of memory");
    if (tg_conf_read(node, fields, NULL, c, err) < 0 || check_conf(node, c, env, err) < 0)
        goto fail;
    if (set_defaults(c) < 0 || (c->storage == STORAGE_MEMORY && !env->check_only &&
                                (c->mem = tg_idem_mem_acquire(c->max_size)) == NULL)) {
        tg_conf_error(err, node, "out of memory");
        goto fail;
    }
    snprintf(c->ttl_arg, sizeof(c->ttl_arg), "%llu", (unsigned long long)c->ttl_ms);
    snprintf(c->lock_arg, sizeof(c->lock_arg), "%llu", (unsigned long long)c->lock_ttl_ms);
    snprintf(c->quota_arg, sizeof(c->quota_arg), "%llu", (unsigned long long)c->quota.keys);
    c->m_outcomes = tg_metrics_counter(env->metrics, "tollgate_idempotency_requests_total",
                                       "Requests with an idempotency key, by outcome.", "outcome",
                                       outcome_names, 9);
    *out = c;
    return 0;
fail:
    destroy(c);
    return -1;
}

/* ---------------------------------------------------------- answers ---- */

static void count(idem_ctx_t *ctx, outcome_t o)
{
    tg_metrics_add(ctx->r, ctx->conf->m_outcomes, o, 1);
}

/* An RFC 9457 problem body. */
static tg_filter_status_t problem(tg_request_t *r, int status, const char *title,
                                  const char *detail)
{
    char body[512];
    int n = snprintf(body, sizeof(body), "{\"title\":\"%s\",\"status\":%d,\"detail\":\"%s\"}",
                     title, status, detail);
    tg_request_respond(r, status, "application/problem+json", body, (size_t)n);
    return TG_FILTER_RESPONDED;
}

static tg_filter_status_t replay(idem_ctx_t *ctx, const tg_idem_record_t *rec)
{
    tg_request_t *r = ctx->r;
    const char *ctype = NULL, *n, *v;
    size_t nl, vl;
    for (uint32_t i = 0; tg_idem_record_field(rec, i, &n, &nl, &v, &vl); i++)
        if (nl == 12 && strncasecmp(n, "Content-Type", 12) == 0)
            ctype = tg_arena_strndup(tg_request_arena(r), v, vl);
    if (tg_request_respond(r, rec->status, ctype, rec->body, rec->body_len) < 0)
        return TG_FILTER_ERROR;
    for (uint32_t i = 0; tg_idem_record_field(rec, i, &n, &nl, &v, &vl); i++) {
        if (nl == 12 && strncasecmp(n, "Content-Type", 12) == 0)
            continue;
        char *name = tg_arena_strndup(tg_request_arena(r), n, nl);
        tg_request_add_response_header(r, name, v, vl); /* owned names are refused: fine */
    }
    tg_request_add_response_header(r, "Idempotent-Replayed", "true", 4);
    count(ctx, O_REPLAYED);
    return TG_FILTER_RESPONDED;
}

static void store_completed(idem_ctx_t *ctx);
static bool swap(idem_ctx_t *ctx, const char *value, size_t len);

/* Someone else's record: answer from it. */
static tg_filter_status_t answer_from(idem_ctx_t *ctx, const char *v, size_t len)
{
    tg_idem_record_t rec;
    if (tg_idem_record_parse(v, len, &rec) < 0) {
        tg_request_log(ctx->r, TG_LOG_ERROR, "idempotency: unreadable record %s", ctx->rkey);
        return TG_FILTER_ERROR;
    }
    if (memcmp(ctx->fp, rec.fp, TG_IDEM_HASH) != 0) {
        count(ctx, O_MISMATCH);
        return problem(ctx->r, 422, "Idempotency key reused",
                       "this idempotency key was used for a different request");
    }
    if (rec.kind == 'C')
        return replay(ctx, &rec);
    count(ctx, O_CONFLICT);
    if (rec.kind == 'N') {
        char d[160];
        snprintf(d, sizeof(d),
                 "the request with this key was processed (status %d); its response was too "
                 "large to be stored for replay",
                 rec.status);
        return problem(ctx->r, 409, "Response not replayable", d);
    }
    tg_request_add_response_header(ctx->r, "Retry-After", "1", 1);
    return problem(ctx->r, 409, "Request in progress",
                   "a request with this idempotency key is being processed");
}

/* ------------------------------------------------------ fingerprint ---- */

/* Method, path and query as the client sent them, Content-Type and the
 * SHA-256 of the body (framing removed, so a chunked retry of the same bytes
 * matches). */
static void fingerprint(tg_request_t *r, const char *body, size_t body_len,
                        uint8_t out[TG_IDEM_HASH])
{
    uint8_t digest[TG_IDEM_HASH];
    size_t len = 0;
    const char *v;
    unsigned int n;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, body, body_len);
    EVP_DigestFinal_ex(md, digest, &n);
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    v = tg_request_method(r, &len);
    tg_idem_digest_put(md, v, len);
    v = tg_request_client_path(r, &len);
    tg_idem_digest_put(md, v, len);
    v = tg_request_client_query(r, &len);
    tg_idem_digest_put(md, v, v ? len : 0);
    v = tg_request_header(r, "Content-Type", &len);
    tg_idem_digest_put(md, v, v ? len : 0);
    tg_idem_digest_put(md, digest, sizeof(digest));
    EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
}

/* ------------------------------------------------------------ store ---- */

/* Redis scripts: the claim GETs or SETs NX in one step; commit and release act
 * only while the record is still this request's "in progress" value (a
 * lock_ttl that ran out may have let another request take the key).
 * KEYS[2] counts the keys the scope claimed in a window of ttl (started by
 * its first claim): at max_keys_per_scope (ARGV[3], 0: no count) the claim
 * answers the window's remaining milliseconds instead; a release gives its
 * claim back. Records live at most ttl, so a scope holds at most twice its
 * quota of live records. */
static const char claim_lua[] =
    "local v = redis.call('GET', KEYS[1]) if v then return v end "
    "local q = tonumber(ARGV[3]) if q > 0 then "
    "local n = tonumber(redis.call('GET', KEYS[2]) or '0') if n >= q then "
    "local t = redis.call('PTTL', KEYS[2]) if t < 0 then "
    "redis.call('PEXPIRE', KEYS[2], ARGV[4]) t = tonumber(ARGV[4]) end return t end "
    "if redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end end "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return false";
static const char swap_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
    "if ARGV[2] == '' then redis.call('DEL', KEYS[1]) "
    "if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end "
    "else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end return 1";

/* 429: the client holds its quota of keys; others are not affected. */
static tg_filter_status_t over_quota(idem_ctx_t *ctx, uint64_t retry_ms)
{
    char after[24], d[200];
    snprintf(after, sizeof(after), "%llu", (unsigned long long)(retry_ms + 999) / 1000);
    tg_request_add_response_header(ctx->r, "Retry-After", after, strlen(after));
    snprintf(d, sizeof(d),
             "this client holds its maximum of idempotency keys (max_keys_per_scope %llu, or "
             "their bytes); the request was not processed",
             (unsigned long long)ctx->conf->quota.keys);
    count(ctx, O_OVER_QUOTA);
    return problem(ctx->r, 429, "Too many idempotency keys", d);
}

static void cancel_call(void *data)
{
    idem_ctx_t *ctx = data;
    tg_redis_cancel(ctx->call);
    ctx->call = NULL;
}

static void claimed_redis(void *data, const struct redisReply *reply, const char *error)
{
    idem_ctx_t *ctx = data;
    ctx->call = NULL;
    tg_filter_status_t st;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        tg_request_log(ctx->r, TG_LOG_WARN, "idempotency: redis: %s",
                       reply != NULL ? reply->str : error);
        count(ctx, O_UNAVAILABLE);
        tg_request_add_response_header(ctx->r, "Retry-After", "1", 1);
        st = problem(ctx->r, 503, "Idempotency store unavailable",
                     "the request was not processed; retry it with the same key");
    } else if (reply->type == REDIS_REPLY_NIL) {
        ctx->claimed = true;
        st = TG_FILTER_CONTINUE;
    } else if (reply->type == REDIS_REPLY_STRING) {
        st = answer_from(ctx, reply->str, reply->len);
    } else if (reply->type == REDIS_REPLY_INTEGER) {
        st = over_quota(ctx, reply->integer > 0 ? (uint64_t)reply->integer : 1);
    } else {
        st = TG_FILTER_ERROR;
    }
    tg_request_resume(ctx->r, st);
}

static tg_filter_status_t claim(idem_ctx_t *ctx)
{
    const idem_t *c = ctx->conf;
    if (c->storage == STORAGE_MEMORY) {
        char *old = NULL;
        size_t old_len = 0;
        uint64_t retry_ms = 0;
        int rc = tg_idem_mem_claim(c->mem, ctx->key, ctx->scope, &c->quota, ctx->pval, P_LEN,
                                   c->lock_ttl_ms, &old, &old_len, &retry_ms);
        if (rc == 0) {
            ctx->claimed = true;
            return TG_FILTER_CONTINUE;
        }
        if (rc == TG_IDEM_MEM_QUOTA)
            return over_quota(ctx, retry_ms);
        if (rc < 0) {
            count(ctx, O_UNAVAILABLE);
            tg_request_add_response_header(ctx->r, "Retry-After", "1", 1);
            return problem(ctx->r, 503, "Idempotency store full",
                           "the request was not processed; retry it later");
        }
        tg_filter_status_t st = answer_from(ctx, old, old_len);
        free(old);
        return st;
    }
    const char *argv[] = {"EVAL",    claim_lua,   "2",          ctx->rkey, ctx->qkey,
                          ctx->pval, c->lock_arg, c->quota_arg, c->ttl_arg};
    size_t lens[] = {4,
                     sizeof(claim_lua) - 1,
                     1,
                     strlen(ctx->rkey),
                     strlen(ctx->qkey),
                     P_LEN,
                     strlen(c->lock_arg),
                     strlen(c->quota_arg),
                     strlen(c->ttl_arg)};
    tg_redis_call_t *call = tg_redis_command(ctx->r, claimed_redis, ctx, 9, argv, lens);
    if (call != NULL) {
        ctx->call = call;
        tg_request_on_cleanup(ctx->r, cancel_call, ctx);
    }
    return TG_FILTER_PAUSE; /* resumed by claimed_redis, maybe already */
}

static void ignore_reply(void *data, const struct redisReply *reply, const char *error)
{
    (void)data;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        tg_log(TG_LOG_WARN, "idempotency: redis: storing a record failed: %s",
               reply != NULL ? reply->str : error);
    else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
        tg_log(TG_LOG_WARN, "idempotency: a record's lock_ttl ran out before its response: not "
                            "stored");
}

/* The 'N' record: processed with status, response not kept. */
static void not_replayable(idem_ctx_t *ctx, char v[1 + TG_IDEM_HASH + 4])
{
    v[0] = 'N';
    memcpy(v + 1, ctx->fp, TG_IDEM_HASH);
    snprintf(v + 1 + TG_IDEM_HASH, 4, "%03d", ctx->status);
}

/* Replaces this request's in-progress record by value (NULL: removes it).
 * Fire and forget: the reply is only logged. In memory, a response that does
 * not fit the store's or the scope's bytes is kept as not replayable (an 'N'
 * is smaller than the 'P' it replaces: it always fits): returns true then. */
static bool swap(idem_ctx_t *ctx, const char *value, size_t len)
{
    const idem_t *c = ctx->conf;
    ctx->done = true;
    if (c->storage == STORAGE_MEMORY) {
        int rc =
            tg_idem_mem_swap(c->mem, ctx->key, &c->quota, ctx->pval, P_LEN, value, len, c->ttl_ms);
        if (rc == TG_IDEM_MEM_QUOTA) {
            char n[1 + TG_IDEM_HASH + 4];
            not_replayable(ctx, n);
            rc = tg_idem_mem_swap(c->mem, ctx->key, &c->quota, ctx->pval, P_LEN, n, sizeof(n) - 1,
                                  c->ttl_ms);
            tg_request_log(ctx->r, TG_LOG_WARN,
                           "idempotency: the store (max_size) or the client's max_size_per_scope "
                           "has no room for the response: kept as not replayable");
            return true;
        }
        if (rc == 0)
            tg_request_log(ctx->r, TG_LOG_WARN,
                           "idempotency: lock_ttl ran out before the response: not stored");
        return false;
    }
    const char *argv[] = {"EVAL",    swap_lua,           "2",       ctx->rkey, ctx->qkey,
                          ctx->pval, value ? value : "", c->ttl_arg};
    size_t lens[] = {4,
                     sizeof(swap_lua) - 1,
                     1,
                     strlen(ctx->rkey),
                     strlen(ctx->qkey),
                     P_LEN,
                     value ? len : 0,
                     strlen(c->ttl_arg)};
    tg_redis_command(ctx->r, ignore_reply, NULL, 8, argv, lens);
    return false;
}

/* ------------------------------------------------------------ hooks ---- */

static bool method_listed(const idem_t *c, tg_request_t *r)
{
    size_t len;
    const char *m = tg_request_method(r, &len);
    for (size_t i = 0; i < c->nmethods; i++)
        if (strlen(c->methods[i]) == len && memcmp(c->methods[i], m, len) == 0)
            return true;
    return false;
}

/* The key header's one value; NULL with *count 0 (absent) or 2 (repeated). */
static const char *key_header(const idem_t *c, tg_request_t *r, size_t *len, int *count)
{
    size_t hl = strlen(c->header), nl, vl;
    const char *n, *v, *found = NULL;
    *count = 0;
    for (size_t i = 0; tg_request_header_at(r, i, &n, &nl, &v, &vl); i++)
        if (nl == hl && strncasecmp(n, c->header, hl) == 0) {
            if (++*count > 1)
                return NULL;
            found = v;
            *len = vl;
        }
    return found;
}

static tg_filter_status_t bad_key(idem_ctx_t *ctx, const char *detail)
{
    count(ctx, O_BAD_KEY);
    return problem(ctx->r, 400, "Invalid idempotency key", detail);
}

/* n bytes as 2n lower-case hex digits (no NUL). */
static void put_hex(char *out, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
}

static void make_names(idem_ctx_t *ctx)
{
    uint8_t token[TG_IDEM_TOKEN_HEX / 2];
    char tag[TAG_HEX + 1], key[2 * TG_IDEM_HASH + 1];
    put_hex(tag, ctx->scope, TAG_HEX / 2);
    tag[TAG_HEX] = '\0';
    put_hex(key, ctx->key, TG_IDEM_HASH);
    key[2 * TG_IDEM_HASH] = '\0';
    snprintf(ctx->rkey, sizeof(ctx->rkey), "tg:idem:{%s}%s", tag, key);
    snprintf(ctx->qkey, sizeof(ctx->qkey), "tg:idem:n:{%s}", tag);
    if (RAND_bytes(token, sizeof(token)) != 1) /* then only unique by time and address */
        snprintf((char *)token, sizeof(token), "%llx%p", (unsigned long long)tg_now_us(), ctx);
    ctx->pval[0] = 'P';
    put_hex(ctx->pval + 1 + TG_IDEM_HASH, token, sizeof(token));
}

/* The body is whole: the fingerprint is known, the key can be claimed. */
static void body_read(void *data, const char *body, size_t len)
{
    idem_ctx_t *ctx = data;
    fingerprint(ctx->r, body, len, ctx->fp);
    memcpy(ctx->pval + 1, ctx->fp, TG_IDEM_HASH);
    tg_filter_status_t st = claim(ctx);
    if (st != TG_FILTER_PAUSE)
        tg_request_resume(ctx->r, st);
}

static tg_filter_status_t request_head(tg_request_t *r, const tg_filter_t *f)
{
    const idem_t *c = f->instance;
    idem_ctx_t *ctx = f->ctx;
    ctx->r = r;
    ctx->conf = c;
    if (!method_listed(c, r))
        return TG_FILTER_CONTINUE;
    size_t len = 0;
    int n;
    const char *v = key_header(c, r, &len, &n);
    if (n == 0 && !c->required)
        return TG_FILTER_CONTINUE;
    if (n == 0)
        return bad_key(ctx, "this request needs an idempotency key header");
    if (n > 1)
        return bad_key(ctx, "the idempotency key header is repeated");
    char key[TG_IDEM_KEY_MAX];
    int kl = tg_idem_key_parse(v, len, key);
    if (kl < 0)
        return bad_key(ctx, "the idempotency key must be a quoted string (RFC 8941) of 1 to "
                            "255 printable characters");
    char missing[160], d[256];
    int rc = tg_idem_scope_hash(&c->scope, r, "tollgate-idempotency-1", key, (size_t)kl, ctx->key,
                                ctx->scope, missing, sizeof(missing));
    if (rc == -2)
        return TG_FILTER_ERROR;
    if (rc < 0) {
        snprintf(d, sizeof(d), "the idempotency scope needs the request's %s", missing);
        return bad_key(ctx, d);
    }
    make_names(ctx);
    if (tg_request_read_body(r, 0, body_read, ctx) < 0) {
        tg_request_log(r, TG_LOG_ERROR,
                       "idempotency: cannot read the request body first (a "
                       "plugin with a request_body hook is in the chain)");
        return TG_FILTER_ERROR;
    }
    return TG_FILTER_PAUSE; /* resumed from body_read or the claim's callback */
}

static void add_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

/* Response headers kept for the replay: all but those the gateway writes for
 * each response itself (framing, Date, the request id). */
static bool kept(const char *n, size_t nl)
{
    static const char *const skip[] = {
        "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Date",
        "X-Request-Id",   "Trailer",           "Upgrade",    NULL};
    for (const char *const *s = skip; *s; s++)
        if (strlen(*s) == nl && strncasecmp(*s, n, nl) == 0)
            return false;
    return true;
}

static tg_filter_status_t response_head(tg_request_t *r, const tg_filter_t *f)
{
    idem_ctx_t *ctx = f->ctx;
    if (!ctx->claimed)
        return TG_FILTER_CONTINUE;
    ctx->status = tg_response_status(r);
    if (ctx->status >= 500) { /* the upstream's, or the gateway's 502/504: may be retried */
        swap(ctx, NULL, 0);
        count(ctx, O_RELEASED);
        return TG_FILTER_CONTINUE;
    }
    const char *n, *v;
    size_t nl, vl, total = 4, count = 0;
    for (size_t i = 0; tg_response_header_at(r, i, &n, &nl, &v, &vl); i++)
        if (kept(n, nl))
            total += 8 + nl + vl;
    uint8_t *p = ctx->fields = tg_arena_alloc(tg_request_arena(r), total);
    p += 4;
    for (size_t i = 0; tg_response_header_at(r, i, &n, &nl, &v, &vl); i++) {
        if (!kept(n, nl))
            continue;
        add_u32(p, (uint32_t)nl);
        add_u32(p + 4, (uint32_t)vl);
        memcpy(p + 8, n, nl);
        memcpy(p + 8 + nl, v, vl);
        p += 8 + nl + vl;
        count++;
    }
    add_u32(ctx->fields, (uint32_t)count);
    ctx->fields_len = total;
    const char *cl = tg_response_header(r, "Content-Length", &nl);
    if (ctx->status == 204 || ctx->status == 304 || (cl != NULL && nl == 1 && cl[0] == '0')) {
        store_completed(ctx); /* no body to wait for */
        return TG_FILTER_CONTINUE;
    }
    tg_response_buffer_body(r, ctx->conf->max_body);
    return TG_FILTER_CONTINUE;
}

static tg_filter_status_t response_body(tg_request_t *r, const tg_filter_t *f,
                                        struct evbuffer *chunk, bool last)
{
    idem_ctx_t *ctx = f->ctx;
    if (!ctx->claimed || ctx->fields == NULL)
        return TG_FILTER_CONTINUE;
    if (!tg_response_body_buffered(r)) {
        ctx->too_large = true;
        return TG_FILTER_CONTINUE;
    }
    if (last) {
        size_t n = evbuffer_get_length(chunk);
        ctx->body = tg_arena_alloc(tg_request_arena(r), n ? n : 1);
        evbuffer_copyout(chunk, ctx->body, n);
        ctx->body_len = n;
        ctx->have_body = true;
        /* Stored before the body goes out: a client that retries as soon as
         * it has the response finds the record completed. */
        store_completed(ctx);
    }
    return TG_FILTER_CONTINUE;
}

static void store_completed(idem_ctx_t *ctx)
{
    size_t len = 1 + TG_IDEM_HASH + 3 + ctx->fields_len + ctx->body_len;
    char *v = malloc(len);
    if (v == NULL) {
        swap(ctx, NULL, 0);
        return;
    }
    v[0] = 'C';
    memcpy(v + 1, ctx->fp, TG_IDEM_HASH);
    snprintf(v + 1 + TG_IDEM_HASH, 4, "%03d", ctx->status); /* NUL overwritten below */
    memcpy(v + 4 + TG_IDEM_HASH, ctx->fields, ctx->fields_len);
    if (ctx->body_len > 0)
        memcpy(v + 4 + TG_IDEM_HASH + ctx->fields_len, ctx->body, ctx->body_len);
    count(ctx, swap(ctx, v, len) ? O_TOO_LARGE : O_STORED);
    free(v);
}

/* The response is over: store it, mark it not replayable, or release the key.
 * A client that left before the upstream answered keeps the key "in progress"
 * until lock_ttl: the upstream may have acted, and a retry must not run twice. */
static void log_hook(tg_request_t *r, const tg_filter_t *f)
{
    idem_ctx_t *ctx = f->ctx;
    if (!ctx->claimed || ctx->done)
        return;
    if (ctx->status >= 500) {
        swap(ctx, NULL, 0);
        count(ctx, O_RELEASED);
        return;
    }
    if (ctx->status == 0)
        return; /* no response: the lock stays until lock_ttl */
    if (ctx->too_large) {
        char v[1 + TG_IDEM_HASH + 4];
        not_replayable(ctx, v);
        swap(ctx, v, sizeof(v) - 1);
        count(ctx, O_TOO_LARGE);
        return;
    }
    tg_request_stats_t st;
    tg_request_stats(r, &st);
    if (ctx->have_body || st.completed || ctx->status == 204 || ctx->status == 304)
        store_completed(ctx);
}

TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = TG_PLUGIN_ABI,
    .name = "idempotency",
    .version = TG_VERSION,
    .ctx_size = sizeof(idem_ctx_t),
    .create = create,
    .destroy = destroy,
    .request_head = request_head,
    .response_head = response_head,
    .response_body = response_body,
    .log = log_hook,
};
