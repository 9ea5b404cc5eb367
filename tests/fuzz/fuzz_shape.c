/*
 * libFuzzer target for the response-shape engine (plugins/response-shape/
 * shape.c): a differential test against the old jansson DOM engine kept as
 * an oracle (tests/unit/shape_dom_oracle.c). For a few fixed profiles and
 * the fuzzed body, checks (dom_check):
 *   - both engines give the same result (shaped, scalar, invalid), and
 *     invalid is exactly what jansson rejects once every number is written 0
 *     (jansson holds int64 and double only, RFC 8259 and the engine any
 *     number), except a body with a NUL byte: always invalid here (jansson
 *     2.14 accepts some, a bug);
 *   - shaped outputs are equal once parsed (json_equal, numbers written 0;
 *     by value too when jansson holds them) unless the body repeats a key in
 *     an object (the oracle keeps the last value only, the streaming engine
 *     keeps them all, by design);
 *   - without renames the output is never longer than the body, has no
 *     newline (compact), and include/exclude is idempotent: shaping the
 *     output again gives the same bytes.
 *
 * Build: tests/fuzz/build.sh shape
 * (clang -fsanitize=fuzzer,address,undefined -Iplugins/response-shape
 *  -Itests/unit tests/fuzz/fuzz_shape.c plugins/response-shape/shape.c -ljansson)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/response-shape/shape.h"
#include "shape_dom_oracle.c"

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

typedef struct {
    char *buf;
    size_t len;
} out_t;

static int collect(const char *p, size_t n, void *data)
{
    out_t *o = data;
    char *b = realloc(o->buf, o->len + n + 1);
    if (b == NULL)
        return -1;
    memcpy(b + o->len, p, n);
    o->buf = b;
    o->len += n;
    b[o->len] = '\0';
    return 0;
}

typedef struct {
    const char *const *inc, *const *exc, *const *ren; /* NULL-terminated; ren: pairs */
    tg_shape_t *s;
    dom_shape_t *dom;
} profile_t;

static const char *const inc1[] = {"id", "a.b", "a[].c", "o[].l[].s", "m[][].x", "n", NULL};
static const char *const exc1[] = {"a.b.z", "o[].l[].s.q", "n.n", "x", NULL};
static const char *const ren1[] = {"id",    "key", "a",   "b", "o[].l[].s", "t",
                                   "a[].c", "id",  "q.w", "q", NULL};
/* renames onto names that exist, several to one name, swaps */
static const char *const ren2[] = {"a",     "b", "b",     "a", "c",  "b",   "d", "x",
                                   "e[].a", "b", "e[].c", "b", "\"", "\\u", NULL};
static const char *const inc3[] = {"a", "b", "c", "e[].a", "e[].b", NULL};

static profile_t profiles[] = {
    {NULL, NULL, NULL, NULL, NULL}, /* no rules: compaction only */
    {inc1, exc1, NULL, NULL, NULL}, {NULL, exc1, ren1, NULL, NULL},
    {NULL, NULL, ren2, NULL, NULL}, {inc3, exc1, ren2, NULL, NULL},
};
#define NPROFILES (sizeof(profiles) / sizeof(profiles[0]))

static void setup(profile_t *p)
{
    char err[256];
    p->s = tg_shape_new();
    p->dom = dom_shape_new();
    for (const char *const *r = p->inc; r && *r; r++) {
        CHECK(tg_shape_add(p->s, TG_SHAPE_INCLUDE, *r, NULL, err, sizeof(err)) == 0);
        CHECK(dom_shape_add(p->dom, TG_SHAPE_INCLUDE, *r, NULL, err, sizeof(err)) == 0);
    }
    for (const char *const *r = p->exc; r && *r; r++) {
        CHECK(tg_shape_add(p->s, TG_SHAPE_EXCLUDE, *r, NULL, err, sizeof(err)) == 0);
        CHECK(dom_shape_add(p->dom, TG_SHAPE_EXCLUDE, *r, NULL, err, sizeof(err)) == 0);
    }
    for (const char *const *r = p->ren; r && *r; r += 2) {
        CHECK(tg_shape_add(p->s, TG_SHAPE_RENAME, r[0], r[1], err, sizeof(err)) == 0);
        CHECK(dom_shape_add(p->dom, TG_SHAPE_RENAME, r[0], r[1], err, sizeof(err)) == 0);
    }
}

static void one(const profile_t *p, const char *in, size_t size, bool valid)
{
    out_t o = {NULL, 0};
    tg_shape_result_t r = tg_shape_body(p->s, in, size, collect, &o);
    CHECK(r != TG_SHAPE_WRITE_ERROR);
    CHECK(r == TG_SHAPE_SHAPED || o.buf == NULL);
    const char *why = dom_check(p->dom, in, size, r, o.buf, o.len);
    if (why != NULL) {
        fprintf(stderr, "%s\n", why);
        CHECK(why == NULL);
    }
    CHECK(memchr(in, '\0', size) != NULL || (r == TG_SHAPE_INVALID) == !valid);
    if (r == TG_SHAPE_SHAPED && p->ren == NULL) {
        CHECK(o.len <= size);
        CHECK(memchr(o.buf, '\n', o.len) == NULL);
        out_t again = {NULL, 0};
        CHECK(tg_shape_body(p->s, o.buf, o.len, collect, &again) == TG_SHAPE_SHAPED);
        CHECK(again.len == o.len && memcmp(again.buf, o.buf, o.len) == 0);
        free(again.buf);
    }
    free(o.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (profiles[0].s == NULL)
        for (size_t i = 0; i < NPROFILES; i++)
            setup(&profiles[i]);
    const char *in = (const char *)data;
    size_t zl;
    char *z = dom_zero_numbers(in, size, &zl);
    json_t *ref = dom_load(z, zl, 0);
    for (size_t i = 0; i < NPROFILES; i++)
        one(&profiles[i], in, size, ref != NULL);
    json_decref(ref);
    free(z);
    return 0;
}
