/*
 * YAML -> tg_conf_node_t tree, and the typed readers of include/tollgate/conf.h.
 *
 * Built from libyaml's event stream rather than yaml_parser_load() because the
 * events let us refuse duplicate keys and a second document as soon as they
 * are seen, each at its own position, and resolve anchors, aliases and `<<`
 * merge keys our way: an alias is the anchored node itself (the tree is
 * immutable, so sharing is safe), and what aliases expand to is bounded
 * (MAX_EXPANDED) so that a "billion laughs" file cannot make a consumer that
 * walks the tree run for ever.
 */
#include "conf_node.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "arena.h"
#include "conf_errors.h"
#include "tollgate/units.h"

/* Far beyond any sane config; bounds what consumers may recurse over. */
#define MAX_DEPTH 64
#define MAX_ENV_NAME 255
/* Nodes a document may hold once every alias is expanded: a large config has
 * tens of thousands; a file of nested aliases could otherwise stand for 10^20. */
#define MAX_EXPANDED 1000000

struct tg_conf_doc_s {
    tg_arena_t *arena;
    const tg_conf_node_t *root;
};

/* A node and how many nodes it stands for with its aliases expanded. */
typedef struct {
    tg_conf_node_t n;
    size_t weight;
} wnode_t;

typedef struct {
    tg_conf_node_t *node; /* the map or sequence being filled */
    size_t cap;           /* allocated slots in node->keys / node->items */
    tg_conf_node_t *key;  /* maps: key read, its value not yet */
    const char *anchor;   /* &name written on it: defined once it is complete */
} frame_t;

typedef struct {
    const char *name;
    tg_conf_node_t *node;
} anchor_t;

typedef struct {
    tg_arena_t *arena;
    const char *file;
    tg_conf_err_t *err;
    frame_t stack[MAX_DEPTH];
    size_t depth;
    tg_conf_node_t *root;
    unsigned ndocs;
    anchor_t *anchors;
    size_t nanchors, anchors_cap;
} builder_t;

/* ---- errors ------------------------------------------------------------ */

int tg_conf_error(tg_conf_err_t *err, const tg_conf_node_t *node, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    size_t off = 0;
    if (node != NULL) {
        int n = snprintf(err->msg, sizeof(err->msg), "%s:%u:%u: ", node->file ? node->file : "?",
                         node->line, node->col);
        off = n < 0 ? 0 : (size_t)n >= sizeof(err->msg) ? sizeof(err->msg) - 1 : (size_t)n;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + off, sizeof(err->msg) - off, fmt, ap);
    va_end(ap);
    return -1;
}

static int expected(const tg_conf_node_t *n, tg_conf_err_t *err, const char *what)
{
    if (n != NULL && n->type == TG_CONF_SCALAR)
        return tg_conf_error(err, n, "expected %s, got '%s'", what, n->value);
    return tg_conf_error(err, n, "expected %s", what);
}

/* ---- tree building ----------------------------------------------------- */

static size_t weight_of(const tg_conf_node_t *n)
{
    return ((const wnode_t *)n)->weight;
}

static tg_conf_node_t *node_new(builder_t *b, tg_conf_type_t type, yaml_mark_t mark)
{
    wnode_t *w = tg_arena_calloc(b->arena, sizeof(*w));
    w->weight = 1;
    tg_conf_node_t *n = &w->n;
    n->type = type;
    n->file = b->file;
    n->line = (unsigned)mark.line + 1;
    n->col = (unsigned)mark.column + 1;
    return n;
}

static bool in_key_position(const builder_t *b)
{
    if (b->depth == 0)
        return false;
    const frame_t *f = &b->stack[b->depth - 1];
    return f->node->type == TG_CONF_MAP && f->key == NULL;
}

static void grow(builder_t *b, frame_t *f)
{
    tg_conf_node_t *c = f->node;
    size_t cap = f->cap ? f->cap * 2 : 8;
    size_t old = c->count * sizeof(tg_conf_node_t *);
    /* The old arrays stay in the arena: at most as much again as the final size. */
    tg_conf_node_t **items = tg_arena_alloc(b->arena, cap * sizeof(*items));
    if (old > 0)
        memcpy(items, c->items, old);
    c->items = items;
    if (c->type == TG_CONF_MAP) {
        tg_conf_node_t **keys = tg_arena_alloc(b->arena, cap * sizeof(*keys));
        if (old > 0)
            memcpy(keys, c->keys, old);
        c->keys = keys;
    }
    f->cap = cap;
}

static int add_key(builder_t *b, tg_conf_node_t *key)
{
    frame_t *f = &b->stack[b->depth - 1];
    for (size_t i = 0; i < f->node->count; i++) {
        const tg_conf_node_t *k = f->node->keys[i];
        if (k->len == key->len && memcmp(k->value, key->value, k->len) == 0)
            return tg_conf_error(b->err, key, "duplicate key '%s' (first defined at line %u)",
                                 key->value, k->line);
    }
    f->key = key;
    return 0;
}

static void add_value(builder_t *b, tg_conf_node_t *n)
{
    if (b->depth == 0) {
        b->root = n;
        return;
    }
    frame_t *f = &b->stack[b->depth - 1];
    tg_conf_node_t *c = f->node;
    if (c->count == f->cap)
        grow(b, f);
    if (c->type == TG_CONF_MAP) {
        c->keys[c->count] = f->key;
        f->key = NULL;
    }
    c->items[c->count++] = n;
}

/* ---- ${ENV} substitution ------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
} sbuf_t;

static void sbuf_add(sbuf_t *s, const char *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap * 2 > s->len + n + 1 ? s->cap * 2 : s->len + n + 64;
        char *np = realloc(s->p, cap);
        if (np == NULL)
            abort(); /* same policy as the arena: out of memory is fatal */
        s->p = np;
        s->cap = cap;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

/* Length of the [A-Za-z_][A-Za-z0-9_]* name at s (0 when s does not start one). */
static size_t env_name_len(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && (s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') ||
                       (s[i] >= 'a' && s[i] <= 'z') || (i > 0 && s[i] >= '0' && s[i] <= '9')))
        i++;
    return i;
}

/* Expands the "${...}" starting at s[*pos] into out and moves *pos past it. */
static int expand_ref(builder_t *b, const tg_conf_node_t *n, const char *s, size_t len, size_t *pos,
                      sbuf_t *out)
{
    size_t start = *pos + 2;
    const char *close = memchr(s + start, '}', len - start);
    if (close == NULL)
        return tg_conf_error(b->err, n, "unterminated '${' in value");
    size_t end = (size_t)(close - s);
    size_t nlen = env_name_len(s + start, end - start);
    const char *rest = s + start + nlen;
    size_t rlen = end - start - nlen;
    if (nlen == 0 || nlen > MAX_ENV_NAME || (rlen > 0 && (rlen < 2 || memcmp(rest, ":-", 2) != 0)))
        return tg_conf_error(b->err, n, "invalid environment variable reference '%.*s'",
                             (int)(end + 1 - *pos), s + *pos);
    char name[MAX_ENV_NAME + 1];
    memcpy(name, s + start, nlen);
    name[nlen] = '\0';
    const char *v = getenv(name);
    if (rlen > 0 && (v == NULL || *v == '\0'))
        sbuf_add(out, rest + 2, rlen - 2);
    else if (v == NULL)
        return tg_conf_error(b->err, n, "environment variable %s is not set", name);
    else
        sbuf_add(out, v, strlen(v));
    *pos = end + 1;
    return 0;
}

static int subst_env(builder_t *b, tg_conf_node_t *n, const char *s, size_t len)
{
    sbuf_t out = {0};
    size_t i = 0;
    int rc = 0;
    while (i < len && rc == 0) {
        const char *d = memchr(s + i, '$', len - i);
        size_t stop = d != NULL ? (size_t)(d - s) : len;
        sbuf_add(&out, s + i, stop - i);
        i = stop;
        if (i == len)
            break;
        if (i + 1 < len && s[i + 1] == '$') {
            sbuf_add(&out, "$", 1);
            i += 2;
        } else if (i + 1 < len && s[i + 1] == '{') {
            rc = expand_ref(b, n, s, len, &i, &out);
        } else {
            sbuf_add(&out, "$", 1);
            i++;
        }
    }
    if (rc == 0) {
        n->value = tg_arena_strndup(b->arena, out.p != NULL ? out.p : "", out.len);
        n->len = out.len;
    }
    free(out.p);
    return rc;
}

/* ---- events ------------------------------------------------------------ */

/* YAML 1.1/1.2 core schema spellings of null, for plain scalars only. */
static bool is_null(const char *s, size_t len)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strlen(nulls[i]) == len && memcmp(nulls[i], s, len) == 0)
            return true;
    return false;
}

/* ---- anchors, aliases, merge keys -------------------------------------- */

static void define_anchor(builder_t *b, const char *name, tg_conf_node_t *n)
{
    if (b->nanchors == b->anchors_cap) {
        size_t cap = b->anchors_cap ? b->anchors_cap * 2 : 16;
        anchor_t *a = tg_arena_alloc(b->arena, cap * sizeof(*a));
        if (b->nanchors > 0)
            memcpy(a, b->anchors, b->nanchors * sizeof(*a));
        b->anchors = a;
        b->anchors_cap = cap;
    }
    b->anchors[b->nanchors++] = (anchor_t){.name = name, .node = n};
}

/* The latest definition wins (YAML lets an anchor be defined again). An
 * anchor is defined once its node is complete, so an alias inside the node
 * it names is unknown: the tree never has a cycle. */
static tg_conf_node_t *find_anchor(const builder_t *b, const char *name)
{
    for (size_t i = b->nanchors; i-- > 0;)
        if (strcmp(b->anchors[i].name, name) == 0)
            return b->anchors[i].node;
    return NULL;
}

static const char *anchor_name(builder_t *b, const yaml_char_t *a)
{
    return a == NULL ? NULL : tg_arena_strndup(b->arena, (const char *)a, strlen((const char *)a));
}

static int on_alias(builder_t *b, const yaml_event_t *ev)
{
    tg_conf_node_t at = {.file = b->file,
                         .line = (unsigned)ev->start_mark.line + 1,
                         .col = (unsigned)ev->start_mark.column + 1};
    const char *name = (const char *)ev->data.alias.anchor;
    tg_conf_node_t *n = find_anchor(b, name);
    if (n == NULL)
        return tg_conf_error(b->err, &at, "unknown anchor '%s' (an alias must follow its &%s)",
                             name, name);
    if (in_key_position(b))
        return tg_conf_error(b->err, &at, "an alias cannot be a map key");
    add_value(b, n);
    return 0;
}

static bool is_merge_key(const tg_conf_node_t *k)
{
    return !k->quoted && k->len == 2 && memcmp(k->value, "<<", 2) == 0;
}

static bool has_key(const tg_conf_node_t **keys, size_t n, const tg_conf_node_t *k)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i]->len == k->len && memcmp(keys[i]->value, k->value, k->len) == 0)
            return true;
    return false;
}

/* The maps a `<<` value names: one map, or a list of maps (earlier ones win). */
static int merge_sources(builder_t *b, const tg_conf_node_t *v, const tg_conf_node_t ***out,
                         size_t *n)
{
    if (v->type == TG_CONF_MAP) {
        *out = tg_arena_alloc(b->arena, sizeof(**out));
        (*out)[0] = v;
        *n = 1;
        return 0;
    }
    if (v->type != TG_CONF_SEQ)
        return tg_conf_error(b->err, v, "a '<<' merge key takes a map or a list of maps");
    for (size_t i = 0; i < v->count; i++)
        if (v->items[i]->type != TG_CONF_MAP)
            return tg_conf_error(b->err, v->items[i], "a '<<' merge key takes a list of maps");
    *out = (const tg_conf_node_t **)v->items;
    *n = v->count;
    return 0;
}

/* YAML's merge key (yaml.org/type/merge.html): the keys of the merged maps
 * that the map does not set itself take the place of the `<<` entry. A
 * shallow merge: a merged nested map is taken whole, never combined. */
static int apply_merge(builder_t *b, tg_conf_node_t *map)
{
    size_t at = map->count;
    for (size_t i = 0; i < map->count && at == map->count; i++)
        if (is_merge_key(map->keys[i]))
            at = i;
    if (at == map->count)
        return 0;
    const tg_conf_node_t **src = NULL;
    size_t nsrc = 0, total = map->count;
    if (merge_sources(b, map->items[at], &src, &nsrc) < 0)
        return -1;
    for (size_t i = 0; i < nsrc; i++)
        total += src[i]->count;
    const tg_conf_node_t **keys = tg_arena_alloc(b->arena, total * sizeof(*keys));
    const tg_conf_node_t **items = tg_arena_alloc(b->arena, total * sizeof(*items));
    size_t n = 0;
    for (size_t i = 0; i < map->count; i++)
        if (i != at) { /* the map's own keys first, so that they win */
            keys[n] = map->keys[i];
            items[n++] = map->items[i];
        }
    size_t own = n;
    for (size_t s = 0; s < nsrc; s++)
        for (size_t i = 0; i < src[s]->count; i++)
            if (!has_key(keys, n, src[s]->keys[i])) {
                keys[n] = src[s]->keys[i];
                items[n++] = src[s]->items[i];
            }
    /* Written order: own keys before `<<`, the merged ones, own keys after. */
    tg_conf_node_t **k2 = tg_arena_alloc(b->arena, n * sizeof(*k2));
    tg_conf_node_t **i2 = tg_arena_alloc(b->arena, n * sizeof(*i2));
    size_t m = 0;
    for (size_t i = 0; i < at; i++, m++) {
        k2[m] = (tg_conf_node_t *)keys[i];
        i2[m] = (tg_conf_node_t *)items[i];
    }
    for (size_t i = own; i < n; i++, m++) {
        k2[m] = (tg_conf_node_t *)keys[i];
        i2[m] = (tg_conf_node_t *)items[i];
    }
    for (size_t i = at; i < own; i++, m++) {
        k2[m] = (tg_conf_node_t *)keys[i];
        i2[m] = (tg_conf_node_t *)items[i];
    }
    map->keys = k2;
    map->items = i2;
    map->count = n;
    return 0;
}

static int on_collection_end(builder_t *b)
{
    frame_t *f = &b->stack[b->depth - 1];
    tg_conf_node_t *c = f->node;
    if (c->type == TG_CONF_MAP && apply_merge(b, c) < 0)
        return -1;
    size_t w = 1;
    for (size_t i = 0; i < c->count; i++)
        w += weight_of(c->items[i]) + (c->type == TG_CONF_MAP);
    if (w > MAX_EXPANDED)
        return tg_conf_error(b->err, c, "aliases expand to more than %d nodes", MAX_EXPANDED);
    ((wnode_t *)c)->weight = w;
    if (f->anchor != NULL)
        define_anchor(b, f->anchor, c);
    b->depth--;
    add_value(b, c);
    return 0;
}

static int on_scalar(builder_t *b, const yaml_event_t *ev)
{
    const char *raw = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    tg_conf_node_t *n = node_new(b, TG_CONF_SCALAR, ev->start_mark);
    n->quoted = !plain;
    if (memchr(raw, '\0', len) != NULL)
        return tg_conf_error(b->err, n, "NUL character in value");
    if (in_key_position(b)) {
        n->value = tg_arena_strndup(b->arena, raw, len);
        n->len = len;
        return add_key(b, n);
    }
    if (plain && is_null(raw, len)) {
        n->type = TG_CONF_NULL;
        n->value = tg_arena_strndup(b->arena, raw, len);
        n->len = len;
    } else if (subst_env(b, n, raw, len) < 0) {
        return -1;
    }
    if (ev->data.scalar.anchor != NULL)
        define_anchor(b, anchor_name(b, ev->data.scalar.anchor), n);
    add_value(b, n);
    return 0;
}

static int on_collection_start(builder_t *b, const yaml_event_t *ev, tg_conf_type_t type)
{
    tg_conf_node_t *n = node_new(b, type, ev->start_mark);
    if (in_key_position(b))
        return tg_conf_error(b->err, n, "map keys must be scalars");
    if (b->depth == MAX_DEPTH)
        return tg_conf_error(b->err, n, "nesting deeper than %d levels", MAX_DEPTH);
    const yaml_char_t *anchor =
        type == TG_CONF_MAP ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    b->stack[b->depth++] = (frame_t){.node = n, .anchor = anchor_name(b, anchor)};
    return 0;
}

static int on_event(builder_t *b, const yaml_event_t *ev)
{
    tg_conf_node_t at = {.file = b->file,
                         .line = (unsigned)ev->start_mark.line + 1,
                         .col = (unsigned)ev->start_mark.column + 1};
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return on_alias(b, ev);
    case YAML_DOCUMENT_START_EVENT:
        if (b->ndocs++ > 0)
            return tg_conf_error(b->err, &at, "multiple documents are not supported");
        return 0;
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_collection_start(b, ev, TG_CONF_SEQ);
    case YAML_MAPPING_START_EVENT:
        return on_collection_start(b, ev, TG_CONF_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_collection_end(b);
    default:
        return 0;
    }
}

/* Reader errors (bad UTF-8) only give a byte offset: turn it into line:col. */
static void offset_to_pos(const char *buf, size_t len, size_t off, tg_conf_node_t *at)
{
    at->line = 1;
    at->col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (buf[i] == '\n') {
            at->line++;
            at->col = 1;
        } else {
            at->col++;
        }
    }
}

static int syntax_error(builder_t *b, const yaml_parser_t *p, const char *buf, size_t len)
{
    tg_conf_node_t at = {.file = b->file,
                         .line = (unsigned)p->problem_mark.line + 1,
                         .col = (unsigned)p->problem_mark.column + 1};
    if (p->error == YAML_READER_ERROR)
        offset_to_pos(buf, len, p->problem_offset, &at);
    const char *problem = p->problem != NULL ? p->problem : "invalid YAML";
    if (p->error == YAML_MEMORY_ERROR)
        problem = "out of memory";
    return tg_conf_error(b->err, &at, "%s", problem);
}

static int build(builder_t *b, yaml_parser_t *p, const char *buf, size_t len)
{
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(p, &ev))
            return syntax_error(b, p, buf, len);
        int rc = on_event(b, &ev);
        bool end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (rc < 0 || end)
            return rc;
    }
}

/* ---- documents --------------------------------------------------------- */

int tg_conf_doc_parse(const char *name, const char *buf, size_t len, tg_conf_doc_t **out,
                      tg_conf_err_t *err)
{
    *out = NULL;
    tg_conf_doc_t *doc = calloc(1, sizeof(*doc));
    if (doc == NULL)
        return tg_conf_error(err, NULL, "%s: out of memory", name);
    doc->arena = tg_arena_create(16384);
    builder_t b = {
        .arena = doc->arena, .file = tg_arena_strndup(doc->arena, name, strlen(name)), .err = err};
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        tg_conf_doc_free(doc);
        return tg_conf_error(err, NULL, "%s: out of memory", name);
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    int rc = build(&b, &p, buf, len);
    yaml_parser_delete(&p);
    if (rc < 0) {
        tg_conf_doc_free(doc);
        return -1;
    }
    if (b.root == NULL) /* empty stream: a null document at 1:1 */
        b.root = node_new(&b, TG_CONF_NULL, (yaml_mark_t){0});
    if (b.root->value == NULL)
        b.root->value = "";
    doc->root = b.root;
    *out = doc;
    return 0;
}

static int read_all(const char *path, char **out, size_t *outlen, tg_conf_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return tg_conf_error(err, NULL, "%s: cannot open: %s", path, strerror(errno));
    sbuf_t s = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        sbuf_add(&s, chunk, n);
    int failed = ferror(f);
    int saved = errno;
    fclose(f);
    if (failed) {
        free(s.p);
        return tg_conf_error(err, NULL, "%s: cannot read: %s", path, strerror(saved));
    }
    *out = s.p;
    *outlen = s.len;
    return 0;
}

int tg_conf_doc_load(const char *path, tg_conf_doc_t **out, tg_conf_err_t *err)
{
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    if (read_all(path, &buf, &len, err) < 0)
        return -1;
    int rc = tg_conf_doc_parse(path, buf != NULL ? buf : "", len, out, err);
    free(buf);
    return rc;
}

const tg_conf_node_t *tg_conf_doc_root(const tg_conf_doc_t *doc)
{
    return doc->root;
}

void tg_conf_doc_free(tg_conf_doc_t *doc)
{
    if (doc == NULL)
        return;
    tg_arena_destroy(doc->arena);
    free(doc);
}

/* ---- maps -------------------------------------------------------------- */

const tg_conf_node_t *tg_conf_map_get(const tg_conf_node_t *map, const char *key)
{
    if (map == NULL || map->type != TG_CONF_MAP)
        return NULL;
    size_t len = strlen(key);
    for (size_t i = 0; i < map->count; i++)
        if (map->keys[i]->len == len && memcmp(map->keys[i]->value, key, len) == 0)
            return map->items[i];
    return NULL;
}

static bool in_list(const char *const *list, const char *s)
{
    for (; *list != NULL; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

/* Edit distance of a and b counting a swap of two neighbours as one edit
 * (optimal string alignment), capped: anything above 3 is 4. Keys are short
 * and the lists small, so the quadratic rows are cheap. */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAX = 64 };
    size_t la = strlen(a), lb = strlen(b), rows[3][MAX];
    if (la >= MAX || lb >= MAX || (la > lb ? la - lb : lb - la) > 3)
        return 4;
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb] > 3 ? 4 : prev[lb];
}

/* The one allowed key closest to s when it is close enough to be a typo
 * (distance 1, or 2 for keys of 5 characters and more); NULL otherwise, and
 * when two are equally close. */
static const char *close_key(const char *const *allowed, const char *s)
{
    const char *best = NULL;
    size_t best_d = strlen(s) >= 5 ? 3 : 2;
    bool tie = false;
    for (; *allowed != NULL; allowed++) {
        size_t d = edit_distance(s, *allowed);
        if (d < best_d) {
            best = *allowed;
            best_d = d;
            tie = false;
        } else if (d == best_d && best != NULL) {
            tie = true;
        }
    }
    return tie ? NULL : best;
}

void tg_conf_suggest(const char *const *known, const char *s, char *buf, size_t cap)
{
    const char *close = close_key(known, s);
    if (cap == 0)
        return;
    buf[0] = '\0';
    if (close != NULL) {
        snprintf(buf, cap, "did you mean '%s'?", close);
        return;
    }
    size_t used = known[0] != NULL ? (size_t)snprintf(buf, cap, "known:") : 0;
    for (const char *const *a = known; *a != NULL && used < cap; a++)
        used += (size_t)snprintf(buf + used, cap - used, "%s %s", a == known ? "" : ",", *a);
}

static int unknown_key(const tg_conf_node_t *k, const char *const *allowed, const char *where,
                       tg_conf_err_t *err)
{
    char hint[400];
    tg_conf_suggest(allowed, k->value, hint, sizeof(hint));
    if (allowed[0] == NULL)
        snprintf(hint, sizeof(hint), "no keys are accepted here");
    return tg_conf_error(err, k, "unknown key '%s'%s%s (%s)", k->value, where ? " in " : "",
                         where ? where : "", hint);
}

/* Every unknown key is reported when a load collects its errors
 * (conf_errors.h); the result is the same: -1 when there was one. */
static _Thread_local tg_conf_keys_hook_fn keys_observer;
static _Thread_local void *keys_observer_arg;

void tg_conf_keys_observe(tg_conf_keys_hook_fn fn, void *arg)
{
    keys_observer = fn;
    keys_observer_arg = arg;
}

int tg_conf_check_keys_in(const tg_conf_node_t *map, const char *const *allowed, const char *where,
                          tg_conf_err_t *err)
{
    if (map == NULL || map->type != TG_CONF_MAP)
        return expected(map, err, "a map");
    if (keys_observer != NULL)
        keys_observer(map, allowed, keys_observer_arg);
    int rc = 0;
    for (size_t i = 0; i < map->count; i++) {
        const tg_conf_node_t *k = map->keys[i];
        if (in_list(allowed, k->value))
            continue;
        unknown_key(k, allowed, where, err);
        if (tg_conf_errors_recover(err) < 0)
            return -1;
        rc = -1;
    }
    return rc;
}

int tg_conf_check_keys(const tg_conf_node_t *map, const char *const *allowed, tg_conf_err_t *err)
{
    return tg_conf_check_keys_in(map, allowed, NULL, err);
}

/* ---- typed readers ----------------------------------------------------- */

static bool is_scalar(const tg_conf_node_t *n)
{
    return n != NULL && n->type == TG_CONF_SCALAR;
}

int tg_conf_get_string(const tg_conf_node_t *n, const char **out, tg_conf_err_t *err)
{
    if (!is_scalar(n))
        return expected(n, err, "a string");
    *out = n->value;
    return 0;
}

int tg_conf_get_bool(const tg_conf_node_t *n, bool *out, tg_conf_err_t *err)
{
    static const struct {
        const char *text;
        bool value;
    } words[] = {{"true", true}, {"false", false}, {"yes", true},
                 {"no", false},  {"on", true},     {"off", false}};
    for (size_t i = 0; is_scalar(n) && i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasecmp(n->value, words[i].text) == 0) {
            *out = words[i].value;
            return 0;
        }
    }
    return expected(n, err, "a boolean (true/false, yes/no, on/off)");
}

int tg_conf_get_uint(const tg_conf_node_t *n, uint64_t min, uint64_t max, uint64_t *out,
                     tg_conf_err_t *err)
{
    if (!is_scalar(n))
        return expected(n, err, "an integer");
    uint64_t v = 0;
    int rc = tg_uint_parse(n->value, n->len, &v);
    if (rc == TG_UNITS_SYNTAX)
        return expected(n, err, "an integer");
    if (rc < 0 || v < min || v > max)
        return tg_conf_error(err, n, "must be between %" PRIu64 " and %" PRIu64, min, max);
    *out = v;
    return 0;
}

int tg_conf_get_duration_ms(const tg_conf_node_t *n, uint64_t *out_ms, tg_conf_err_t *err)
{
    if (!is_scalar(n))
        return expected(n, err, "a duration like 10s");
    int rc = tg_duration_parse_ms(n->value, n->len, out_ms);
    if (rc == TG_UNITS_OVERFLOW)
        return tg_conf_error(err, n, "duration '%s' is too large", n->value);
    if (rc == TG_UNITS_PRECISION)
        return tg_conf_error(err, n, "duration '%s' is finer than a millisecond", n->value);
    if (rc < 0)
        return expected(n, err, "a duration like 10s");
    return 0;
}

int tg_conf_get_size(const tg_conf_node_t *n, uint64_t *out, tg_conf_err_t *err)
{
    if (!is_scalar(n))
        return expected(n, err, "a size like 16KiB");
    int rc = tg_size_parse(n->value, n->len, out);
    if (rc == TG_UNITS_OVERFLOW)
        return tg_conf_error(err, n, "size '%s' is too large", n->value);
    if (rc < 0)
        return expected(n, err, "a size like 16KiB");
    return 0;
}
