/*
 * What the parts of the config loader share (config.c, config_upstream.c,
 * config_route.c): the load's context and the small checks every section
 * uses. Internal to the loader.
 */
#ifndef TG_CONFIG_CTX_H
#define TG_CONFIG_CTX_H

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "arena.h"
#include "conf_errors.h"
#include "conf_include.h"
#include "conf_node.h"
#include "config.h"

typedef struct {
    tg_config_t *cfg;
    tg_arena_t *arena;
    tg_conf_err_t *err;
    const tg_conf_node_t *plugins, *plugin_path; /* read after every other section */
    const tg_conf_node_t *include_node;          /* never present: merged away */
    bool upstreams_broken;      /* the section failed whole: no "unknown upstream" then */
    const tg_conf_node_t *root; /* includes merged */
    tg_conf_include_t *include; /* the included files, freed after the load */
} tg_config_ctx_t;

/* A recovery point (src/conf_errors.h): 0 when the load goes on. */
#define RECOVER(c) tg_conf_errors_recover((c)->err)

static inline int tg_config_missing(tg_config_ctx_t *c, const tg_conf_node_t *map, const char *key)
{
    return tg_conf_error(c->err, map, "missing required key '%s'", key);
}

static inline int tg_config_want(tg_config_ctx_t *c, const tg_conf_node_t *n, tg_conf_type_t type)
{
    if (n->type == type)
        return 0;
    const char *what = type == TG_CONF_MAP ? "a map" : "a sequence";
    if (n->type == TG_CONF_SCALAR)
        return tg_conf_error(c->err, n, "expected %s, got '%s'", what, n->value);
    return tg_conf_error(c->err, n, "expected %s", what);
}

/* A non-empty sequence; what names the items for the error message. */
static inline int tg_config_want_items(tg_config_ctx_t *c, const tg_conf_node_t *n,
                                       const char *what)
{
    if (tg_config_want(c, n, TG_CONF_SEQ) < 0)
        return -1;
    if (n->count == 0)
        return tg_conf_error(c->err, n, "expected at least one %s", what);
    return 0;
}

static inline char *tg_config_dup(tg_config_ctx_t *c, const char *s)
{
    return tg_arena_strndup(c->arena, s, strlen(s));
}

/* A copy in lower (upper false) or upper case. */
static inline char *tg_config_dup_case(tg_config_ctx_t *c, const char *s, bool upper)
{
    char *d = tg_config_dup(c, s);
    for (char *p = d; *p; p++)
        *p = (char)(upper ? toupper((unsigned char)*p) : tolower((unsigned char)*p));
    return d;
}

/* A path that must start with '/', canonicalised as request paths are
 * (src/path_norm.h) so that "/v1/a%3ab" meets a request for "/v1/a:b";
 * limits are parsed before routes. */
int tg_config_get_path(tg_config_ctx_t *c, const tg_conf_node_t *n, char **out, size_t *len);

/* The sections that live in their own files. */
int tg_config_parse_upstreams(tg_config_ctx_t *c, const tg_conf_node_t *n);
int tg_config_parse_routes(tg_config_ctx_t *c, const tg_conf_node_t *n);

#endif
