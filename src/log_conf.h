/*
 * The `log:` section: the error log's level, format and destination.
 *
 *   log:
 *     level: info      # error | warn | notice | info | debug; -l overrides it
 *     format: text     # text | json
 *     path: stderr     # or a file, relative to the config's directory;
 *                      # reopened on SIGUSR1 like the access log
 *
 * Applied by the server at startup and after each reload (log.h).
 */
#ifndef TG_LOG_CONF_H
#define TG_LOG_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "tollgate/conf.h"

typedef struct tg_config_s tg_config_t;

typedef struct {
    int level;  /* tg_log_level_t, or -1 when not set (the default stays) */
    bool json;  /* format: json */
    char *path; /* NULL: stderr; else an absolute path (malloc'ed, freed with the config) */
} tg_log_conf_t;

/* Reads the section (n may be NULL: defaults) into cfg->log. */
int tg_log_conf_parse(tg_config_t *cfg, const tg_conf_node_t *n, tg_conf_err_t *err);

/* Applies cfg->log (main thread): level unless -l set one, format, path.
 * Returns 0 or -1 with err filled (the file cannot be opened). */
int tg_log_conf_apply(const tg_config_t *cfg, char *err, size_t errlen);

/* Set by main when -l was given: a config's level does not override it. */
extern bool tg_log_level_from_cli;

#endif
