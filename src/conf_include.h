/*
 * `include:` at the top of tollgate.yaml: more files whose routes, upstreams
 * and plugins join the main file's, so that a large config can be split
 * over conf.d/ (nginx's `include` of conf.d/ files).
 *
 *   include: ["conf.d/\*.yaml", /etc/tollgate/extra.yaml]   (no backslash in YAML)
 *
 * A string or a list of them; relative to the main file's directory. A
 * pattern with * ? or [ is a glob(3): its files in name order, none is fine
 * (an empty conf.d/). A plain path must exist. Each included file is a map
 * of `routes:` (appended to the main file's, in order), `upstreams:` (added;
 * a name defined twice is an error at the second) and `plugins:` (appended
 * to the global chain); nothing else, and no include of its own. Anchors do
 * not cross files; top-level keys starting with `x-` (in the main file and
 * in included ones) are skipped, a place to define them. Every node keeps its own FILE:LINE:COL, so errors point
 * into the file where the mistake is.
 */
#ifndef TG_CONF_INCLUDE_H
#define TG_CONF_INCLUDE_H

#include "tollgate/conf.h"

typedef struct tg_conf_include_s tg_conf_include_t;

/* Reads root's `include:` (dir: the main file's directory) and returns in
 * *merged the root as if everything had been written in one file (root
 * itself when there is no include). Errors are recorded as a load that
 * collects them does (conf_errors.h); -1 when nothing collects. *out owns
 * the included documents and the merged nodes: free it after the load. */
int tg_conf_include(const tg_conf_node_t *root, const char *dir, tg_conf_include_t **out,
                    const tg_conf_node_t **merged, tg_conf_err_t *err);
void tg_conf_include_free(tg_conf_include_t *inc);

#endif
