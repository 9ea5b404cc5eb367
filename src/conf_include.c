/* `include:` (src/conf_include.h). */
#include "conf_include.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "conf_errors.h"
#include "conf_node.h"

/* Bounds a pattern that matches a whole file system by mistake. */
#define MAX_FILES 1000

struct tg_conf_include_s {
    tg_arena_t *arena;
    tg_conf_doc_t **docs;
    size_t ndocs;
    char **real;     /* realpath of each file loaded, to refuse one twice */
    char *main_real; /* realpath of the main file: never included */
};

/* The sections an included file may hold, merged in this order. */
static const char *const sections[] = {"routes", "upstreams", "plugins", NULL};

typedef struct {
    tg_conf_include_t *inc;
    tg_conf_err_t *err;
    bool failed; /* an error nothing collects: the merge is not usable */
    /* Per section: the nodes to merge (the main file's first). */
    const tg_conf_node_t **parts[3];
    size_t nparts[3];
} merge_t;

static void add_part(merge_t *m, size_t s, const tg_conf_node_t *n)
{
    const tg_conf_node_t **p = tg_arena_alloc(m->inc->arena, (m->nparts[s] + 1) * sizeof(*p));
    if (m->nparts[s] > 0)
        memcpy(p, m->parts[s], m->nparts[s] * sizeof(*p));
    p[m->nparts[s]++] = n;
    m->parts[s] = p;
}

static int recover(tg_conf_err_t *err)
{
    return tg_conf_errors_recover(err);
}

static bool already_loaded(tg_conf_include_t *inc, const char *real)
{
    if (inc->main_real != NULL && strcmp(inc->main_real, real) == 0)
        return true;
    for (size_t i = 0; i < inc->ndocs; i++)
        if (strcmp(inc->real[i], real) == 0)
            return true;
    return false;
}

/* Top-level `x-...` keys are the file's own: a place for anchors that the
 * loader skips (Compose files use the same convention). */
static bool is_extension(const tg_conf_node_t *key)
{
    return key->len > 2 && key->value[0] == 'x' && key->value[1] == '-';
}

/* map without its x- keys (map itself when it has none). */
static const tg_conf_node_t *without_extensions(tg_arena_t *a, const tg_conf_node_t *map)
{
    size_t n = 0;
    for (size_t i = 0; i < map->count; i++)
        n += !is_extension(map->keys[i]);
    if (n == map->count)
        return map;
    tg_conf_node_t *out = tg_arena_calloc(a, sizeof(*out));
    *out = *map;
    out->keys = tg_arena_calloc(a, (n + 1) * sizeof(*out->keys));
    out->items = tg_arena_calloc(a, (n + 1) * sizeof(*out->items));
    out->count = 0;
    for (size_t i = 0; i < map->count; i++)
        if (!is_extension(map->keys[i])) {
            out->keys[out->count] = map->keys[i];
            out->items[out->count++] = map->items[i];
        }
    return out;
}

/* One included file: loaded, checked, its sections noted. */
static int load_one(merge_t *m, const char *path, const tg_conf_node_t *at)
{
    tg_conf_include_t *inc = m->inc;
    char real[PATH_MAX];
    if (realpath(path, real) == NULL)
        return tg_conf_error(m->err, at, "include %s: %s", path, strerror(errno));
    if (already_loaded(inc, real))
        return tg_conf_error(m->err, at, "include %s: the file is included twice", path);
    if (inc->ndocs == MAX_FILES)
        return tg_conf_error(m->err, at, "include: more than %d files", MAX_FILES);
    tg_conf_doc_t *doc;
    if (tg_conf_doc_load(path, &doc, m->err) < 0)
        return -1;
    inc->docs[inc->ndocs] = doc;
    inc->real[inc->ndocs++] = strdup(real);
    const tg_conf_node_t *root = tg_conf_doc_root(doc);
    if (root->type == TG_CONF_NULL)
        return 0;
    if (root->type == TG_CONF_MAP)
        root = without_extensions(inc->arena, root);
    if (tg_conf_check_keys_in(root, sections, "an included file", m->err) < 0 &&
        (root->type != TG_CONF_MAP || recover(m->err) < 0))
        return -1;
    for (size_t s = 0; sections[s] != NULL; s++) {
        const tg_conf_node_t *n = tg_conf_map_get(root, sections[s]);
        if (n != NULL && n->type != TG_CONF_NULL)
            add_part(m, s, n);
    }
    return 0;
}

static _Thread_local int glob_errno;
static _Thread_local char glob_path[PATH_MAX];

static int glob_failed(const char *path, int e)
{
    glob_errno = e;
    snprintf(glob_path, sizeof(glob_path), "%s", path);
    return 1;
}

static bool has_magic(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

static int one_pattern(merge_t *m, const char *dir, const tg_conf_node_t *n)
{
    const char *pat;
    if (tg_conf_get_string(n, &pat, m->err) < 0)
        return -1;
    if (*pat == '\0')
        return tg_conf_error(m->err, n, "include: empty path");
    char full[PATH_MAX];
    bool as_is = pat[0] == '/' || strcmp(dir, ".") == 0; /* "conf.d/a.yaml", not "./conf.d/..." */
    if (snprintf(full, sizeof(full), "%s%s%s", as_is ? "" : dir, as_is ? "" : "/", pat) >=
        (int)sizeof(full))
        return tg_conf_error(m->err, n, "include: path too long");
    if (!has_magic(pat))
        return load_one(m, full, n);
    glob_t g;
    glob_errno = 0;
    int rc = glob(full, GLOB_ERR, glob_failed, &g);
    /* A conf.d/ that is not there includes nothing; one we cannot read is
     * an error, never a silently smaller config. */
    if (rc == GLOB_NOMATCH || (rc == GLOB_ABORTED && glob_errno == ENOENT))
        return 0;
    if (rc != 0) {
        globfree(&g);
        return tg_conf_error(m->err, n, "include %s: cannot read %s: %s", pat, glob_path,
                             strerror(glob_errno != 0 ? glob_errno : EIO));
    }
    int result = 0;
    for (size_t i = 0; i < g.gl_pathc && result == 0; i++) {
        if (load_one(m, g.gl_pathv[i], n) < 0)
            result = recover(m->err);
    }
    globfree(&g);
    return result;
}

/* ---- merging ------------------------------------------------------------ */

static tg_conf_node_t *node_like(tg_arena_t *a, const tg_conf_node_t *first, size_t count)
{
    tg_conf_node_t *n = tg_arena_calloc(a, sizeof(*n));
    *n = *first;
    n->count = 0;
    n->items = tg_arena_calloc(a, (count + 1) * sizeof(*n->items));
    n->keys =
        first->type == TG_CONF_MAP ? tg_arena_calloc(a, (count + 1) * sizeof(*n->keys)) : NULL;
    return n;
}

/* Every part the same kind (a list, or a map for upstreams), else an error
 * at the first that is not: the loader would say the same of one file. */
static int same_kind(merge_t *m, size_t s, tg_conf_type_t type, size_t *total)
{
    int rc = 0;
    *total = 0;
    for (size_t i = 0; i < m->nparts[s]; i++) {
        const tg_conf_node_t *p = m->parts[s][i];
        if (p->type == type) {
            *total += p->count;
            continue;
        }
        tg_conf_error(m->err, p, "expected %s", type == TG_CONF_MAP ? "a map" : "a sequence");
        if (recover(m->err) < 0)
            m->failed = true;
        rc = -1;
    }
    return rc;
}

static int append_map(merge_t *m, tg_conf_node_t *out, const tg_conf_node_t *p)
{
    for (size_t k = 0; k < p->count; k++) {
        const tg_conf_node_t *key = p->keys[k];
        const tg_conf_node_t *first = tg_conf_map_get(out, key->value);
        if (first != NULL) {
            for (size_t j = 0; j < out->count; j++)
                if (strcmp(out->keys[j]->value, key->value) == 0)
                    first = out->keys[j];
            tg_conf_error(m->err, key, "upstream '%s' is defined twice (first at %s:%u:%u)",
                          key->value, first->file, first->line, first->col);
            if (recover(m->err) < 0) {
                m->failed = true;
                return -1;
            }
            continue;
        }
        out->keys[out->count] = p->keys[k];
        out->items[out->count++] = p->items[k];
    }
    return 0;
}

static const tg_conf_node_t *merge_section(merge_t *m, size_t s)
{
    if (m->nparts[s] == 0)
        return NULL;
    if (m->nparts[s] == 1)
        return m->parts[s][0];
    tg_conf_type_t type = strcmp(sections[s], "upstreams") == 0 ? TG_CONF_MAP : TG_CONF_SEQ;
    size_t total;
    if (same_kind(m, s, type, &total) < 0)
        return m->parts[s][0];
    tg_conf_node_t *out = node_like(m->inc->arena, m->parts[s][0], total);
    for (size_t i = 0; i < m->nparts[s]; i++) {
        const tg_conf_node_t *p = m->parts[s][i];
        if (type == TG_CONF_MAP) {
            if (append_map(m, out, p) < 0)
                return NULL;
            continue;
        }
        for (size_t k = 0; k < p->count; k++)
            out->items[out->count++] = p->items[k];
    }
    return out;
}

/* The main root with `include` gone and the sections merged. */
static const tg_conf_node_t *merged_root(merge_t *m, const tg_conf_node_t *root)
{
    tg_arena_t *a = m->inc->arena;
    tg_conf_node_t *out = node_like(a, root, root->count + 3);
    const tg_conf_node_t *merged[3];
    for (size_t s = 0; sections[s] != NULL; s++)
        merged[s] = merge_section(m, s);
    bool placed[3] = {false, false, false};
    for (size_t i = 0; i < root->count; i++) {
        const char *k = root->keys[i]->value;
        if (strcmp(k, "include") == 0 || is_extension(root->keys[i]))
            continue;
        const tg_conf_node_t *v = root->items[i];
        for (size_t s = 0; sections[s] != NULL; s++)
            if (strcmp(k, sections[s]) == 0 && merged[s] != NULL) {
                v = merged[s];
                placed[s] = true;
            }
        out->keys[out->count] = root->keys[i];
        out->items[out->count++] = (tg_conf_node_t *)v;
    }
    for (size_t s = 0; sections[s] != NULL; s++) {
        if (placed[s] || merged[s] == NULL)
            continue;
        tg_conf_node_t *key = tg_arena_calloc(a, sizeof(*key));
        *key = (tg_conf_node_t){.type = TG_CONF_SCALAR,
                                .file = merged[s]->file,
                                .line = merged[s]->line,
                                .col = merged[s]->col,
                                .value = sections[s],
                                .len = strlen(sections[s])};
        out->keys[out->count] = key;
        out->items[out->count++] = (tg_conf_node_t *)merged[s];
    }
    return out;
}

int tg_conf_include(const tg_conf_node_t *root, const char *dir, tg_conf_include_t **out,
                    const tg_conf_node_t **merged, tg_conf_err_t *err)
{
    *out = NULL;
    *merged = root;
    if (root->type != TG_CONF_MAP)
        return 0;
    const tg_conf_node_t *list = tg_conf_map_get(root, "include");
    bool extensions = false;
    for (size_t i = 0; i < root->count; i++)
        extensions |= is_extension(root->keys[i]);
    if ((list == NULL || list->type == TG_CONF_NULL) && !extensions)
        return 0;
    tg_conf_include_t *inc = calloc(1, sizeof(*inc));
    if (inc == NULL)
        return tg_conf_error(err, root, "out of memory");
    inc->arena = tg_arena_create(4096);
    inc->docs = calloc(MAX_FILES, sizeof(*inc->docs));
    inc->real = calloc(MAX_FILES, sizeof(*inc->real));
    *out = inc;
    if (inc->docs == NULL || inc->real == NULL)
        return tg_conf_error(err, list, "out of memory");
    merge_t m = {.inc = inc, .err = err};
    inc->main_real = realpath(root->file, NULL);
    for (size_t s = 0; sections[s] != NULL; s++) {
        const tg_conf_node_t *n = tg_conf_map_get(root, sections[s]);
        if (n != NULL && n->type != TG_CONF_NULL)
            add_part(&m, s, n);
    }
    if (list != NULL && list->type != TG_CONF_SCALAR && list->type != TG_CONF_SEQ &&
        list->type != TG_CONF_NULL) {
        tg_conf_error(err, list, "include: expected a path or a list of paths");
        if (recover(err) < 0)
            return -1;
        list = NULL;
    }
    size_t n = list == NULL || list->type == TG_CONF_NULL ? 0
               : list->type == TG_CONF_SEQ                ? list->count
                                                          : 1;
    for (size_t i = 0; i < n; i++) {
        if (one_pattern(&m, dir, list->type == TG_CONF_SEQ ? list->items[i] : list) < 0 &&
            recover(err) < 0)
            return -1;
    }
    *merged = merged_root(&m, root);
    return m.failed ? -1 : 0;
}

void tg_conf_include_free(tg_conf_include_t *inc)
{
    if (inc == NULL)
        return;
    for (size_t i = 0; i < inc->ndocs; i++) {
        tg_conf_doc_free(inc->docs[i]);
        free(inc->real[i]);
    }
    free(inc->docs);
    free(inc->real);
    free(inc->main_real);
    tg_arena_destroy(inc->arena);
    free(inc);
}
