/*
 * tollgate public API: configuration nodes.
 *
 * The YAML config is loaded once into an immutable tree of tg_conf_node_t, each
 * node remembering where it was written, so every consumer (the core and every
 * plugin's config parser) can report errors as "FILE:LINE:COL: message".
 * `${ENV_VAR}` references in scalars are already substituted when a node is
 * seen here. Nodes live only while the config is being parsed: copy what you keep.
 */
#ifndef TOLLGATE_CONF_H
#define TOLLGATE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    TG_CONF_NULL = 0, /* empty value or `~` / `null` */
    TG_CONF_SCALAR,
    TG_CONF_MAP,
    TG_CONF_SEQ,
} tg_conf_type_t;

typedef struct tg_conf_node_s tg_conf_node_t;

struct tg_conf_node_s {
    tg_conf_type_t type;
    const char *file;       /* path of the file the node was read from */
    unsigned line;          /* 1-based line of the node's first character */
    unsigned col;           /* 1-based column of the node's first character */
    const char *value;      /* scalars: NUL-terminated text after ${ENV} substitution */
    size_t len;             /* scalars: length of value */
    bool quoted;            /* scalars: written with quotes (so "null"/"true" are strings) */
    size_t count;           /* maps: number of pairs; sequences: number of items */
    tg_conf_node_t **keys;  /* maps: the key nodes (always scalars), count of them */
    tg_conf_node_t **items; /* maps: the value of keys[i]; sequences: the items */
};

/* Error text filled by the functions below, already prefixed "FILE:LINE:COL: ". */
typedef struct {
    char msg[512];
} tg_conf_err_t;

/* Formats "FILE:LINE:COL: <fmt>" into err for node; always returns -1 so that
 * callers can `return tg_conf_error(...)`. */
int tg_conf_error(tg_conf_err_t *err, const tg_conf_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Value of `key` in a map node, or NULL when absent or when map is not a map. */
const tg_conf_node_t *tg_conf_map_get(const tg_conf_node_t *map, const char *key);

/* Fails at the first key of map that is not in the NULL-terminated list allowed
 * ("unknown key 'foo'"), and when map is not a map. */
int tg_conf_check_keys(const tg_conf_node_t *map, const char *const *allowed, tg_conf_err_t *err);

/* Typed scalar readers: 0 on success, -1 with err filled otherwise. The
 * syntax of numbers, durations and sizes is tollgate/units.h's, whose parsers
 * read the same text outside a config node. */
int tg_conf_get_string(const tg_conf_node_t *n, const char **out, tg_conf_err_t *err);
int tg_conf_get_bool(const tg_conf_node_t *n, bool *out, tg_conf_err_t *err);
int tg_conf_get_uint(const tg_conf_node_t *n, uint64_t min, uint64_t max, uint64_t *out,
                     tg_conf_err_t *err);
/* "250ms", "10s", "1m", "2h", "1d", combinations like "1m30s"; plain numbers are
 * rejected (the unit is never guessed). Result in milliseconds. */
int tg_conf_get_duration_ms(const tg_conf_node_t *n, uint64_t *out_ms, tg_conf_err_t *err);
/* "512", "512B", "16KiB", "10MiB", "1GiB" (1024-based), "16KB"/"10MB"/"1GB"
 * (1000-based), nginx-style "16k"/"10m"/"1g" (1024-based). Result in bytes. */
int tg_conf_get_size(const tg_conf_node_t *n, uint64_t *out, tg_conf_err_t *err);

#endif
