/*
 * The cache's Redis index and purge (cache_redis_index.h).
 */
#include "cache_redis_index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "tollgate/admin.h"
#include "tollgate/arena.h"
#include "tollgate/redis.h"

/* KEYS[1] the index; ARGV: member, its expiry, now (seconds), keep (ms). */
#define INDEX_SCRIPT                                            \
    "redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) "            \
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3]) " \
    "if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then "  \
    "redis.call('PEXPIRE', KEYS[1], ARGV[4]) end return 1"
#define SCAN_COUNT "1000"

static void ignore(void *data, const struct redisReply *reply, const char *error)
{
    (void)data;
    (void)reply;
    (void)error; /* a lost index member: that entry is only found by its TTL */
}

void tg_cache_redis_index(tg_request_t *r, const tg_cache_entry_t *e, const char *key,
                          int64_t keep_s)
{
    tg_arena_t *a = tg_request_arena(r);
    int64_t now = tg_cache_now();
    size_t plen = strlen(e->path), klen = strlen(key);
    char *member = tg_arena_alloc(a, plen + 1 + klen);
    memcpy(member, e->path, plen + 1); /* the NUL separates path and key */
    memcpy(member + plen + 1, key, klen);
    const char *idx = tg_arena_printf(a, TG_CACHE_INDEX_PREFIX "%s", e->route);
    const char *expiry = tg_arena_printf(a, "%lld", (long long)(now + keep_s));
    const char *now_s = tg_arena_printf(a, "%lld", (long long)now);
    const char *keep_ms = tg_arena_printf(a, "%lld", (long long)keep_s * 1000);
    const char *argv[] = {"EVAL", INDEX_SCRIPT, "1", idx, member, expiry, now_s, keep_ms};
    size_t lens[] = {4,
                     strlen(INDEX_SCRIPT),
                     1,
                     strlen(idx),
                     plen + 1 + klen,
                     strlen(expiry),
                     strlen(now_s),
                     strlen(keep_ms)};
    tg_redis_command(r, ignore, NULL, 8, argv, lens);
}

/* ---- purge (admin thread) ---- */

typedef struct {
    const char *path;
    size_t plen;
    bool prefix;
    char cursor[32];
    char **members; /* matched index members (malloc'ed, "<path>\0<key>") */
    size_t *lens;
    size_t n, cap;
    long removed;
    bool failed;
    char error[160]; /* the first failure */
} purge_t;

/* A failed call: error, else the reply's error text. */
static void fail(purge_t *p, const struct redisReply *reply, const char *error)
{
    if (p->failed)
        return;
    p->failed = true;
    if (error == NULL)
        error = reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply";
    snprintf(p->error, sizeof(p->error), "%s", error);
}

static bool matches(const purge_t *p, const char *m, size_t len)
{
    const char *nul = memchr(m, '\0', len);
    if (nul == NULL || (size_t)(nul - m) < p->plen || memcmp(m, p->path, p->plen) != 0)
        return false;
    return p->prefix || (size_t)(nul - m) == p->plen;
}

static int keep(purge_t *p, const char *m, size_t len)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        char **ms = realloc(p->members, cap * sizeof(*ms));
        if (ms != NULL)
            p->members = ms;
        size_t *ls = ms != NULL ? realloc(p->lens, cap * sizeof(*ls)) : NULL;
        if (ls == NULL)
            return -1;
        p->lens = ls;
        p->cap = cap;
    }
    if ((p->members[p->n] = malloc(len)) == NULL)
        return -1;
    memcpy(p->members[p->n], m, len);
    p->lens[p->n++] = len;
    return 0;
}

/* ZSCAN's [cursor, [member, score, ...]]. */
static void scanned(void *data, const struct redisReply *reply, const char *error)
{
    purge_t *p = data;
    if (error != NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[0]->len >= sizeof(p->cursor) ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        fail(p, reply, error);
        return;
    }
    memcpy(p->cursor, reply->element[0]->str, reply->element[0]->len + 1);
    const struct redisReply *items = reply->element[1];
    for (size_t i = 0; i + 1 < items->elements; i += 2) {
        const struct redisReply *m = items->element[i];
        if (m->type == REDIS_REPLY_STRING && matches(p, m->str, m->len) &&
            keep(p, m->str, m->len) < 0) {
            fail(p, NULL, "out of memory");
            return;
        }
    }
}

static void deleted(void *data, const struct redisReply *reply, const char *error)
{
    purge_t *p = data;
    if (error != NULL || reply->type != REDIS_REPLY_INTEGER)
        fail(p, reply, error);
    else
        p->removed += reply->integer;
}

static void counted(void *data, const struct redisReply *reply, const char *error)
{
    purge_t *p = data;
    if (error != NULL || reply->type == REDIS_REPLY_ERROR)
        fail(p, reply, error);
}

/* A glob (MATCH) for the members that start with s: its *?[]\ escaped. */
static char *glob_prefix(const char *s)
{
    char *g = malloc(2 * strlen(s) + 2), *o = g;
    if (g == NULL)
        return NULL;
    for (; *s; s++) {
        if (strchr("*?[]\\", *s) != NULL)
            *o++ = '\\';
        *o++ = *s;
    }
    *o++ = '*';
    *o = '\0';
    return g;
}

/* Pages through the index, then deletes what matched. */
static void run(tg_admin_redis_t *c, purge_t *p, const char *idx, const char *glob, int64_t now)
{
    char now_s[24];
    snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
    const char *trim[] = {"ZREMRANGEBYSCORE", idx, "-inf", now_s};
    size_t trim_lens[] = {16, strlen(idx), 4, strlen(now_s)};
    tg_admin_redis_command(c, counted, p, 4, trim, trim_lens);
    strcpy(p->cursor, "0");
    do {
        const char *scan[] = {"ZSCAN", idx, p->cursor, "MATCH", glob, "COUNT", SCAN_COUNT};
        size_t scan_lens[] = {5, strlen(idx),       strlen(p->cursor), 5, strlen(glob),
                              5, strlen(SCAN_COUNT)};
        tg_admin_redis_command(c, scanned, p, 7, scan, scan_lens);
        tg_admin_redis_wait(c);
    } while (!p->failed && strcmp(p->cursor, "0") != 0);
    for (size_t i = 0; i < p->n && !p->failed; i++) {
        const char *m = p->members[i];
        size_t at = strlen(m) + 1; /* the key after the path's NUL */
        const char *del[] = {"DEL", m + at};
        size_t del_lens[] = {3, p->lens[i] - at};
        tg_admin_redis_command(c, deleted, p, 2, del, del_lens);
        const char *zrem[] = {"ZREM", idx, m};
        size_t zrem_lens[] = {4, strlen(idx), p->lens[i]};
        tg_admin_redis_command(c, counted, p, 3, zrem, zrem_lens);
    }
    tg_admin_redis_wait(c);
}

long tg_cache_redis_purge(const char *route, const char *path, bool prefix, char *err,
                          size_t errlen)
{
    purge_t p = {.path = path, .plen = strlen(path), .prefix = prefix};
    char *idx = malloc(strlen(TG_CACHE_INDEX_PREFIX) + strlen(route) + 1);
    char *glob = glob_prefix(path);
    tg_admin_redis_t *c = NULL;
    long rc = -1;
    if (idx == NULL || glob == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    sprintf(idx, TG_CACHE_INDEX_PREFIX "%s", route);
    if ((c = tg_admin_redis_open(err, errlen)) == NULL)
        goto out;
    run(c, &p, idx, glob, tg_cache_now());
    if (p.failed)
        snprintf(err, errlen, "%s", p.error);
    else
        rc = p.removed;
out:
    tg_admin_redis_close(c);
    for (size_t i = 0; i < p.n; i++)
        free(p.members[i]);
    free(p.members);
    free(p.lens);
    free(idx);
    free(glob);
    return rc;
}
