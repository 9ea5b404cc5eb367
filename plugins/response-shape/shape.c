/*
 * response-shape plugin: the JSON shaping engine (see shape.h for the rules).
 *
 * The rules of a profile become a tree: one node per key segment, plus an
 * "each" node for a "[]" (the elements of an array). Nodes carry what the
 * walk needs to decide without looking further down: whether an include
 * leaf or an edit (exclude, rename) lies below.
 *
 * Applying it is one pass over the body: a tokenizer that validates the JSON
 * (RFC 8259 and the rules in shape.h) and writes the output as it goes. Where the rules name a key, the walk follows the tree; everywhere
 * else a value is either copied (its source text, without whitespace) or
 * skipped, both by one iterative scanner. Whether a value is kept is decided
 * from its first byte (its type), so nothing is built and nothing is undone,
 * except a rename onto a key already written (see rename_over()).
 */
#include "shape.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"

/* jansson's JSON_PARSER_MAX_DEPTH: a value deeper than this (the root is at
 * depth 1) is invalid here too (a bound on the work, and the oracle agrees). */
#define MAX_DEPTH 2048
/* The output goes to the write callback in pieces of at most this size. */
#define WRITE_CHUNK 16384

typedef struct node_s node_t;

struct node_s {
    node_t *parent;
    char *key;              /* key segment (NUL-terminated); NULL for the root and each nodes */
    size_t key_len;         /* length of key */
    node_t **kids;          /* key children */
    size_t nkids;           /* number of kids */
    node_t *each;           /* rules for every element when the value is an array */
    char *rename;           /* new name of this key, or NULL */
    size_t rename_len;      /* length of rename */
    char *rename_json;      /* rename as a JSON string followed by ':' */
    size_t rename_json_len; /* length of rename_json */
    size_t slot;            /* with rename: index of the new name's collision slot */
    node_t **targets;       /* one renamed kid per distinct new name */
    uint64_t names;         /* key_bit() of every kid key and new name */
    size_t ntargets;        /* number of targets */
    bool include;           /* include leaf: keep this key and all below it */
    bool exclude;           /* remove this key */
    bool incl_below;        /* an include leaf lies strictly below */
    bool incl_keys;         /* a key child is an include leaf or lies above one */
    bool edit_below;        /* an exclude or a rename lies strictly below */
    bool rename_kid;        /* one of kids has a rename */
};

struct tg_shape_s {
    node_t root;
    size_t nrules;
    size_t nslots;   /* collision slots (distinct new names per object node) */
    size_t grow_num; /* output <= input * (1 + grow_num / grow_den) + grow_num */
    size_t grow_den;
};

/* ---- building ---- */

tg_shape_t *tg_shape_new(void)
{
    tg_shape_t *s = calloc(1, sizeof(tg_shape_t));
    if (s != NULL)
        s->grow_den = 1;
    return s;
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
    free(n->rename_json);
    free(n->targets);
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

/* A 64-bit filter of the names an object node knows: a key whose bit is not
 * in node->names is neither a kid nor a new name, without a comparison. */
static inline uint64_t key_bit(const char *key, size_t len)
{
    return (uint64_t)1 << ((len * 7 + (unsigned char)key[0]) & 63);
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
    n->names |= key_bit(key, len);
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

/* name as a JSON string (RFC 8259 section 7) followed by ':'. */
static char *json_key(const char *name, size_t *len)
{
    static const char hex[] = "0123456789abcdef";
    char *out = malloc(strlen(name) * 6 + 3), *o = out;
    if (out == NULL)
        return NULL;
    *o++ = '"';
    for (const unsigned char *c = (const unsigned char *)name; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\' || *c < 0x20) {
            *o++ = '\\';
            *o++ = *c < 0x20 ? 'u' : (char)*c;
        }
        if (*c < 0x20) {
            memcpy(o, "00", 2);
            o[2] = hex[*c >> 4];
            o[3] = hex[*c & 15];
            o += 4;
        } else if (*c != '"' && *c != '\\') {
            *o++ = (char)*c;
        }
    }
    *o++ = '"';
    *o++ = ':';
    *len = (size_t)(o - out);
    return out;
}

/* Records the new name of n: its JSON text, its collision slot (shared by
 * the kids renamed to the same name) and the output growth it can cause. */
static int set_rename(tg_shape_t *s, node_t *n, const char *new_name)
{
    node_t *p = n->parent;
    node_t **t = realloc(p->targets, (p->ntargets + 1) * sizeof(*t));
    if (t == NULL)
        return -1;
    p->targets = t;
    n->rename_len = strlen(new_name);
    p->names |= key_bit(new_name, n->rename_len);
    if ((n->rename = strdup(new_name)) == NULL ||
        (n->rename_json = json_key(new_name, &n->rename_json_len)) == NULL)
        return -1;
    size_t i = 0;
    while (i < p->ntargets && strcmp(p->targets[i]->rename, new_name) != 0)
        i++;
    if (i < p->ntargets) {
        n->slot = p->targets[i]->slot;
    } else {
        n->slot = s->nslots++;
        p->targets[p->ntargets++] = n;
    }
    /* Each occurrence of the key takes at least key_len + 4 input bytes
     * ("k":v) and its output grows by at most the difference of the names;
     * keep the largest growth per input byte. */
    size_t out = n->rename_json_len - 1, in = n->key_len + 2, den = n->key_len + 4;
    if (out > in && (out - in) * s->grow_den > s->grow_num * den) {
        s->grow_num = out - in;
        s->grow_den = den;
    }
    p->rename_kid = true;
    return 0;
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
        if (n->rename == NULL && set_rename(s, n, new_name) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
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

/* ---- tokenizing ---- */

/* Where a name written by a rename stands in the current object. */
typedef enum { SLOT_EMPTY, SLOT_ORIGINAL, SLOT_RENAMED } slot_state_t;

typedef struct {
    size_t vs, ve;      /* output offsets of the value written under the name */
    const node_t *by;   /* with SLOT_RENAMED: the kid renamed to it */
    slot_state_t state; /* what wrote the name in the current object, if anything */
} slot_t;

/* The output is input slices and a few literals (renamed keys, separators
 * where the input had whitespace). Slices that follow each other in the
 * input are merged before being copied, so a compact run of kept members
 * costs one memcpy. */
typedef struct {
    const char *p;     /* next input byte */
    const char *end;   /* end of input */
    const char *run_s; /* pending input slice [run_s, run_e), not yet in out */
    const char *run_e;
    char *out;     /* output buffer */
    size_t o;      /* bytes in out */
    size_t cap;    /* size of out (never reached: see tg_shape_body) */
    slot_t *slots; /* one per collision slot of the shape */
} ps_t;

static inline int peek(const ps_t *ps)
{
    return ps->p < ps->end ? (unsigned char)*ps->p : -1;
}

/* RFC 8259 section 2: insignificant whitespace. */
static inline bool is_ws(int c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static inline const char *ws_end(const char *p, const char *end)
{
    while (p < end && is_ws((unsigned char)*p))
        p++;
    return p;
}

static inline void skip_ws(ps_t *ps)
{
    ps->p = ws_end(ps->p, ps->end);
}

/* Copies the pending slice to the output. */
static inline int flush(ps_t *ps)
{
    size_t n = (size_t)(ps->run_e - ps->run_s);
    if (n > ps->cap - ps->o)
        return -1;
    memcpy(ps->out + ps->o, ps->run_s, n);
    ps->o += n;
    ps->run_s = ps->run_e;
    return 0;
}

/* Input bytes [s, e) go to the output. */
static inline int src(ps_t *ps, const char *s, const char *e)
{
    if (s != ps->run_e) {
        if (flush(ps) < 0)
            return -1;
        ps->run_s = s;
    }
    ps->run_e = e;
    return 0;
}

/* Bytes that are not in the input go to the output. */
static inline int lit(ps_t *ps, const char *s, size_t len)
{
    if (flush(ps) < 0 || len > ps->cap - ps->o)
        return -1;
    memcpy(ps->out + ps->o, s, len);
    ps->o += len;
    return 0;
}

/* The separator c (',' or ':'), from the input when it is at at. */
static inline int sep(ps_t *ps, const char *at, char c)
{
    return ps->run_e == at && *at == c ? src(ps, at, at + 1) : lit(ps, &c, 1);
}

/* One value at ps->p (at depth), validated, and when copy is set passed to
 * the output without its whitespace (slices between whitespace). Iterative,
 * with one bit per open container, so that subtrees the rules do not name
 * may nest as deep as jansson allows. One state machine, hence its length. */
static inline int scan_value(ps_t *ps, int depth, bool copy)
{
    uint64_t is_obj[MAX_DEPTH / 64 + 1];
    int top = 0;
    const char *p = ps->p, *end = ps->end, *run = p, *q;
    bool esc;
/* Skips whitespace; when copying, the slice before it goes out. */
#define WS()                                       \
    do {                                           \
        if (p < end && is_ws((unsigned char)*p)) { \
            if (copy && src(ps, run, p) < 0)       \
                return -1;                         \
            run = p = ws_end(p, end);              \
        }                                          \
    } while (0)
/* After a '{' or a ',' in an object: ws, key, ws, ':', ws. */
#define KEY()                                                                       \
    do {                                                                            \
        WS();                                                                       \
        if (p == end || *p != '"' || (p = scan_string(p, end, true, &esc)) == NULL) \
            return -1;                                                              \
        WS();                                                                       \
        if (p == end || *p != ':')                                                  \
            return -1;                                                              \
        p++;                                                                        \
        WS();                                                                       \
    } while (0)
    for (;;) {
        /* a value starts at p */
        if (depth + top > MAX_DEPTH || p == end)
            return -1;
        if (*p == '{' || *p == '[') {
            char close = *p == '{' ? '}' : ']';
            p++;
            WS();
            if (p < end && *p == close) {
                p++;
            } else {
                uint64_t bit = (uint64_t)1 << (top % 64);
                is_obj[top / 64] = close == '}' ? is_obj[top / 64] | bit : is_obj[top / 64] & ~bit;
                top++;
                if (close == '}')
                    KEY();
                continue;
            }
        } else if ((q = scan_scalar(p, end)) != NULL) {
            p = q;
        } else {
            return -1;
        }
        /* after a value: ',' or the end of containers */
        for (;;) {
            if (top == 0) {
                ps->p = p;
                return copy ? src(ps, run, p) : 0;
            }
            WS();
            bool obj = is_obj[(top - 1) / 64] >> ((top - 1) % 64) & 1;
            if (p < end && *p == ',') {
                p++;
                if (obj)
                    KEY();
                else
                    WS();
                break;
            }
            if (p == end || *p != (obj ? '}' : ']'))
                return -1;
            p++;
            top--;
        }
    }
#undef KEY
#undef WS
}

static inline int copy_value(ps_t *ps, int depth)
{
    const char *s = ps->p, *e;
    if (depth > MAX_DEPTH || s == ps->end)
        return -1;
    if (*s == '{' || *s == '[')
        return scan_value(ps, depth, true);
    if ((e = scan_scalar(s, ps->end)) == NULL)
        return -1;
    ps->p = e;
    return src(ps, s, e);
}

static int skip_value(ps_t *ps, int depth)
{
    const char *e;
    if (ps->p < ps->end && *ps->p != '{' && *ps->p != '[') {
        if ((e = scan_scalar(ps->p, ps->end)) == NULL)
            return -1;
        ps->p = e;
        return 0;
    }
    return scan_value(ps, depth, false);
}

/* ---- shaping ---- */

/* What happens to one value, decided from its first byte. */
typedef enum { ACT_COPY, ACT_SKIP, ACT_OBJECT, ACT_ARRAY } act_t;

/* With filtering (under an include), a value the rules do not go through is
 * removed, except null (an absent container); see shape.h. */
static act_t decide(const node_t *n, int c, bool filtering)
{
    if (c == '{' && (filtering ? n->incl_keys : n->nkids > 0))
        return ACT_OBJECT;
    if (c == '[' && n->each != NULL && (!filtering || n->each->incl_below))
        return ACT_ARRAY;
    return !filtering || c == 'n' ? ACT_COPY : ACT_SKIP;
}

static int shape_object(ps_t *ps, const node_t *n, int depth, bool filtering);
static int shape_array(ps_t *ps, const node_t *n, int depth, bool filtering);

static inline int run_act(ps_t *ps, const node_t *n, act_t act, int depth, bool filtering)
{
    switch (act) {
    case ACT_OBJECT:
        return shape_object(ps, n, depth, filtering);
    case ACT_ARRAY:
        return shape_array(ps, n->each, depth, filtering);
    case ACT_SKIP:
        return skip_value(ps, depth);
    case ACT_COPY:
    default:
        return copy_value(ps, depth);
    }
}

/* Elements go through n (the "each" node, or the root for a root array). */
static int shape_array(ps_t *ps, const node_t *n, int depth, bool filtering)
{
    if (depth > MAX_DEPTH || src(ps, ps->p, ps->p + 1) < 0)
        return -1;
    ps->p++;
    skip_ws(ps);
    bool first = true;
    if (peek(ps) != ']') {
        for (;;) {
            act_t act = decide(n, peek(ps), filtering);
            if (act != ACT_SKIP && !first && sep(ps, ps->p - 1, ',') < 0)
                return -1;
            first &= act == ACT_SKIP;
            if (run_act(ps, n, act, depth + 1, filtering) < 0)
                return -1;
            skip_ws(ps);
            if (peek(ps) != ',')
                break;
            ps->p++;
            skip_ws(ps);
        }
        if (peek(ps) != ']')
            return -1;
    }
    ps->p++;
    return src(ps, ps->p - 1, ps->p);
}

/* Decodes the escapes of a key's text (between its quotes, already
 * validated) and compares it with name. Rare: most keys have no escape. */
static bool escaped_key_eq(const char *p, const char *end, const char *name, size_t len)
{
    size_t i = 0;
    while (p < end) {
        char b[4];
        size_t bl = 1;
        b[0] = *p;
        if (*p++ == '\\') {
            long cp;
            size_t n = escape(p, end, &cp);
            if (cp < 0) {
                b[0] = "\"\\/\b\f\n\r\t"[strchr("\"\\/bfnrt", *p) - "\"\\/bfnrt"];
            } else if (cp < 0x80) {
                b[0] = (char)cp;
            } else if (cp < 0x800) {
                b[0] = (char)(0xC0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3F)), bl = 2;
            } else if (cp < 0x10000) {
                b[0] = (char)(0xE0 | cp >> 12), b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
                b[2] = (char)(0x80 | (cp & 0x3F)), bl = 3;
            } else {
                b[0] = (char)(0xF0 | cp >> 18), b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
                b[2] = (char)(0x80 | (cp >> 6 & 0x3F)), b[3] = (char)(0x80 | (cp & 0x3F)), bl = 4;
            }
            p += n;
        }
        if (bl > len - i || memcmp(name + i, b, bl) != 0)
            return false;
        i += bl;
    }
    return i == len;
}

static inline bool key_eq(const char *k, size_t kl, bool esc, const char *name, size_t len)
{
    if (!esc) { /* short names: a loop beats a call to memcmp */
        if (kl != len)
            return false;
        for (size_t i = 0; i < len; i++)
            if (k[i] != name[i])
                return false;
        return true;
    }
    return kl >= len && escaped_key_eq(k, k + kl, name, len);
}

/* The kid named by the key text k (between the quotes). */
static const node_t *match_kid(const node_t *n, const char *k, size_t kl, bool esc)
{
    for (size_t i = 0; i < n->nkids; i++)
        if (key_eq(k, kl, esc, n->kids[i]->key, n->kids[i]->key_len))
            return n->kids[i];
    return NULL;
}

/* The collision slot of a key that is not renamed but bears a new name. */
static slot_t *match_target(const ps_t *ps, const node_t *n, const char *k, size_t kl, bool esc)
{
    for (size_t i = 0; i < n->ntargets; i++) {
        const node_t *t = n->targets[i];
        if (key_eq(k, kl, esc, t->rename, t->rename_len))
            return &ps->slots[t->slot];
    }
    return NULL;
}

/* What happens to the value of a member whose key matched k (or nothing). */
static act_t member_act(const node_t *k, int c, bool filtering, bool *sub)
{
    *sub = false;
    if (filtering) {
        if (k == NULL || k->exclude || (!k->include && !k->incl_below))
            return ACT_SKIP;
        if (k->include && !k->edit_below)
            return ACT_COPY;
        *sub = !k->include;
        return decide(k, c, *sub);
    }
    if (k == NULL)
        return ACT_COPY;
    if (k->exclude)
        return ACT_SKIP;
    return k->edit_below ? decide(k, c, false) : ACT_COPY;
}

static void reverse(char *a, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        char t = a[i];
        a[i] = a[n - 1 - i];
        a[n - 1 - i] = t;
    }
}

/* A renamed value whose new name is already in the object: shape.h says it
 * replaces the earlier value, at the earlier position. The new value was
 * just written at [from, o); it is rotated into the old one's place
 * [vs, ve) by three reversals and the old value cut off. At most once per
 * renamed kid and object; the other slots of the object move along. */
static void rename_over(ps_t *ps, const node_t *n, slot_t *sl, size_t from)
{
    char *b = ps->out;
    size_t old = sl->ve - sl->vs, mid = from - sl->ve, neu = ps->o - from;
    reverse(b + sl->vs, old);
    reverse(b + sl->ve, mid);
    reverse(b + from, neu);
    reverse(b + sl->vs, old + mid + neu);
    ps->o -= old;
    for (size_t i = 0; i < n->ntargets; i++) {
        slot_t *o = &ps->slots[n->targets[i]->slot];
        if (o != sl && o->state != SLOT_EMPTY && o->vs > sl->vs) {
            o->vs = o->vs + neu - old;
            o->ve = o->ve + neu - old;
        }
    }
    sl->ve = sl->vs + neu;
}

/* Writes the separator and the key of a member: its source text (kt, ktl
 * with the quotes; its ':' at colon), or its new name. */
static inline int put_key(ps_t *ps, const node_t *k, const char *kt, size_t ktl, const char *colon,
                          bool first)
{
    if (!first && sep(ps, kt - 1, ',') < 0)
        return -1;
    if (k != NULL && k->rename != NULL)
        return lit(ps, k->rename_json, k->rename_json_len);
    return src(ps, kt, kt + ktl) < 0 ? -1 : sep(ps, colon, ':');
}

/* Writes one member (key text kt with its quotes, then the value) in an
 * object of n that has renames, keeping track of the new names written;
 * *wrote tells whether a member was added to the output. */
static int renamed_member(ps_t *ps, const node_t *n, const node_t *k, const char *kt, size_t ktl,
                          const char *colon, bool esc, act_t act, int depth, bool sub, bool first,
                          bool *wrote)
{
    bool renamed = k != NULL && k->rename != NULL;
    slot_t *sl = renamed ? &ps->slots[k->slot] : match_target(ps, n, kt + 1, ktl - 2, esc);
    *wrote = false;
    if (sl != NULL && !renamed && sl->state == SLOT_RENAMED)
        return skip_value(ps, depth); /* the renamed value wins */
    bool over = renamed && sl->state != SLOT_EMPTY && (sl->state == SLOT_ORIGINAL || sl->by != k);
    if (!over && put_key(ps, k, kt, ktl, colon, first) < 0)
        return -1;
    *wrote = !over;
    if (sl == NULL)
        return run_act(ps, k, act, depth, sub);
    if (flush(ps) < 0)
        return -1;
    size_t from = ps->o; /* output offsets need the pending slice written */
    if (run_act(ps, k, act, depth, sub) < 0 || flush(ps) < 0)
        return -1;
    if (!renamed && sl->state == SLOT_ORIGINAL)
        return 0; /* a duplicate key of the input: kept as it comes */
    if (over) {
        rename_over(ps, n, sl, from);
    } else {
        sl->vs = from;
        sl->ve = ps->o;
    }
    sl->state = renamed ? SLOT_RENAMED : SLOT_ORIGINAL;
    sl->by = k;
    return 0;
}

/* Writes one member; *wrote tells whether a member was added. */
static int member(ps_t *ps, const node_t *n, int depth, bool filtering, bool first, bool *wrote)
{
    const char *kt = ps->p;
    bool esc = false;
    if (peek(ps) != '"' || (ps->p = scan_string(kt, ps->end, true, &esc)) == NULL)
        return -1;
    size_t ktl = (size_t)(ps->p - kt);
    skip_ws(ps);
    const char *colon = ps->p;
    if (peek(ps) != ':')
        return -1;
    ps->p++;
    skip_ws(ps);
    /* escaped keys are compared decoded: no filter for them */
    bool known = esc || (n->names & key_bit(kt + 1, ktl - 2)) != 0;
    const node_t *k = known ? match_kid(n, kt + 1, ktl - 2, esc) : NULL;
    bool sub;
    act_t act = member_act(k, peek(ps), filtering, &sub);
    *wrote = false;
    if (act == ACT_SKIP)
        return skip_value(ps, depth);
    if (known && n->rename_kid)
        return renamed_member(ps, n, k, kt, ktl, colon, esc, act, depth, sub, first, wrote);
    *wrote = true;
    if (put_key(ps, k, kt, ktl, colon, first) < 0)
        return -1;
    return run_act(ps, k, act, depth, sub);
}

static int shape_object(ps_t *ps, const node_t *n, int depth, bool filtering)
{
    if (depth > MAX_DEPTH || src(ps, ps->p, ps->p + 1) < 0)
        return -1;
    for (size_t i = 0; i < n->ntargets; i++)
        ps->slots[n->targets[i]->slot].state = SLOT_EMPTY;
    ps->p++;
    skip_ws(ps);
    bool first = true;
    if (peek(ps) != '}') {
        for (;;) {
            bool wrote;
            if (member(ps, n, depth + 1, filtering, first, &wrote) < 0)
                return -1;
            first &= !wrote;
            skip_ws(ps);
            if (peek(ps) != ',')
                break;
            ps->p++;
            skip_ws(ps);
        }
        if (peek(ps) != '}')
            return -1;
    }
    ps->p++;
    return src(ps, ps->p - 1, ps->p);
}

/* The root value (after leading whitespace). */
static int shape_root(const tg_shape_t *s, ps_t *ps)
{
    bool filtering = s->root.incl_below;
    int c = peek(ps);
    if (c == '[')
        return shape_array(ps, &s->root, 1, filtering);
    if (decide(&s->root, c, filtering) == ACT_OBJECT)
        return shape_object(ps, &s->root, 1, filtering);
    return copy_value(ps, 1);
}

/* The output is never longer than the input, except for renamed keys: each
 * occurrence takes at least key_len + 4 input bytes and grows the output by
 * at most the growth recorded at load (grow_num per grow_den input bytes). */
static size_t out_bound(const tg_shape_t *s, size_t len)
{
    return len + (len / s->grow_den + 1) * s->grow_num + 16;
}

static tg_shape_result_t emit(const char *out, size_t len, tg_shape_write_fn write, void *data)
{
    for (size_t off = 0; off < len; off += WRITE_CHUNK) {
        size_t n = len - off < WRITE_CHUNK ? len - off : WRITE_CHUNK;
        if (write(out + off, n, data) < 0)
            return TG_SHAPE_WRITE_ERROR;
    }
    return TG_SHAPE_SHAPED;
}

tg_shape_result_t tg_shape_body(const tg_shape_t *s, const char *body, size_t len,
                                tg_shape_write_fn write, void *data)
{
    ps_t ps = {body, body + len, body, body, NULL, 0, 0, NULL};
    skip_ws(&ps);
    int c = peek(&ps);
    if (c != '{' && c != '[') {
        /* A scalar root is validated, never written. */
        if (c < 0 || (ps.p = scan_scalar(ps.p, ps.end)) == NULL)
            return TG_SHAPE_INVALID;
        skip_ws(&ps);
        return ps.p == ps.end ? TG_SHAPE_SCALAR : TG_SHAPE_INVALID;
    }
    size_t cap = out_bound(s, len), sz = cap + s->nslots * sizeof(slot_t);
    char *mem = malloc(sz);
    if (mem == NULL)
        return TG_SHAPE_WRITE_ERROR;
    ps.slots = (slot_t *)(void *)mem;
    ps.out = mem + s->nslots * sizeof(slot_t);
    ps.cap = cap;
    tg_shape_result_t res = TG_SHAPE_INVALID;
    if (shape_root(s, &ps) == 0 && flush(&ps) == 0) {
        skip_ws(&ps);
        if (ps.p == ps.end)
            res = emit(ps.out, ps.o, write, data);
    }
    free(mem);
    return res;
}
