#include "chain.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_errors.h"
#include "conf_node.h"
#include "log.h"
#include "metrics.h"
#include "sensitive.h"
#include "tg_build_config.h"

/* Loaded modules are kept for the life of the process: instances of an old
 * config may still run their destroy() after a reload, and unloading code
 * that a pending callback points into is never worth the memory. */
typedef struct {
    char *key; /* name or path */
    const tg_plugin_t *desc;
} module_t;

static module_t *modules;
static size_t nmodules;

const char *tg_chain_default_plugin_dir(void)
{
    static char dir[PATH_MAX + 16];
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            struct stat st;
            snprintf(dir, sizeof(dir), "%s/plugins", exe);
            if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
                return dir;
        }
    }
    return TG_PLUGIN_DIR;
}

/* The 2.0 descriptor ends with `reopen`; every later field is optional. */
#define SIZE_2_0 (offsetof(tg_plugin_t, reopen) + sizeof(void (*)(void *)))

/* The ABI rules of plugin.h. Returns 0, or -1 with err filled. */
static int check_abi(const tg_plugin_abi_t *abi, const char *file, const tg_conf_node_t *at,
                     tg_conf_err_t *err)
{
    if (abi->major != TG_PLUGIN_API_MAJOR)
        return tg_conf_error(err, at,
                             "plugin %s was built for plugin API %u, this tollgate provides %u.%u",
                             file, (unsigned)abi->major, TG_PLUGIN_API_MAJOR, TG_PLUGIN_API_MINOR);
    if (abi->minor > TG_PLUGIN_API_MINOR)
        return tg_conf_error(err, at,
                             "plugin %s was built for plugin API %u.%u, newer than this tollgate's "
                             "%u.%u: upgrade tollgate or build the plugin against these headers",
                             file, (unsigned)abi->major, (unsigned)abi->minor, TG_PLUGIN_API_MAJOR,
                             TG_PLUGIN_API_MINOR);
    if (abi->size < SIZE_2_0)
        return tg_conf_error(err, at,
                             "plugin %s has a descriptor of %u bytes, smaller than plugin API "
                             "2.0's %zu: it was not built with TG_PLUGIN_ABI",
                             file, (unsigned)abi->size, (size_t)SIZE_2_0);
    if (abi->size > sizeof(tg_plugin_t))
        return tg_conf_error(err, at,
                             "plugin %s has a descriptor of %u bytes, larger than plugin API "
                             "%u.%u's %zu: it was not built with TG_PLUGIN_ABI",
                             file, (unsigned)abi->size, TG_PLUGIN_API_MAJOR, TG_PLUGIN_API_MINOR,
                             sizeof(tg_plugin_t));
    return 0;
}

/* Returns the module's descriptor copied into a zeroed tg_plugin_t of this
 * core's size: fields past the module's abi.size (added in a later minor)
 * read as NULL. The copy lives as long as the process, like the module. */
static tg_plugin_t *open_module(const char *file, const tg_conf_node_t *at, tg_conf_err_t *err)
{
    void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        tg_conf_error(err, at, "cannot load plugin %s: %s", file, dlerror());
        return NULL;
    }
    const tg_plugin_abi_t *abi = dlsym(h, "tg_plugin");
    if (abi == NULL) {
        tg_conf_error(err, at, "%s is not a tollgate plugin (no tg_plugin symbol)", file);
        dlclose(h);
        return NULL;
    }
    if (check_abi(abi, file, at, err) < 0) {
        dlclose(h);
        return NULL;
    }
    tg_plugin_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        abort();
    memcpy(d, abi, abi->size);
    if (d->name == NULL || d->create == NULL) {
        tg_conf_error(err, at, "plugin %s has no name or no create()", file);
        free(d);
        dlclose(h);
        return NULL;
    }
    tg_log_info("plugin %s %s (API %u.%u) loaded from %s", d->name,
                d->version ? d->version : "(no version)", (unsigned)abi->major,
                (unsigned)abi->minor, file);
    return d;
}

int tg_chain_plugin_file(const char *dir, const char *name, char *file, size_t cap)
{
    int n = snprintf(file, cap, "%s/%s.so", dir, name);
    if (n > 0 && (size_t)n < cap && access(file, F_OK) == 0)
        return 0;
    n = snprintf(file, cap, "%s/%s/%s.so", dir, name, name);
    return n > 0 && (size_t)n < cap && access(file, F_OK) == 0 ? 0 : -1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **tg_chain_plugins_in(const char *dir)
{
    size_t n = 0, cap = 16;
    char **names = calloc(cap + 1, sizeof(*names));
    DIR *d = opendir(dir);
    for (struct dirent *e; names != NULL && d != NULL && (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        char file[PATH_MAX];
        char *name = len > 3 && strcmp(e->d_name + len - 3, ".so") == 0
                         ? strndup(e->d_name, len - 3)
                         : strdup(e->d_name);
        if (name == NULL || name[0] == '.' ||
            tg_chain_plugin_file(dir, name, file, sizeof(file)) < 0) {
            free(name);
            continue;
        }
        if (n == cap) {
            char **more = realloc(names, (cap * 2 + 1) * sizeof(*names));
            if (more == NULL) {
                free(name);
                break;
            }
            names = more;
            cap *= 2;
        }
        names[n++] = name;
    }
    if (d != NULL)
        closedir(d);
    if (names == NULL)
        return NULL;
    qsort(names, n, sizeof(names[0]), by_name);
    names[n] = NULL;
    return names;
}

void tg_chain_plugins_free(char **names)
{
    for (size_t i = 0; names != NULL && names[i] != NULL; i++)
        free(names[i]);
    free(names);
}

/* "unknown plugin 'jtw' (did you mean 'jwt'?)", else what the directory holds. */
static void unknown_plugin(const char *dir, const char *name, const tg_conf_node_t *at,
                           tg_conf_err_t *err)
{
    char **names = tg_chain_plugins_in(dir);
    char hint[400];
    if (names == NULL || names[0] == NULL)
        tg_conf_error(err, at, "unknown plugin '%s' (no plugins in %s)", name, dir);
    else {
        tg_conf_suggest((const char *const *)names, name, hint, sizeof(hint));
        tg_conf_error(err, at, "unknown plugin '%s' (%s)", name, hint);
    }
    tg_chain_plugins_free(names);
}

static const tg_plugin_t *find_module(const tg_config_t *cfg, const char *name,
                                      const tg_conf_node_t *path_node, const tg_conf_node_t *at,
                                      tg_conf_err_t *err)
{
    char file[PATH_MAX];
    const char *key = name;
    if (path_node != NULL) {
        if (path_node->value[0] == '/' || cfg->dir == NULL)
            snprintf(file, sizeof(file), "%s", path_node->value);
        else
            snprintf(file, sizeof(file), "%s/%s", cfg->dir, path_node->value);
        key = file;
        at = path_node;
    }
    for (size_t i = 0; i < nmodules; i++)
        if (strcmp(modules[i].key, key) == 0)
            return modules[i].desc;
    if (path_node == NULL && tg_chain_plugin_file(cfg->plugin_path, name, file, sizeof(file)) < 0) {
        unknown_plugin(cfg->plugin_path, name, at, err);
        return NULL;
    }
    tg_plugin_t *d = open_module(file, at, err);
    if (d == NULL)
        return NULL;
    if (strcmp(d->name, name) != 0) {
        tg_conf_error(err, at, "%s provides plugin '%s', not '%s'", file, d->name, name);
        free(d);
        return NULL;
    }
    module_t *m = realloc(modules, (nmodules + 1) * sizeof(*m));
    if (m == NULL)
        abort();
    modules = m;
    modules[nmodules].key = strdup(path_node ? file : name);
    modules[nmodules].desc = d;
    nmodules++;
    return d;
}

typedef struct {
    const tg_conf_node_t *node;
    const char *name;
    const tg_conf_node_t *config; /* NULL when the key is absent */
    const tg_conf_node_t *path;
    bool enabled;
} entry_t;

static int parse_entry(const tg_conf_node_t *n, entry_t *e, tg_conf_err_t *err)
{
    static const char *const keys[] = {"name", "config", "enabled", "path", NULL};
    if (n->type != TG_CONF_MAP)
        return tg_conf_error(err, n, "expected a plugin entry (a map with name:)");
    if (tg_conf_check_keys(n, keys, err) < 0)
        return -1;
    const tg_conf_node_t *name = tg_conf_map_get(n, "name");
    if (name == NULL)
        return tg_conf_error(err, n, "plugin entry without name");
    e->node = n;
    if (tg_conf_get_string(name, &e->name, err) < 0)
        return -1;
    e->config = tg_conf_map_get(n, "config");
    e->path = tg_conf_map_get(n, "path");
    if (e->path != NULL && e->path->type != TG_CONF_SCALAR)
        return tg_conf_error(err, e->path, "expected a file path");
    e->enabled = true;
    const tg_conf_node_t *en = tg_conf_map_get(n, "enabled");
    if (en != NULL && tg_conf_get_bool(en, &e->enabled, err) < 0)
        return -1;
    return 0;
}

static const tg_conf_node_t null_node = {.type = TG_CONF_NULL};

static tg_plugin_inst_t *create_instance(tg_config_t *cfg, const entry_t *e, tg_route_t *route,
                                         const char *const *before, tg_conf_err_t *err)
{
    const tg_plugin_t *d = find_module(cfg, e->name, e->path, e->node, err);
    if (d == NULL)
        return NULL;
    if (cfg->sensitive == NULL && (cfg->sensitive = tg_sensitive_new()) == NULL) {
        tg_conf_error(err, e->node, "out of memory");
        return NULL;
    }
    tg_plugin_env_t env = {
        .route_name = route ? route->name : NULL,
        .config_dir = cfg->dir ? cfg->dir : ".",
        .before = before,
        .metrics = tg_metrics_registry(),
        .redis_configured = cfg->redis != NULL, /* parsed before the plugins */
        .sensitive = cfg->sensitive,
        .check_only = cfg->check_only,
    };
    void *instance = NULL;
    const tg_conf_node_t *conf = e->config ? e->config : &null_node;
    if (e->config == NULL) {
        /* Positions for errors about a missing config point at the entry. */
        static tg_conf_node_t at;
        at = null_node;
        at.file = e->node->file;
        at.line = e->node->line;
        at.col = e->node->col;
        conf = &at;
    }
    /* Every message of the plugin's says which plugin, and where. */
    char ctx[320];
    if (route != NULL)
        snprintf(ctx, sizeof(ctx), "plugin '%s' in route '%s'", e->name, route->name);
    else
        snprintf(ctx, sizeof(ctx), "plugin '%s' in the global plugins", e->name);
    tg_conf_errors_context(ctx);
    int rc = d->create(conf, &env, &instance, err);
    tg_conf_errors_context(NULL);
    if (rc < 0) {
        /* As the messages recorded inside (if any) were: the last one of
         * them is err, and is then recognised as recorded. */
        tg_conf_err_annotate(err, ctx);
        return NULL;
    }
    tg_plugin_inst_t *pi = calloc(1, sizeof(*pi));
    tg_plugin_inst_t **list = realloc(cfg->instances, (cfg->ninstances + 1) * sizeof(*list));
    if (pi == NULL || list == NULL)
        abort();
    cfg->instances = list;
    pi->plugin = d;
    pi->instance = instance;
    pi->name = strdup(e->name);
    pi->enabled = e->enabled;
    pi->index = cfg->ninstances;
    cfg->instances[cfg->ninstances++] = pi;
    return pi;
}

static void chain_push(tg_chain_t *c, tg_plugin_inst_t *pi)
{
    tg_plugin_inst_t **items = realloc(c->items, (c->n + 1) * sizeof(*items));
    if (items == NULL)
        abort();
    c->items = items;
    c->items[c->n++] = pi;
}

static void chain_finish(tg_chain_t *c)
{
    c->ctx_offset = calloc(c->n ? c->n : 1, sizeof(size_t));
    if (c->ctx_offset == NULL)
        abort();
    size_t off = 0;
    for (size_t i = 0; i < c->n; i++) {
        const tg_plugin_t *d = c->items[i]->plugin;
        c->ctx_offset[i] = off;
        off += (d->ctx_size + 15) & ~(size_t)15;
        c->has_request_body |= d->request_body != NULL;
        c->has_response_head |= d->response_head != NULL;
        c->has_response_body |= d->response_body != NULL;
        c->has_log |= d->log != NULL;
    }
    c->ctx_size = off;
}

/* Names of the plugins already in c, for env.before. */
static const char **names_of(const tg_chain_t *c)
{
    const char **v = calloc(c->n + 1, sizeof(*v));
    if (v == NULL)
        abort();
    for (size_t i = 0; i < c->n; i++)
        v[i] = c->items[i]->name;
    return v;
}

static int find_global(const tg_chain_t *global, const char *name)
{
    for (size_t i = 0; global && i < global->n; i++)
        if (strcmp(global->items[i]->name, name) == 0)
            return (int)i;
    return -1;
}

int tg_chain_parse(tg_config_t *cfg, const tg_conf_node_t *list, tg_route_t *route,
                   const tg_chain_t *global, tg_chain_t **out, tg_conf_err_t *err)
{
    if (list != NULL && list->type != TG_CONF_SEQ && list->type != TG_CONF_NULL)
        return tg_conf_error(err, list, "expected a list of plugins");
    size_t n = list && list->type == TG_CONF_SEQ ? list->count : 0;
    tg_chain_t *c = calloc(1, sizeof(*c));
    entry_t *entries = calloc(n ? n : 1, sizeof(*entries));
    /* For a route: which global items stay, or what replaces them. */
    size_t ng = global ? global->n : 0;
    tg_plugin_inst_t **slots = calloc(ng ? ng : 1, sizeof(*slots));
    if (c == NULL || entries == NULL || slots == NULL)
        abort();
    for (size_t i = 0; i < ng; i++)
        slots[i] = global->items[i];
    int rc = 0;
    /* A broken entry is skipped when the load collects every error. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (parse_entry(list->items[i], &entries[i], err) < 0) {
            rc = tg_conf_errors_recover(err);
            entries[i].name = NULL;
        }
    }
    /* References to global plugins first, so that replaced positions are known. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        int g = route ? find_global(global, entries[i].name) : -1;
        if (g >= 0 && entries[i].config == NULL && entries[i].path == NULL) {
            if (!entries[i].enabled)
                slots[g] = NULL;
            entries[i].name = NULL; /* consumed */
        }
    }
    tg_chain_t tmp = {0};
    for (size_t i = 0; i < ng; i++)
        if (slots[i])
            chain_push(&tmp, slots[i]);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (entries[i].name == NULL)
            continue;
        const char **before = names_of(&tmp);
        tg_plugin_inst_t *pi = create_instance(cfg, &entries[i], route, before, err);
        free(before);
        if (pi == NULL) {
            rc = tg_conf_errors_recover(err);
            if (rc < 0)
                break;
            continue;
        }
        int g = route ? find_global(global, entries[i].name) : -1;
        if (g >= 0 && slots[g] != NULL) {
            /* Replaces the global instance at its position. */
            for (size_t k = 0; k < tmp.n; k++)
                if (tmp.items[k] == slots[g])
                    tmp.items[k] = pi;
            slots[g] = NULL;
        } else {
            chain_push(&tmp, pi);
        }
    }
    for (size_t i = 0; i < tmp.n; i++)
        if (tmp.items[i]->enabled)
            chain_push(c, tmp.items[i]);
    free(tmp.items);
    free(entries);
    free(slots);
    if (rc < 0) {
        tg_chain_free(c);
        return -1;
    }
    chain_finish(c);
    *out = c;
    return 0;
}

tg_chain_t *tg_chain_copy(const tg_chain_t *global)
{
    tg_chain_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    for (size_t i = 0; global && i < global->n; i++)
        chain_push(c, global->items[i]);
    chain_finish(c);
    return c;
}

void tg_chain_free(tg_chain_t *chain)
{
    if (chain == NULL)
        return;
    free(chain->items);
    free(chain->ctx_offset);
    free(chain);
}

void tg_chain_destroy_instances(tg_config_t *cfg)
{
    for (size_t i = cfg->ninstances; i-- > 0;) {
        tg_plugin_inst_t *pi = cfg->instances[i];
        if (pi->plugin->destroy)
            pi->plugin->destroy(pi->instance);
        free(pi->name);
        free(pi);
    }
    free(cfg->instances);
    cfg->instances = NULL;
    cfg->ninstances = 0;
    tg_sensitive_free(cfg->sensitive);
    cfg->sensitive = NULL;
}
