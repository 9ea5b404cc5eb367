/*
 * response-shape plugin: the JSON shaping engine (see shape.h for the rules).
 *
 * The rules of a profile become a tree: one node per key segment, plus an
 * "each" node for a "[]" (the elements of an array). Nodes carry what the
 * walk needs to decide without looking further down: whether an include
 * leaf or an edit (exclude, rename) lies below, so subtrees the profile does
 * not touch are never visited.
 */
#include "shape.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct node_s node_t;

struct node_s {
    node_t *parent;
    char *key;       /* key segment (NUL-terminated); NULL for the root and each nodes */
    size_t key_len;  /* length of key */
    node_t **kids;   /* key children */
    size_t nkids;    /* number of kids */
    node_t *each;    /* rules for every element when the value is an array */
    char *rename;    /* new name of this key, or NULL */
    bool include;    /* include leaf: keep this key and all below it */
    bool exclude;    /* remove this key */
    bool incl_below; /* an include leaf lies strictly below */
    bool incl_keys;  /* a key child is an include leaf or lies above one */
    bool edit_below; /* an exclude or a rename lies strictly below */
    bool rename_kid; /* one of kids has a rename */
};

struct tg_shape_s {
    node_t root;
    size_t nrules;
};

/* ---- building ---- */

tg_shape_t *tg_shape_new(void)
{
    return calloc(1, sizeof(tg_shape_t));
}

static void node_free(node_t *n)
{
    for (size_t i = 0; i < n->nkids; i++) {
        node_free(n->kids[i]);
        free(n->kids[i]);
    }
    if (n->each != NULL) {
        node_free(n->each);
        free(n->each);
    }
    free(n->kids);
    free(n->key);
    free(n->rename);
}

void tg_shape_free(tg_shape_t *s)
{
    if (s == NULL)
        return;
    node_free(&s->root);
    free(s);
}

bool tg_shape_is_empty(const tg_shape_t *s)
{
    return s->nrules == 0;
}

static node_t *find_kid(const node_t *n, const char *key, size_t len)
{
    for (size_t i = 0; i < n->nkids; i++)
        if (n->kids[i]->key_len == len && memcmp(n->kids[i]->key, key, len) == 0)
            return n->kids[i];
    return NULL;
}

static node_t *key_kid(node_t *n, const char *key, size_t len)
{
    node_t *k = find_kid(n, key, len);
    if (k != NULL)
        return k;
    node_t **kids = realloc(n->kids, (n->nkids + 1) * sizeof(*kids));
    if (kids == NULL)
        return NULL;
    n->kids = kids;
    k = calloc(1, sizeof(*k));
    if (k == NULL || (k->key = strndup(key, len)) == NULL) {
        free(k);
        return NULL;
    }
    k->key_len = len;
    k->parent = n;
    n->kids[n->nkids++] = k;
    return k;
}

static node_t *each_kid(node_t *n)
{
    if (n->each == NULL && (n->each = calloc(1, sizeof(node_t))) != NULL)
        n->each->parent = n;
    return n->each;
}

/* Reads one key segment of path at *p into buf (unescaped); returns its
 * length, 0 when empty, -1 on a bad escape. */
static long read_key(const char **p, char *buf)
{
    const char *s = *p;
    long n = 0;
    while (*s != '\0' && *s != '.' && *s != '[') {
        if (*s == '\\') {
            s++;
            if (*s != '.' && *s != '[' && *s != ']' && *s != '\\')
                return -1;
        }
        buf[n++] = *s++;
    }
    *p = s;
    return n;
}

/* Walks path from the root, creating nodes; returns the last key node. */
static node_t *path_node(tg_shape_t *s, const char *path, char *buf, const char **why)
{
    node_t *n = &s->root;
    const char *p = path;
    for (;;) {
        long kl = read_key(&p, buf);
        if (kl <= 0) {
            *why = kl < 0 ? "bad escape (only \\. \\[ \\] and \\\\)" : "empty key";
            return NULL;
        }
        if ((n = key_kid(n, buf, (size_t)kl)) == NULL)
            return NULL;
        size_t arrays = 0;
        for (; *p == '['; p += 2, arrays++)
            if (p[1] != ']') {
                *why = "'[' must be followed by ']'";
                return NULL;
            }
        if (*p == '\0')
            return n; /* a trailing "[]" names the key itself */
        if (*p != '.') {
            *why = "expected '.' after \"[]\"";
            return NULL;
        }
        p++;
        while (arrays-- > 0)
            if ((n = each_kid(n)) == NULL)
                return NULL;
    }
}

int tg_shape_add(tg_shape_t *s, tg_shape_rule_t rule, const char *path, const char *new_name,
                 char *err, size_t errlen)
{
    const char *why = "out of memory";
    if (rule == TG_SHAPE_RENAME && (new_name == NULL || new_name[0] == '\0')) {
        snprintf(err, errlen, "empty new name for '%s'", path);
        return -1;
    }
    char *buf = malloc(strlen(path) + 1);
    node_t *n = buf != NULL ? path_node(s, path, buf, &why) : NULL;
    free(buf);
    if (n == NULL) {
        snprintf(err, errlen, "bad path '%s': %s", path, why);
        return -1;
    }
    if (rule == TG_SHAPE_RENAME) {
        if (n->rename != NULL && strcmp(n->rename, new_name) != 0) {
            snprintf(err, errlen, "'%s' renamed twice", path);
            return -1;
        }
        if (n->rename == NULL && (n->rename = strdup(new_name)) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        n->parent->rename_kid = true;
    }
    n->include |= rule == TG_SHAPE_INCLUDE;
    n->exclude |= rule == TG_SHAPE_EXCLUDE;
    for (node_t *c = n; c->parent != NULL; c = c->parent) {
        bool incl = rule == TG_SHAPE_INCLUDE;
        c->parent->incl_below |= incl;
        c->parent->incl_keys |= incl && c->key != NULL;
        c->parent->edit_below |= !incl;
    }
    s->nrules++;
    return 0;
}

/* ---- applying ---- */

static bool walk_value(const node_t *n, json_t *v, bool filtering);

/* Elements go through n; with filtering, those walk_value rejects are
 * dropped. The array is rebuilt once rather than json_array_remove()d
 * element by element, which would be quadratic. */
static void walk_array(const node_t *n, json_t *arr, bool filtering)
{
    json_t *kept = NULL;
    size_t len = json_array_size(arr);
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_array_get(arr, i);
        bool keep = walk_value(n, e, filtering);
        if (!keep && kept == NULL) {
            kept = json_array();
            for (size_t j = 0; j < i; j++)
                json_array_append(kept, json_array_get(arr, j));
        } else if (keep && kept != NULL) {
            json_array_append(kept, e);
        }
    }
    if (kept != NULL) {
        json_array_clear(arr);
        json_array_extend(arr, kept);
        json_decref(kept);
    }
}

/* Filtering (under an include): every key is visited, unlisted ones go. */
static void filter_keys(const node_t *n, json_t *obj)
{
    void *it = json_object_iter(obj);
    while (it != NULL) {
        const char *key = json_object_iter_key(it);
        size_t kl = json_object_iter_key_len(it);
        json_t *v = json_object_iter_value(it);
        void *next = json_object_iter_next(obj, it);
        const node_t *k = find_kid(n, key, kl);
        bool drop = k == NULL || k->exclude || (!k->include && !k->incl_below);
        if (!drop && (!k->include || k->edit_below))
            drop = !walk_value(k, v, !k->include);
        if (drop)
            json_object_deln(obj, key, kl);
        it = next;
    }
}

/* Not filtering: only the keys the rules name are looked up. */
static void edit_keys(const node_t *n, json_t *obj)
{
    for (size_t i = 0; i < n->nkids; i++) {
        const node_t *k = n->kids[i];
        json_t *v = json_object_getn(obj, k->key, k->key_len);
        if (v == NULL)
            continue;
        if (k->exclude)
            json_object_deln(obj, k->key, k->key_len);
        else if (k->edit_below)
            walk_value(k, v, false);
    }
}

/* Renames keep the key's position, which jansson cannot do in place: the
 * object is rebuilt, only when one of the renamed keys is present. */
static void rename_keys(const node_t *n, json_t *obj)
{
    bool any = false;
    for (size_t i = 0; i < n->nkids && !any; i++)
        any = n->kids[i]->rename != NULL &&
              json_object_getn(obj, n->kids[i]->key, n->kids[i]->key_len) != NULL;
    if (!any)
        return;
    json_t *copy = json_object();
    const char *key;
    size_t kl;
    json_t *v;
    json_object_keylen_foreach(obj, key, kl, v) {
        const node_t *k = find_kid(n, key, kl);
        if (k != NULL && k->rename != NULL)
            json_object_set(copy, k->rename, v); /* replaces in place: the rename wins */
        else if (json_object_getn(copy, key, kl) == NULL)
            json_object_setn(copy, key, kl, v);
    }
    json_object_clear(obj);
    json_object_update(obj, copy);
    json_decref(copy);
}

/* Applies n to v; returns false when v must be removed from its parent
 * (filtering, and v is not a container an include path goes through, nor
 * null). */
static bool walk_value(const node_t *n, json_t *v, bool filtering)
{
    if (json_is_object(v) && (filtering ? n->incl_keys : n->nkids > 0)) {
        if (filtering)
            filter_keys(n, v);
        else
            edit_keys(n, v);
        if (n->rename_kid)
            rename_keys(n, v);
        return true;
    }
    if (json_is_array(v) && n->each != NULL && (!filtering || n->each->incl_below)) {
        walk_array(n->each, v, filtering);
        return true;
    }
    return !filtering || json_is_null(v);
}

void tg_shape_apply(const tg_shape_t *s, json_t *root)
{
    bool filtering = s->root.incl_below;
    if (json_is_array(root))
        walk_array(&s->root, root, filtering);
    else if (json_is_object(root))
        walk_value(&s->root, root, filtering);
}

/* ---- serializing ---- */

typedef struct {
    tg_shape_write_fn write;
    void *data;
    int err;
    size_t n;
    char buf[8192];
} out_t;

static void flush(out_t *o)
{
    if (o->n > 0 && o->err == 0 && o->write(o->buf, o->n, o->data) < 0)
        o->err = -1;
    o->n = 0;
}

static void put(out_t *o, const char *s, size_t len)
{
    if (len > sizeof(o->buf) - o->n)
        flush(o);
    if (len > sizeof(o->buf)) {
        if (o->err == 0 && o->write(s, len, o->data) < 0)
            o->err = -1;
        return;
    }
    memcpy(o->buf + o->n, s, len);
    o->n += len;
}

/* RFC 8259 section 7: '"', '\' and control characters must be escaped;
 * everything else (valid UTF-8, checked by jansson) goes out as is. */
static void put_string(out_t *o, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    put(o, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(o, s + run, i - run);
        run = i + 1;
        char e[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t el = 2;
        switch (c) {
        case '"':
        case '\\':
            break;
        case '\b':
            e[1] = 'b';
            break;
        case '\f':
            e[1] = 'f';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        default:
            memcpy(e + 1, "u00", 3);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            el = 6;
        }
        put(o, e, el);
    }
    put(o, s + run, len - run);
    put(o, "\"", 1);
}

/* Shortest of %.15g..%.17g that reads back as the same double (17 digits
 * always do), with ".0" added when it would otherwise read as an integer. */
static void put_real(out_t *o, double d)
{
    char b[40];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(b, sizeof(b) - 2, "%.*g", prec, d);
        if (strtod(b, NULL) == d)
            break;
    }
    if (strpbrk(b, ".eE") == NULL) {
        memcpy(b + n, ".0", 2);
        n += 2;
    }
    put(o, b, (size_t)n);
}

static void dump_value(out_t *o, const json_t *v)
{
    char b[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        size_t kl;
        json_t *x;
        bool first = true;
        put(o, "{", 1);
        json_object_keylen_foreach((json_t *)v, key, kl, x) {
            if (!first)
                put(o, ",", 1);
            first = false;
            put_string(o, key, kl);
            put(o, ":", 1);
            dump_value(o, x);
        }
        put(o, "}", 1);
        break;
    }
    case JSON_ARRAY:
        put(o, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                put(o, ",", 1);
            dump_value(o, json_array_get(v, i));
        }
        put(o, "]", 1);
        break;
    case JSON_STRING:
        put_string(o, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        put(o, b, (size_t)snprintf(b, sizeof(b), "%" JSON_INTEGER_FORMAT, json_integer_value(v)));
        break;
    case JSON_REAL:
        put_real(o, json_real_value(v));
        break;
    case JSON_TRUE:
        put(o, "true", 4);
        break;
    case JSON_FALSE:
        put(o, "false", 5);
        break;
    case JSON_NULL:
        put(o, "null", 4);
        break;
    }
}

int tg_shape_dump(const json_t *v, tg_shape_write_fn write, void *data)
{
    out_t *o = malloc(sizeof(*o));
    if (o == NULL)
        return -1;
    o->write = write;
    o->data = data;
    o->err = 0;
    o->n = 0;
    dump_value(o, v);
    flush(o);
    int rc = o->err;
    free(o);
    return rc;
}

tg_shape_result_t tg_shape_body(const tg_shape_t *s, const char *body, size_t len,
                                tg_shape_write_fn write, void *data)
{
    json_error_t e;
    /* JSON_ALLOW_NUL: "\u0000" in strings is valid JSON (kept via lengths). */
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (root == NULL)
        return TG_SHAPE_INVALID;
    tg_shape_result_t res = TG_SHAPE_SCALAR;
    if (json_is_object(root) || json_is_array(root)) {
        tg_shape_apply(s, root);
        res = tg_shape_dump(root, write, data) == 0 ? TG_SHAPE_SHAPED : TG_SHAPE_WRITE_ERROR;
    }
    json_decref(root);
    return res;
}
