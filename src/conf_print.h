/*
 * `tollgate -T`: the effective configuration as YAML, the way the loader
 * understood it: includes merged, anchors and `<<` expanded, `${ENV}`
 * substituted, every key a table knows but the file left out added with its
 * default (marked "# default"), `workers: auto` resolved, and secrets masked
 * ("***" under any key tg_admin_secret_name() calls secret, and the values of
 * match.headers). Plugin configs are shown too, with their own defaults:
 * they are read by the same tables (tg_conf_read).
 */
#ifndef TG_CONF_PRINT_H
#define TG_CONF_PRINT_H

#include <stdio.h>

#include "config.h"

typedef struct tg_conf_print_s tg_conf_print_t;

/* Starts watching tg_conf_read() on this thread (before the load). */
tg_conf_print_t *tg_conf_print_start(void);
/* Stops watching; writes root (the merged tree of the load that just
 * succeeded, cfg its result) to out. */
void tg_conf_print_write(tg_conf_print_t *p, const tg_conf_node_t *root, const tg_config_t *cfg,
                         FILE *out);
/* Stops watching (if still) and frees p. NULL is allowed. */
void tg_conf_print_free(tg_conf_print_t *p);

#endif
