/* Prints every key the config loader accepts, derived from its own tables:
 * the file given (tests/integration/data/all_sections.yaml) is loaded with
 * an observer on tg_conf_check_keys_in(), which every table-driven map
 * passes through; each map it saw is named by its path in the file, and its
 * allowed keys are printed as "path.key" lines, sorted by the caller.
 *
 * Paths: "limits.idle_timeout", "listen[].tls.certificates[].cert",
 * "upstreams.<name>.timeout" (a map with names of the operator's choice is
 * "<name>"). A plugin's config keys are named after the plugin: "jwt: leeway",
 * "rate-limit: limits[].burst". Exit 1 when the file does not load. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_node.h"
#include "config.h"

typedef struct {
    unsigned line, col;
    char **allowed; /* copied: tg_conf_read() builds its list on the stack */
} seen_t;

static seen_t seen[512];
static size_t nseen;

static void on_keys(const tg_conf_node_t *map, const char *const *allowed, void *arg)
{
    if (nseen == sizeof(seen) / sizeof(seen[0]) || strcmp(map->file, (const char *)arg) != 0)
        return;
    size_t n = 0;
    while (allowed[n] != NULL)
        n++;
    char **copy = calloc(n + 1, sizeof(*copy));
    for (size_t i = 0; copy != NULL && i < n; i++)
        copy[i] = strdup(allowed[i]);
    seen[nseen++] = (seen_t){map->line, map->col, copy};
}

static const seen_t *find(const tg_conf_node_t *n)
{
    for (size_t i = 0; i < nseen; i++)
        if (seen[i].line == n->line && seen[i].col == n->col)
            return &seen[i];
    return NULL;
}

static void walk(const tg_conf_node_t *n, const char *path)
{
    char sub[512];
    if (n->type == TG_CONF_SEQ) {
        snprintf(sub, sizeof(sub), "%s[]", path);
        for (size_t i = 0; i < n->count; i++)
            walk(n->items[i], sub);
        return;
    }
    if (n->type != TG_CONF_MAP)
        return;
    const seen_t *s = find(n);
    bool top = *path == '\0' || path[strlen(path) - 1] == ':';
    for (size_t i = 0; s != NULL && s->allowed[i] != NULL; i++)
        printf("%s%s%s\n", path, top ? (*path ? " " : "") : ".", s->allowed[i]);
    size_t plen = strlen(path);
    /* A plugin entry: its config is that plugin's, named "<plugin>:". */
    const tg_conf_node_t *name = tg_conf_map_get(n, "name");
    bool entry = plen >= 9 && strcmp(path + plen - 9, "plugins[]") == 0 && name != NULL &&
                 name->type == TG_CONF_SCALAR;
    for (size_t i = 0; i < n->count; i++) {
        const char *k = n->keys[i]->value;
        if (entry && strcmp(k, "config") == 0)
            snprintf(sub, sizeof(sub), "%s:", name->value);
        else /* a map without a table holds names the operator chose */
            snprintf(sub, sizeof(sub), "%s%s%s", path, top ? (*path ? " " : "") : ".",
                     s != NULL ? k : "<name>");
        walk(n->items[i], sub);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: conf_keys FILE\n");
        return 2;
    }
    tg_conf_keys_observe(on_keys, argv[1]);
    tg_config_t *cfg = NULL;
    tg_conf_err_t err;
    tg_config_opts_t opts = {.check_only = true};
    if (tg_config_load_opts(argv[1], &opts, &cfg, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    tg_conf_keys_observe(NULL, NULL);
    tg_config_unref(cfg);
    tg_conf_doc_t *doc;
    if (tg_conf_doc_load(argv[1], &doc, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    walk(tg_conf_doc_root(doc), "");
    tg_conf_doc_free(doc);
    return 0;
}
