/*
 * libFuzzer target for the response-shape engine (plugins/response-shape/
 * shape.c): fixed profiles, fuzzed body. Checks, for every input:
 *   - tg_shape_body() says INVALID exactly when jansson rejects the body;
 *   - the output of a profile without rules is the same document (jansson
 *     json_equal), so the serializer loses nothing (reals included);
 *   - every output is valid, compact JSON that reads back;
 *   - include/exclude without rename is idempotent: shaping the output
 *     again gives the same bytes.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Iplugins/response-shape
 *        tests/fuzz/fuzz_shape.c plugins/response-shape/shape.c -ljansson
 * (or tests/fuzz/build.sh shape once the case is added there).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shape.h"

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

static tg_shape_t *none, *filter, *edit;

static tg_shape_t *make(const char *const *inc, const char *const *exc, const char *const *ren)
{
    char err[256];
    tg_shape_t *s = tg_shape_new();
    for (; inc && *inc; inc++)
        CHECK(tg_shape_add(s, TG_SHAPE_INCLUDE, *inc, NULL, err, sizeof(err)) == 0);
    for (; exc && *exc; exc++)
        CHECK(tg_shape_add(s, TG_SHAPE_EXCLUDE, *exc, NULL, err, sizeof(err)) == 0);
    for (; ren && *ren; ren += 2)
        CHECK(tg_shape_add(s, TG_SHAPE_RENAME, ren[0], ren[1], err, sizeof(err)) == 0);
    return s;
}

static void setup(void)
{
    static const char *const inc[] = {"id", "a.b", "a[].c", "o[].l[].s", "m[][].x", "n", NULL};
    static const char *const exc[] = {"a.b.z", "o[].l[].s.q", "n.n", "x", NULL};
    static const char *const ren[] = {"id",    "key", "a",   "b", "o[].l[].s", "t",
                                      "a[].c", "id",  "q.w", "q", NULL};
    none = make(NULL, NULL, NULL);
    filter = make(inc, exc, NULL);
    edit = make(NULL, exc, ren);
}

static json_t *load(const char *p, size_t n)
{
    json_error_t e;
    return json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
}

/* Shapes data with s; returns the output (NULL unless SHAPED). */
static char *run(const tg_shape_t *s, const char *data, size_t size, size_t *len,
                 tg_shape_result_t *r)
{
    out_t o = {NULL, 0};
    *r = tg_shape_body(s, data, size, collect, &o);
    CHECK(*r != TG_SHAPE_WRITE_ERROR);
    CHECK(*r == TG_SHAPE_SHAPED || o.buf == NULL);
    *len = o.len;
    return o.buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (none == NULL)
        setup();
    const char *in = (const char *)data;
    json_t *ref = load(in, size);
    size_t len, len2;
    tg_shape_result_t r, r2;

    char *out = run(none, in, size, &len, &r);
    CHECK((r == TG_SHAPE_INVALID) == (ref == NULL));
    if (out != NULL) {
        json_t *back = load(out, len);
        CHECK(back != NULL);
        CHECK(json_equal(ref, back));
        json_decref(back);
        CHECK(strchr(out, '\n') == NULL); /* compact: no newline outside strings */
    }
    free(out);
    json_decref(ref);

    out = run(filter, in, size, &len, &r);
    if (out != NULL) {
        char *again = run(filter, out, len, &len2, &r2);
        CHECK(r2 == TG_SHAPE_SHAPED);
        CHECK(len2 == len && memcmp(again, out, len) == 0);
        free(again);
    }
    free(out);

    out = run(edit, in, size, &len, &r);
    if (out != NULL) {
        json_t *back = load(out, len);
        CHECK(back != NULL);
        json_decref(back);
    }
    free(out);
    return 0;
}
