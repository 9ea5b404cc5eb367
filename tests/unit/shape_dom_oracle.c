/*
 * Test oracle for the response-shape engine: the original jansson DOM
 * implementation of the rules in plugins/response-shape/shape.h (parse the
 * whole body, edit the tree, serialize it). Not built into the plugin: the
 * unit test and the fuzz target #include this file and compare the
 * streaming engine (shape.c) with it, so every function here is static and
 * named dom_shape_* / dom_*.
 *
 * Differences from shape.c that are by design: this re-encodes strings and
 * numbers (the streaming engine copies their source text) and collapses
 * duplicate keys to the last value (the streaming engine keeps them as they
 * come). Compare outputs parsed with jansson (json_equal), on inputs without
 * duplicate keys: dom_check() below does it.
 *
 * Numbers: RFC 8259 sets no range and the engine shapes any number; jansson
 * holds int64 and double only. No shaping decision depends on a number's
 * value (a number is a non-null scalar like a string), so the oracle shapes
 * a copy of the body with every number written 0, and the engine's output is
 * compared in the same form (dom_zero_numbers); numbers jansson can hold are
 * compared by value as well.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/response-shape/shape.h"

typedef struct dom_shape_s dom_shape_t;

typedef struct dom_node_s dom_node_t;

struct dom_node_s {
    dom_node_t *parent;
    char *key;         /* key segment (NUL-terminated); NULL for the root and each nodes */
    size_t key_len;    /* length of key */
    dom_node_t **kids; /* key children */
    size_t nkids;      /* number of kids */
    dom_node_t *each;  /* rules for every element when the value is an array */
    char *rename;      /* new name of this key, or NULL */
    bool include;      /* include leaf: keep this key and all below it */
    bool exclude;      /* remove this key */
    bool incl_below;   /* an include leaf lies strictly below */
    bool incl_keys;    /* a key child is an include leaf or lies above one */
    bool edit_below;   /* an exclude or a rename lies strictly below */
    bool rename_kid;   /* one of kids has a rename */
};

struct dom_shape_s {
    dom_node_t root;
    size_t nrules;
};

/* ---- building ---- */

static dom_shape_t *dom_shape_new(void)
{
    return calloc(1, sizeof(dom_shape_t));
}

static void dom_node_free(dom_node_t *n)
{
    for (size_t i = 0; i < n->nkids; i++) {
        dom_node_free(n->kids[i]);
        free(n->kids[i]);
    }
    if (n->each != NULL) {
        dom_node_free(n->each);
        free(n->each);
    }
    free(n->kids);
    free(n->key);
    free(n->rename);
}

/* unused in the fuzz target, whose profiles live as long as the process */
__attribute__((unused)) static void dom_shape_free(dom_shape_t *s)
{
    if (s == NULL)
        return;
    dom_node_free(&s->root);
    free(s);
}

static dom_node_t *dom_find_kid(const dom_node_t *n, const char *key, size_t len)
{
    for (size_t i = 0; i < n->nkids; i++)
        if (n->kids[i]->key_len == len && memcmp(n->kids[i]->key, key, len) == 0)
            return n->kids[i];
    return NULL;
}

static dom_node_t *dom_key_kid(dom_node_t *n, const char *key, size_t len)
{
    dom_node_t *k = dom_find_kid(n, key, len);
    if (k != NULL)
        return k;
    dom_node_t **kids = realloc(n->kids, (n->nkids + 1) * sizeof(*kids));
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

static dom_node_t *dom_each_kid(dom_node_t *n)
{
    if (n->each == NULL && (n->each = calloc(1, sizeof(dom_node_t))) != NULL)
        n->each->parent = n;
    return n->each;
}

/* Reads one key segment of path at *p into buf (unescaped); returns its
 * length, 0 when empty, -1 on a bad escape. */
static long dom_read_key(const char **p, char *buf)
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
static dom_node_t *dom_path_node(dom_shape_t *s, const char *path, char *buf, const char **why)
{
    dom_node_t *n = &s->root;
    const char *p = path;
    for (;;) {
        long kl = dom_read_key(&p, buf);
        if (kl <= 0) {
            *why = kl < 0 ? "bad escape (only \\. \\[ \\] and \\\\)" : "empty key";
            return NULL;
        }
        if ((n = dom_key_kid(n, buf, (size_t)kl)) == NULL)
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
            if ((n = dom_each_kid(n)) == NULL)
                return NULL;
    }
}

static int dom_shape_add(dom_shape_t *s, tg_shape_rule_t rule, const char *path,
                         const char *new_name, char *err, size_t errlen)
{
    const char *why = "out of memory";
    if (rule == TG_SHAPE_RENAME && (new_name == NULL || new_name[0] == '\0')) {
        snprintf(err, errlen, "empty new name for '%s'", path);
        return -1;
    }
    char *buf = malloc(strlen(path) + 1);
    dom_node_t *n = buf != NULL ? dom_path_node(s, path, buf, &why) : NULL;
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
    for (dom_node_t *c = n; c->parent != NULL; c = c->parent) {
        bool incl = rule == TG_SHAPE_INCLUDE;
        c->parent->incl_below |= incl;
        c->parent->incl_keys |= incl && c->key != NULL;
        c->parent->edit_below |= !incl;
    }
    s->nrules++;
    return 0;
}

/* ---- applying ---- */

static bool dom_walk_value(const dom_node_t *n, json_t *v, bool filtering);

/* Elements go through n; with filtering, those dom_walk_value rejects are
 * dropped. The array is rebuilt once rather than json_array_remove()d
 * element by element, which would be quadratic. */
static void dom_walk_array(const dom_node_t *n, json_t *arr, bool filtering)
{
    json_t *kept = NULL;
    size_t len = json_array_size(arr);
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_array_get(arr, i);
        bool keep = dom_walk_value(n, e, filtering);
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
static void dom_filter_keys(const dom_node_t *n, json_t *obj)
{
    void *it = json_object_iter(obj);
    while (it != NULL) {
        const char *key = json_object_iter_key(it);
        size_t kl = json_object_iter_key_len(it);
        json_t *v = json_object_iter_value(it);
        void *next = json_object_iter_next(obj, it);
        const dom_node_t *k = dom_find_kid(n, key, kl);
        bool drop = k == NULL || k->exclude || (!k->include && !k->incl_below);
        if (!drop && (!k->include || k->edit_below))
            drop = !dom_walk_value(k, v, !k->include);
        if (drop)
            json_object_deln(obj, key, kl);
        it = next;
    }
}

/* Not filtering: only the keys the rules name are looked up. */
static void dom_edit_keys(const dom_node_t *n, json_t *obj)
{
    for (size_t i = 0; i < n->nkids; i++) {
        const dom_node_t *k = n->kids[i];
        json_t *v = json_object_getn(obj, k->key, k->key_len);
        if (v == NULL)
            continue;
        if (k->exclude)
            json_object_deln(obj, k->key, k->key_len);
        else if (k->edit_below)
            dom_walk_value(k, v, false);
    }
}

/* Renames keep the key's position, which jansson cannot do in place: the
 * object is rebuilt, only when one of the renamed keys is present. */
static void dom_rename_keys(const dom_node_t *n, json_t *obj)
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
        const dom_node_t *k = dom_find_kid(n, key, kl);
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
static bool dom_walk_value(const dom_node_t *n, json_t *v, bool filtering)
{
    if (json_is_object(v) && (filtering ? n->incl_keys : n->nkids > 0)) {
        if (filtering)
            dom_filter_keys(n, v);
        else
            dom_edit_keys(n, v);
        if (n->rename_kid)
            dom_rename_keys(n, v);
        return true;
    }
    if (json_is_array(v) && n->each != NULL && (!filtering || n->each->incl_below)) {
        dom_walk_array(n->each, v, filtering);
        return true;
    }
    return !filtering || json_is_null(v);
}

static void dom_shape_apply(const dom_shape_t *s, json_t *root)
{
    bool filtering = s->root.incl_below;
    if (json_is_array(root))
        dom_walk_array(&s->root, root, filtering);
    else if (json_is_object(root))
        dom_walk_value(&s->root, root, filtering);
}

/* ---- serializing ---- */

typedef struct {
    tg_shape_write_fn write;
    void *data;
    int err;
    size_t n;
    char buf[8192];
} dom_out_t;

static void dom_flush(dom_out_t *o)
{
    if (o->n > 0 && o->err == 0 && o->write(o->buf, o->n, o->data) < 0)
        o->err = -1;
    o->n = 0;
}

static void dom_put(dom_out_t *o, const char *s, size_t len)
{
    if (len > sizeof(o->buf) - o->n)
        dom_flush(o);
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
static void dom_put_string(dom_out_t *o, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    dom_put(o, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        dom_put(o, s + run, i - run);
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
        dom_put(o, e, el);
    }
    dom_put(o, s + run, len - run);
    dom_put(o, "\"", 1);
}

/* Shortest of %.15g..%.17g that reads back as the same double (17 digits
 * always do), with ".0" added when it would otherwise read as an integer. */
static void dom_put_real(dom_out_t *o, double d)
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
    dom_put(o, b, (size_t)n);
}

static void dom_dump_value(dom_out_t *o, const json_t *v)
{
    char b[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        size_t kl;
        json_t *x;
        bool first = true;
        dom_put(o, "{", 1);
        json_object_keylen_foreach((json_t *)v, key, kl, x) {
            if (!first)
                dom_put(o, ",", 1);
            first = false;
            dom_put_string(o, key, kl);
            dom_put(o, ":", 1);
            dom_dump_value(o, x);
        }
        dom_put(o, "}", 1);
        break;
    }
    case JSON_ARRAY:
        dom_put(o, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                dom_put(o, ",", 1);
            dom_dump_value(o, json_array_get(v, i));
        }
        dom_put(o, "]", 1);
        break;
    case JSON_STRING:
        dom_put_string(o, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        dom_put(o, b,
                (size_t)snprintf(b, sizeof(b), "%" JSON_INTEGER_FORMAT, json_integer_value(v)));
        break;
    case JSON_REAL:
        dom_put_real(o, json_real_value(v));
        break;
    case JSON_TRUE:
        dom_put(o, "true", 4);
        break;
    case JSON_FALSE:
        dom_put(o, "false", 5);
        break;
    case JSON_NULL:
        dom_put(o, "null", 4);
        break;
    }
}

static int dom_shape_dump(const json_t *v, tg_shape_write_fn write, void *data)
{
    dom_out_t *o = malloc(sizeof(*o));
    if (o == NULL)
        return -1;
    o->write = write;
    o->data = data;
    o->err = 0;
    o->n = 0;
    dom_dump_value(o, v);
    dom_flush(o);
    int rc = o->err;
    free(o);
    return rc;
}

static tg_shape_result_t dom_shape_body(const dom_shape_t *s, const char *body, size_t len,
                                        tg_shape_write_fn write, void *data)
{
    json_error_t e;
    /* JSON_ALLOW_NUL: "\u0000" in strings is valid JSON (kept via lengths). */
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (root == NULL)
        return TG_SHAPE_INVALID;
    tg_shape_result_t res = TG_SHAPE_SCALAR;
    if (json_is_object(root) || json_is_array(root)) {
        dom_shape_apply(s, root);
        res = dom_shape_dump(root, write, data) == 0 ? TG_SHAPE_SHAPED : TG_SHAPE_WRITE_ERROR;
    }
    json_decref(root);
    return res;
}

/* ---- the differential check ---- */

typedef struct {
    char *buf;
    size_t len;
} dom_sink_t;

static int dom_collect(const char *p, size_t n, void *data)
{
    dom_sink_t *o = data;
    char *b = realloc(o->buf, o->len + n + 1);
    if (b == NULL)
        return -1;
    memcpy(b + o->len, p, n);
    o->buf = b;
    o->len += n;
    b[o->len] = '\0';
    return 0;
}

/* Whether p[0..n) is exactly an RFC 8259 number (section 6). */
static bool dom_is_number(const char *p, size_t n)
{
    size_t i = p[0] == '-';
    if (i < n && p[i] == '0')
        i++;
    else if (i < n && p[i] >= '1' && p[i] <= '9')
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    else
        return false;
    if (i < n && p[i] == '.') {
        size_t s = ++i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == s)
            return false;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        size_t s = i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == s)
            return false;
    }
    return i == n;
}

/* in with every number outside strings written 0 (malloc'd, length in
 * *out_len). A run of number characters is replaced only when it is one whole
 * number: nothing but whitespace, ',', ']' or '}' may follow a number in JSON,
 * none of them a number character, so an invalid body stays invalid and a
 * valid one valid. */
static char *dom_zero_numbers(const char *in, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1), *o = out;
    bool str = false;
    for (size_t i = 0; i < len;) {
        char c = in[i];
        if (str || c == '"') {
            str = c == '"' ? !str : str;
            if (c == '\\' && i + 1 < len)
                *o++ = in[i++];
            *o++ = in[i++];
            continue;
        }
        if (c != '-' && (c < '0' || c > '9')) {
            *o++ = in[i++];
            continue;
        }
        size_t j = i;
        while (j < len && strchr("0123456789+-.eE", in[j]) != NULL && in[j] != '\0')
            j++;
        if (dom_is_number(in + i, j - i)) {
            *o++ = '0';
        } else {
            memcpy(o, in + i, j - i);
            o += j - i;
        }
        i = j;
    }
    *out_len = (size_t)(o - out);
    return out;
}

static json_t *dom_load(const char *p, size_t n, size_t flags)
{
    json_error_t e;
    return json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL | flags, &e);
}

/* Whether out and the oracle's output for body are the same document (both
 * loadable by jansson). */
static bool dom_same_document(const dom_shape_t *d, const char *body, size_t len, const char *out,
                              size_t out_len)
{
    dom_sink_t want = {NULL, 0};
    bool same = false;
    if (dom_shape_body(d, body, len, dom_collect, &want) == TG_SHAPE_SHAPED) {
        json_t *a = dom_load(out, out_len, 0), *b = dom_load(want.buf, want.len, 0);
        same = a != NULL && b != NULL && json_equal(a, b);
        json_decref(a);
        json_decref(b);
    }
    free(want.buf);
    return same;
}

/* The engine's result r and output out for body agree with the oracle d:
 * NULL, or what differs. Bodies with a repeated key are compared by result
 * only (the oracle keeps the last value, the engine all of them). */
__attribute__((unused)) static const char *dom_check(const dom_shape_t *d, const char *body,
                                                     size_t len, tg_shape_result_t r,
                                                     const char *out, size_t out_len)
{
    if (memchr(body, '\0', len) != NULL) /* jansson 2.14 skips a NUL after a number */
        return r == TG_SHAPE_INVALID ? NULL : "a body with a NUL byte is not invalid";
    size_t zl, zol;
    char *z = dom_zero_numbers(body, len, &zl), *zo = NULL;
    dom_sink_t want = {NULL, 0};
    const char *why = NULL;
    if (r != dom_shape_body(d, z, zl, dom_collect, &want))
        why = "result differs from the oracle's";
    json_t *unique = r == TG_SHAPE_SHAPED ? dom_load(z, zl, JSON_REJECT_DUPLICATES) : NULL;
    json_t *held = unique != NULL ? dom_load(body, len, 0) : NULL; /* numbers jansson holds */
    if (why == NULL && unique != NULL) {
        zo = dom_zero_numbers(out, out_len, &zol);
        if (!dom_same_document(d, z, zl, zo, zol))
            why = "document differs from the oracle's";
        else if (held != NULL && !dom_same_document(d, body, len, out, out_len))
            why = "numbers differ from the oracle's";
    }
    json_decref(unique);
    json_decref(held);
    free(want.buf);
    free(z);
    free(zo);
    return why;
}
