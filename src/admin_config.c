/*
 * GET /config's body (admin.h): the effective configuration as JSON,
 * defaults filled in, secrets masked; and the rule for what is a secret,
 * shared with `tollgate -T`.
 */
#include "admin.h"
#include "health_check.h"
#include "path_norm.h"
#include "retry_policy.h"
#include "split.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "chain.h"
#include "redis.h"

/* ---- secret masking ----------------------------------------------------- */

bool tg_admin_secret_name(const char *k)
{
    static const char *const words[] = {"password", "secret", "token", "private", "authorization"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasestr(k, words[i]) != NULL)
            return true;
    size_t n = strlen(k);
    /* hash_key names which request key balances (ip, jwt.sub), not a secret */
    return n >= 3 && strcasecmp(k + n - 3, "key") == 0 && strcmp(k, "hash_key") != 0;
}

/* Every string inside v (v itself included) becomes "***". */
static void mask_all(json_t *v)
{
    const char *k;
    json_t *item;
    size_t i;
    if (json_is_string(v))
        json_string_set(v, "***");
    else if (json_is_object(v))
        json_object_foreach(v, k, item)
            mask_all(item);
    else if (json_is_array(v))
        json_array_foreach(v, i, item)
            mask_all(item);
}

void tg_admin_mask_secrets(json_t *root)
{
    const char *k;
    json_t *item;
    size_t i;
    if (json_is_object(root)) {
        json_object_foreach(root, k, item) {
            if (tg_admin_secret_name(k))
                mask_all(item);
            else
                tg_admin_mask_secrets(item);
        }
    } else if (json_is_array(root)) {
        json_array_foreach(root, i, item)
            tg_admin_mask_secrets(item);
    }
}

/* ---- the effective configuration as JSON -------------------------------- */

static json_t *jstr(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();
}

static json_t *juint(uint64_t v)
{
    return json_integer((json_int_t)v);
}

/* A secret: whether it is set, never its value. */
static json_t *jsecret(bool set)
{
    return set ? json_string("***") : json_null();
}

static json_t *listen_json(const tg_listen_conf_t *l)
{
    json_t *o = json_object();
    json_object_set_new(o, "address", jstr(l->name));
    return o;
}

static json_t *admin_json(const tg_config_t *cfg)
{
    json_t *o = listen_json(&cfg->admin);
    json_object_set_new(o, "token", jsecret(cfg->has_admin_token));
    return o;
}

static json_t *limits_json(const tg_limits_t *l)
{
    json_t *o = json_object();
    json_object_set_new(o, "header_timeout_ms", juint(l->header_timeout_ms));
    json_object_set_new(o, "idle_timeout_ms", juint(l->idle_timeout_ms));
    json_object_set_new(o, "body_timeout_ms", juint(l->body_timeout_ms));
    json_object_set_new(o, "send_timeout_ms", juint(l->send_timeout_ms));
    json_object_set_new(o, "drain_timeout_ms", juint(l->drain_timeout_ms));
    json_object_set_new(o, "max_header_size", juint(l->max_header_size));
    json_object_set_new(o, "max_body_size", juint(l->max_body_size));
    json_object_set_new(o, "max_headers", juint(l->max_headers));
    json_object_set_new(o, "encoded_slashes",
                        jstr(l->path_flags & TG_PATH_KEEP_ENCODED_SLASH ? "keep" : "reject"));
    static const char *const underscores[] = {"drop", "reject", "allow"};
    json_object_set_new(o, "headers_with_underscores",
                        jstr(underscores[l->headers_with_underscores]));
    return o;
}

static json_t *cidr_json(const tg_cidr_t *c)
{
    char ip[INET6_ADDRSTRLEN], buf[INET6_ADDRSTRLEN + 8];
    if (inet_ntop(c->family, c->addr, ip, sizeof(ip)) == NULL)
        return json_null();
    snprintf(buf, sizeof(buf), "%s/%u", ip, c->prefix);
    return json_string(buf);
}

/* A target as written: "host:port", or {address, weight} with a weight. */
static json_t *target_json(const tg_target_t *t)
{
    if (t->weight == 1)
        return jstr(t->name);
    json_t *o = json_object();
    json_object_set_new(o, "address", jstr(t->name));
    json_object_set_new(o, "weight", juint(t->weight));
    return o;
}

/* Failure-isolation keys, only where the config sets them. */
static void isolation_json(json_t *o, const tg_upstream_conf_t *u)
{
    static const char *const keys[] = {"", "ip", "jwt.", "header:", "cookie:"};
    if (u->balance == TG_BALANCE_HASH)
        json_object_set_new(
            o, "hash_key",
            json_pack("s++", keys[u->hash_key.kind], u->hash_key.name ? u->hash_key.name : "", ""));
    if (u->all_down == TG_ALL_DOWN_FAIL_CLOSED)
        json_object_set_new(o, "all_down", json_string("fail_closed"));
    if (u->resolve_ms)
        json_object_set_new(o, "resolve_ms", juint(u->resolve_ms));
    const tg_circuit_conf_t *c = &u->circuit;
    if (c->max_connections || c->max_pending || c->max_requests)
        json_object_set_new(o, "circuit_breaker",
                            json_pack("{s:I,s:I,s:I}", "max_connections",
                                      (json_int_t)c->max_connections, "max_pending",
                                      (json_int_t)c->max_pending, "max_requests",
                                      (json_int_t)c->max_requests));
    const tg_outlier_conf_t *od = &u->outlier;
    if (od->base_ejection_time_ms)
        json_object_set_new(
            o, "outlier_detection",
            json_pack("{s:I,s:I,s:I,s:I}", "consecutive_5xx", (json_int_t)od->consecutive_5xx,
                      "consecutive_gateway_errors", (json_int_t)od->consecutive_gateway_errors,
                      "base_ejection_time_ms", (json_int_t)od->base_ejection_time_ms,
                      "max_ejection_percent", (json_int_t)od->max_ejection_percent));
    const tg_health_conf_t *hc = u->health;
    if (hc != NULL)
        json_object_set_new(o, "health_check",
                            json_pack("{s:s,s:s?,s:I,s:I,s:I,s:I}", "path", hc->path, "host",
                                      hc->host, "interval_ms", (json_int_t)hc->interval_ms,
                                      "timeout_ms", (json_int_t)hc->timeout_ms, "healthy",
                                      (json_int_t)hc->healthy, "unhealthy",
                                      (json_int_t)hc->unhealthy));
}

static json_t *upstream_json(const tg_upstream_conf_t *u)
{
    json_t *o = json_object(), *targets = json_array();
    static const char *const balance[] = {"round_robin", "least_conn", "p2c_ewma", "hash"};
    for (size_t i = 0; i < u->ntargets; i++)
        if (u->targets[i].slot == 0) /* a re-resolved name once, as written */
            json_array_append_new(targets, target_json(&u->targets[i]));
    json_object_set_new(o, "name", jstr(u->name));
    json_object_set_new(o, "targets", targets);
    json_object_set_new(o, "balance", json_string(balance[u->balance]));
    json_object_set_new(o, "keepalive", juint(u->keepalive));
    json_object_set_new(o, "keepalive_trim_ms", juint(u->keepalive_trim_ms));
    json_object_set_new(o, "connect_timeout_ms", juint(u->connect_timeout_ms));
    json_object_set_new(o, "timeout_ms", juint(u->timeout_ms));
    json_object_set_new(o, "retries", juint(u->retries));
    json_object_set_new(o, "max_fails", juint(u->max_fails));
    json_object_set_new(o, "fail_timeout_ms", juint(u->fail_timeout_ms));
    isolation_json(o, u);
    return o;
}

/* A route's timeout, max_body_size, retry and split, only where set. */
static void route_policy_json(json_t *o, const tg_route_t *r)
{
    if (r->timeout_ms)
        json_object_set_new(o, "timeout_ms", juint(r->timeout_ms));
    if (r->has_max_body_size)
        json_object_set_new(o, "max_body_size", juint(r->max_body_size));
    const tg_retry_policy_t *rp = r->retry;
    if (rp != NULL)
        json_object_set_new(o, "retry",
                            json_pack("{s:I,s:I,s:I,s:I,s:I}", "attempts", (json_int_t)rp->attempts,
                                      "per_try_timeout_ms", (json_int_t)rp->per_try_timeout_ms,
                                      "backoff_base_ms", (json_int_t)rp->backoff_base_ms,
                                      "backoff_max_ms", (json_int_t)rp->backoff_max_ms,
                                      "budget_percent", (json_int_t)rp->budget_pct));
    if (r->split == NULL)
        return;
    json_t *a = json_array();
    for (size_t i = 0; i < r->split->nsides; i++)
        json_array_append_new(a,
                              json_pack("{s:s,s:I}", "upstream", r->split->sides[i].upstream->name,
                                        "weight", (json_int_t)r->split->sides[i].weight));
    json_object_set_new(o, "split", a);
}

static json_t *methods_json(const tg_route_t *r)
{
    /* Same order as the TG_METHOD_* bits. */
    static const char *const names[] = {"GET",   "HEAD",    "POST",  "PUT",    "DELETE",
                                        "PATCH", "OPTIONS", "TRACE", "CONNECT"};
    json_t *a = json_array();
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (r->methods & (1u << i))
            json_array_append_new(a, json_string(names[i]));
    for (char **m = r->method_names; m && *m; m++)
        json_array_append_new(a, jstr(*m));
    return a;
}

static void add_path_match(json_t *o, const tg_route_t *r)
{
    switch (r->path_kind) {
    case TG_PATH_EXACT:
        json_object_set_new(o, "path", jstr(r->path));
        break;
    case TG_PATH_PREFIX:
        json_object_set_new(o, "path_prefix", jstr(r->path));
        break;
    /* The pattern is kept only compiled unless the loader stores its source. */
    case TG_PATH_REGEX:
        json_object_set_new(o, "path_regex", jstr(r->path));
        break;
    case TG_PATH_ANY:
        break;
    }
}

static json_t *match_json(const tg_route_t *r)
{
    json_t *o = json_object();
    if (r->host != NULL) {
        char *h = NULL;
        /* A wildcard is stored as ".example.com": show it as written. */
        if (r->host_wildcard && asprintf(&h, "*%s", r->host) < 0)
            h = NULL;
        json_object_set_new(o, "host", jstr(h ? h : r->host));
        free(h);
    }
    add_path_match(o, r);
    if (r->methods != 0)
        json_object_set_new(o, "methods", methods_json(r));
    if (r->nheaders > 0) {
        /* Operators route on shared secrets (X-Internal-Key: ...): the names
         * are shown, no value. */
        json_t *hs = json_object();
        for (size_t i = 0; i < r->nheaders; i++)
            json_object_set_new(hs, r->headers[i].name, jsecret(true));
        json_object_set_new(o, "headers", hs);
    }
    return o;
}

static json_t *chain_json(const tg_chain_t *c)
{
    json_t *a = json_array();
    for (size_t i = 0; c != NULL && i < c->n; i++)
        json_array_append_new(a, jstr(c->items[i]->name));
    return a;
}

static json_t *route_json(const tg_route_t *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", jstr(r->name));
    json_object_set_new(o, "match", match_json(r));
    json_object_set_new(o, "strip_prefix", jstr(r->strip_prefix));
    json_object_set_new(o, "upstream",
                        jstr(r->upstream && r->split == NULL ? r->upstream->name : NULL));
    json_object_set_new(o, "plugins", chain_json(r->chain));
    route_policy_json(o, r);
    return o;
}

static json_t *redis_json(const tg_redis_conf_t *r)
{
    if (r == NULL)
        return json_null();
    json_t *o = json_object();
    json_object_set_new(o, "address", jstr(r->name));
    json_object_set_new(o, "password", jsecret(r->password != NULL));
    json_object_set_new(o, "username", jstr(r->username));
    if (r->sentinel_master != NULL) {
        json_t *nodes = json_array();
        for (size_t i = 0; i < r->nsentinels; i++)
            json_array_append_new(
                nodes, json_sprintf("%s:%d", r->sentinels[i].host, r->sentinels[i].port));
        json_object_set_new(o, "sentinel",
                            json_pack("{s:s, s:o, s:o}", "master", r->sentinel_master, "nodes",
                                      nodes, "password", jsecret(r->sentinel_password != NULL)));
    }
    if (r->nseeds > 0) {
        json_t *seeds = json_array();
        for (size_t i = 0; i < r->nseeds; i++)
            json_array_append_new(
                seeds, json_sprintf("%s:%d", r->cluster_seeds[i].host, r->cluster_seeds[i].port));
        json_object_set_new(o, "cluster", json_pack("{s:o}", "nodes", seeds));
    }
    json_object_set_new(o, "database", juint(r->database));
    json_object_set_new(o, "timeout_ms", juint(r->timeout_ms));
    json_object_set_new(o, "connect_timeout_ms", juint(r->connect_timeout_ms));
    return o;
}

static json_t *array_of(const void *items, size_t n, size_t size, json_t *(*one)(const void *))
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, one((const char *)items + i * size));
    return a;
}

static json_t *listen_one(const void *p)
{
    return listen_json(p);
}
static json_t *cidr_one(const void *p)
{
    return cidr_json(p);
}
static json_t *upstream_one(const void *p)
{
    return upstream_json(p);
}
static json_t *route_one(const void *p)
{
    return route_json(p);
}

json_t *tg_admin_config_json(const tg_config_t *cfg)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "file", jstr(cfg->file));
    json_object_set_new(o, "workers", juint(cfg->workers));
    json_object_set_new(
        o, "listen",
        array_of(cfg->listeners, cfg->nlisteners, sizeof(*cfg->listeners), listen_one));
    json_object_set_new(o, "admin", cfg->has_admin ? admin_json(cfg) : json_null());
    json_object_set_new(o, "limits", limits_json(&cfg->limits));
    json_object_set_new(o, "trusted_proxies",
                        array_of(cfg->trusted_proxies, cfg->ntrusted_proxies,
                                 sizeof(*cfg->trusted_proxies), cidr_one));
    json_object_set_new(
        o, "upstreams",
        array_of(cfg->upstreams, cfg->nupstreams, sizeof(*cfg->upstreams), upstream_one));
    json_object_set_new(o, "routes",
                        array_of(cfg->routes, cfg->nroutes, sizeof(*cfg->routes), route_one));
    json_object_set_new(o, "plugins", chain_json(cfg->global_chain));
    json_object_set_new(o, "plugin_path", jstr(cfg->plugin_path));
    json_object_set_new(o, "redis", redis_json(cfg->redis));
    /* Known secrets are masked where they are written (jsecret); this pass
     * catches a field added later under a secret-looking name. */
    tg_admin_mask_secrets(o);
    return o;
}
