/*
 * The top-level `redis:` map (see redis.h). Exactly one topology key:
 * `address` (one server), `sentinel` (ask Sentinels for the primary of a
 * named master), `cluster` (seeds; the slot map is discovered). `tls` is
 * refused with the reason: hiredis 0.14 (Debian 12) has no TLS.
 */
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "conf_node.h"
#include "metrics.h"
#include "redis.h"

static const char *const redis_keys[] = {
    "address",  "sentinel", "cluster",  "timeout", "connect_timeout",
    "password", "username", "database", "tls",     NULL};
static const char *const sentinel_keys[] = {"master", "nodes", "password", NULL};
static const char *const kind_names[] = {"timeout", "disconnected", "error"};

static char *dup_s(const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        abort(); /* same policy as the config arena: no memory at load, no gateway */
    return d;
}

static int parse_unix(tg_redis_conf_t *rc, const tg_config_t *cfg, const tg_conf_node_t *n,
                      const char *path, tg_conf_err_t *err)
{
    char buf[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    if (*path == '\0')
        return tg_conf_error(err, n, "empty unix socket path");
    int len = path[0] == '/' || cfg == NULL || cfg->dir == NULL
                  ? snprintf(buf, sizeof(buf), "%s", path)
                  : snprintf(buf, sizeof(buf), "%s/%s", cfg->dir, path);
    if (len < 0 || (size_t)len >= sizeof(buf) - 1)
        return tg_conf_error(err, n, "unix socket path too long (at most %zu bytes)",
                             sizeof(buf) - 2);
    rc->unix_path = dup_s(buf);
    return 0;
}

/* "ip:port" (numeric, resolved at load) into *host (malloc'ed) and *port. */
static int parse_tcp(const tg_conf_node_t *n, const char *text, char **host, int *port,
                     tg_conf_err_t *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char eb[300], ip[INET6_ADDRSTRLEN];
    if (text[0] == ':' || text[0] == '*')
        return tg_conf_error(err, n, "redis address needs a host: '%s'", text);
    if (tg_config_parse_address(text, &ss, &len, eb, sizeof(eb)) < 0)
        return tg_conf_error(err, n, "%s", eb);
    const void *a;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const void *)&ss;
        a = &sin->sin_addr;
        *port = ntohs(sin->sin_port);
    } else {
        const struct sockaddr_in6 *sin6 = (const void *)&ss;
        a = &sin6->sin6_addr;
        *port = ntohs(sin6->sin6_port);
    }
    inet_ntop(ss.ss_family, a, ip, sizeof(ip));
    *host = dup_s(ip);
    return 0;
}

static int parse_address(tg_redis_conf_t *rc, const tg_config_t *cfg, const tg_conf_node_t *n,
                         tg_conf_err_t *err)
{
    const char *text;
    if (tg_conf_get_string(n, &text, err) < 0)
        return -1;
    rc->name = dup_s(text);
    if (strncmp(text, "unix:", 5) == 0)
        return parse_unix(rc, cfg, n, text + 5, err);
    return parse_tcp(n, text, &rc->host, &rc->port, err);
}

/* An optional string; "" (an unset ${VAR:-}) is the same as absent. */
static int opt_string(const tg_conf_node_t *map, const char *key, char **out, tg_conf_err_t *err)
{
    const tg_conf_node_t *n = tg_conf_map_get(map, key);
    const char *s;
    if (n == NULL || n->type == TG_CONF_NULL)
        return 0;
    if (tg_conf_get_string(n, &s, err) < 0)
        return -1;
    if (*s != '\0')
        *out = dup_s(s);
    return 0;
}

/* A non-empty list of "ip:port" into *out (malloc'ed). */
static int parse_nodes(const tg_conf_node_t *n, tg_redis_node_t **out, size_t *count,
                       tg_conf_err_t *err)
{
    const char *text;
    if (n->type != TG_CONF_SEQ || n->count == 0)
        return tg_conf_error(err, n, "expected a non-empty list of \"ip:port\"");
    *out = calloc(n->count, sizeof(**out));
    if (*out == NULL)
        abort();
    for (size_t i = 0; i < n->count; i++) {
        tg_redis_node_t *s = &(*out)[*count];
        if (tg_conf_get_string(n->items[i], &text, err) < 0 ||
            parse_tcp(n->items[i], text, &s->host, &s->port, err) < 0)
            return -1;
        (*count)++;
    }
    return 0;
}

static int parse_cluster(tg_redis_conf_t *rc, const tg_conf_node_t *map, tg_conf_err_t *err)
{
    static const char *const keys[] = {"nodes", NULL};
    const tg_conf_node_t *n;
    if (map->type != TG_CONF_MAP)
        return tg_conf_error(err, map, "expected a map (nodes)");
    if (tg_conf_check_keys_in(map, keys, "redis.cluster", err) < 0)
        return -1;
    if ((n = tg_conf_map_get(map, "nodes")) == NULL)
        return tg_conf_error(err, map, "missing required key 'nodes'");
    if (parse_nodes(n, &rc->cluster_seeds, &rc->nseeds, err) < 0)
        return -1;
    char name[128];
    snprintf(name, sizeof(name), "cluster (%zu seeds)", rc->nseeds);
    rc->name = dup_s(name);
    return 0;
}

static int parse_sentinel(tg_redis_conf_t *rc, const tg_conf_node_t *map, tg_conf_err_t *err)
{
    const tg_conf_node_t *n;
    const char *text;
    if (map->type != TG_CONF_MAP)
        return tg_conf_error(err, map, "expected a map (master, nodes, password)");
    if (tg_conf_check_keys_in(map, sentinel_keys, "redis.sentinel", err) < 0)
        return -1;
    if ((n = tg_conf_map_get(map, "master")) == NULL)
        return tg_conf_error(err, map, "missing required key 'master'");
    if (tg_conf_get_string(n, &text, err) < 0)
        return -1;
    if (*text == '\0')
        return tg_conf_error(err, n, "empty master name");
    rc->sentinel_master = dup_s(text);
    if ((n = tg_conf_map_get(map, "nodes")) == NULL)
        return tg_conf_error(err, map, "missing required key 'nodes'");
    if (parse_nodes(n, &rc->sentinels, &rc->nsentinels, err) < 0)
        return -1;
    if (opt_string(map, "password", &rc->sentinel_password, err) < 0)
        return -1;
    char name[300];
    snprintf(name, sizeof(name), "sentinel master '%s'", rc->sentinel_master);
    rc->name = dup_s(name);
    return 0;
}

/* Exactly one of address | sentinel | cluster. */
static int parse_topology(tg_redis_conf_t *rc, const tg_config_t *cfg, const tg_conf_node_t *map,
                          tg_conf_err_t *err)
{
    static const char *const keys[] = {"address", "sentinel", "cluster"};
    const tg_conf_node_t *found[3], *first = NULL;
    for (size_t i = 0; i < 3; i++) {
        found[i] = tg_conf_map_get(map, keys[i]);
        if (found[i] != NULL && first != NULL)
            return tg_conf_error(err, found[i],
                                 "redis takes exactly one of address, sentinel, cluster "
                                 "(%s given too)",
                                 first == found[0] ? "address" : "sentinel");
        if (found[i] != NULL)
            first = found[i];
    }
    if (first == NULL)
        return tg_conf_error(err, map,
                             "missing required key 'address' (or 'sentinel' or 'cluster')");
    if (found[2] != NULL)
        return parse_cluster(rc, found[2], err);
    if (found[1] != NULL)
        return parse_sentinel(rc, found[1], err);
    return parse_address(rc, cfg, found[0], err);
}

static int parse_duration(const tg_conf_node_t *map, const char *key, uint64_t *out,
                          tg_conf_err_t *err)
{
    const tg_conf_node_t *n = tg_conf_map_get(map, key);
    if (n == NULL)
        return 0;
    if (tg_conf_get_duration_ms(n, out, err) < 0)
        return -1;
    if (*out == 0)
        return tg_conf_error(err, n, "must be greater than 0");
    return 0;
}

static int parse_rest(tg_redis_conf_t *rc, const tg_conf_node_t *map, tg_conf_err_t *err)
{
    const tg_conf_node_t *n;
    uint64_t v;
    /* hiredis 0.14 (Debian 12) has no TLS (it came with hiredis 1.0), and a
     * config that asks for TLS must not silently talk plain text. */
    if ((n = tg_conf_map_get(map, "tls")) != NULL)
        return tg_conf_error(err, n,
                             "redis tls is not supported: tollgate is built against hiredis "
                             "%d.%d, which has no TLS; reach Redis over a unix socket, a "
                             "private network or a local TLS tunnel (stunnel, spiped)",
                             HIREDIS_MAJOR, HIREDIS_MINOR);
    if (opt_string(map, "password", &rc->password, err) < 0 ||
        opt_string(map, "username", &rc->username, err) < 0)
        return -1;
    if (rc->username != NULL && rc->password == NULL)
        return tg_conf_error(err, tg_conf_map_get(map, "username"),
                             "username needs a password (AUTH username password)");
    if ((n = tg_conf_map_get(map, "database")) != NULL) {
        if (tg_conf_get_uint(n, 0, INT32_MAX, &v, err) < 0)
            return -1;
        if (v != 0 && rc->nseeds > 0)
            return tg_conf_error(err, n, "a Redis Cluster has only database 0");
        rc->database = (uint32_t)v;
    }
    if (parse_duration(map, "timeout", &rc->timeout_ms, err) < 0)
        return -1;
    return parse_duration(map, "connect_timeout", &rc->connect_timeout_ms, err);
}

int tg_redis_conf_parse(tg_config_t *cfg, const tg_conf_node_t *node, tg_conf_err_t *err)
{
    if (node->type != TG_CONF_MAP)
        return tg_conf_error(err, node, "expected a map");
    if (tg_conf_check_keys_in(node, redis_keys, "redis", err) < 0)
        return -1;
    tg_redis_conf_t *rc = calloc(1, sizeof(*rc));
    if (rc == NULL)
        return tg_conf_error(err, node, "out of memory");
    rc->timeout_ms = 50;
    rc->connect_timeout_ms = 1000;
    if (parse_topology(rc, cfg, node, err) < 0 || parse_rest(rc, node, err) < 0) {
        tg_redis_conf_free(rc);
        return -1;
    }
    rc->metric_errors = tg_metrics_counter(tg_metrics_registry(), "tollgate_redis_errors_total",
                                           "Failed Redis calls by kind.", "kind", kind_names, 3);
    cfg->redis = rc;
    return 0;
}

void tg_redis_conf_free(tg_redis_conf_t *conf)
{
    if (conf == NULL)
        return;
    free(conf->name);
    free(conf->host);
    free(conf->unix_path);
    free(conf->password);
    free(conf->username);
    free(conf->sentinel_master);
    for (size_t i = 0; i < conf->nsentinels; i++)
        free(conf->sentinels[i].host);
    free(conf->sentinels);
    free(conf->sentinel_password);
    for (size_t i = 0; i < conf->nseeds; i++)
        free(conf->cluster_seeds[i].host);
    free(conf->cluster_seeds);
    free(conf);
}
