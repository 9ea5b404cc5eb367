/*
 * Internal side of the configuration nodes: loading a YAML document into a tree
 * of tg_conf_node_t (include/tollgate/conf.h). The whole tree lives in one arena
 * owned by the document and is released by tg_conf_doc_free().
 *
 * Accepted YAML: one document, scalar keys, no duplicate keys. Anchors and
 * aliases are resolved (an alias is the anchored node itself, with the
 * anchor's FILE:LINE:COL; it must come after its anchor, so there are no
 * cycles; what aliases expand to is bounded), and a plain `<<` key merges the
 * map or list of maps it names into its map (keys the map sets win, then
 * earlier maps of the list): YAML 1.1's merge key, shallow.
 * `${NAME}` and `${NAME:-default}` in scalar values (not keys) are replaced by
 * the environment variable; the default applies when NAME is unset or empty
 * (shell semantics); `$$` is a literal `$`; any other `$` is kept as is.
 */
#ifndef TG_CONF_NODE_H
#define TG_CONF_NODE_H

#include <stddef.h>

#include "tollgate/conf.h"

/* tg_conf_doc_t, tg_conf_doc_load(), tg_conf_doc_root() and tg_conf_doc_free()
 * are public (tollgate/conf.h): plugins read their own YAML files with them. */

/* Same from memory; name is what error messages and node->file show. */
int tg_conf_doc_parse(const char *name, const char *buf, size_t len, tg_conf_doc_t **out,
                      tg_conf_err_t *err);

/* tg_conf_check_keys() whose message names the section:
 * "unknown key 'foo' in <where>" (where == NULL: "unknown key 'foo'"). */
int tg_conf_check_keys_in(const tg_conf_node_t *map, const char *const *allowed, const char *where,
                          tg_conf_err_t *err);

/* What to say about a name that is not one of known (NULL-terminated):
 * "did you mean 'timeout'?" when one is close enough to be a typo, else
 * "known: a, b, c"; "" when known is empty. */
void tg_conf_suggest(const char *const *known, const char *s, char *buf, size_t cap);

/* The value an absent field of the table gets, as it would be written in
 * the config ("30s", "16KiB", "round_robin"); false when it has none to show
 * (required, NODE, CUSTOM, STRINGS, a STRING without default). */
bool tg_conf_field_default(const tg_conf_field_t *f, char *buf, size_t cap);

/* Called by tg_conf_read() with every map it reads (NULL when the key was
 * absent: where then names the section) and its table, on this thread,
 * while set (NULL stops). `tollgate -T` uses it to show defaults. */
typedef void (*tg_conf_read_hook_fn)(const tg_conf_node_t *map, const tg_conf_field_t *fields,
                                     const char *where, void *arg);
void tg_conf_read_observe(tg_conf_read_hook_fn fn, void *arg);

/* Called by tg_conf_check_keys_in() (so by tg_conf_read() too) with every
 * map whose keys it checks and the keys allowed there. The documentation
 * test derives the keys the loader accepts from it (tests/tools/conf_keys.c). */
typedef void (*tg_conf_keys_hook_fn)(const tg_conf_node_t *map, const char *const *allowed,
                                     void *arg);
void tg_conf_keys_observe(tg_conf_keys_hook_fn fn, void *arg);

#endif
