/*
 * Micro benchmark of the response-shape engine: the streaming engine
 * (plugins/response-shape/shape.c) against the old jansson DOM engine kept
 * as a test oracle (tests/unit/shape_dom_oracle.c), on bench/plugins' ~10 KB
 * document (a user with 60 orders) with bench/conf/plugins/shape.yaml's
 * "mobile" profile, and with no rules (validation and compaction only).
 *
 * Build and run (not part of the meson build):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iplugins/response-shape -Itests/unit \
 *      bench/shape_micro.c plugins/response-shape/shape.c -ljansson -o /tmp/shape_micro
 *   /tmp/shape_micro [document.json]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shape.h"
#include "shape_dom_oracle.c"

typedef struct {
    char *buf;
    size_t len, cap;
} sink_t;

static int sink(const char *p, size_t n, void *data)
{
    sink_t *s = data;
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->buf = realloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

/* The document bench/plugins' make_doc() writes (same shape and size). */
static char *make_doc(size_t *len)
{
    static const char *const sizes[] = {"S", "M", "L", "XL"}, *const st[] = {"paid", "shipped",
                                                                             "delivered"};
    char *d = malloc(65536), *p = d;
    p += sprintf(p, "{\"id\":4217,\"name\":\"Ada Lovelace\",\"email\":\"ada@example.com\","
                    "\"avatar_url\":\"https://cdn.example.com/avatars/4217.png\","
                    "\"internal_notes\":\"vip since 2019\",\"orders\":[");
    for (int i = 0; i < 60; i++)
        p += sprintf(
            p,
            "%s{\"id\":%d,\"sku\":\"SKU-%06d-%s\",\"created_at\":\"2024-%02d-%02dT%02d:15:00Z\","
            "\"quantity\":%d,\"total\":%.2f,\"cost_price\":%.2f,\"currency\":\"EUR\","
            "\"status\":\"%s\",\"notes\":\"%s\"}",
            i ? "," : "", 100000 + i, 7 * i + 1000, sizes[i % 4], i % 12 + 1, i % 28 + 1, i % 24,
            i % 5 + 1, 19.99 + i * 3.17, 11.5 + i * 1.9, st[i % 3], i % 4 == 0 ? "gift wrap" : "");
    p += sprintf(p, "]}");
    *len = (size_t)(p - d);
    return d;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *d = malloc(1 << 24);
    *len = fread(d, 1, 1 << 24, f);
    fclose(f);
    return d;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

typedef tg_shape_result_t (*body_fn)(const void *s, const char *b, size_t n, tg_shape_write_fn w,
                                     void *d);

static tg_shape_result_t run_new(const void *s, const char *b, size_t n, tg_shape_write_fn w,
                                 void *d)
{
    return tg_shape_body(s, b, n, w, d);
}

static tg_shape_result_t run_dom(const void *s, const char *b, size_t n, tg_shape_write_fn w,
                                 void *d)
{
    return dom_shape_body(s, b, n, w, d);
}

/* Best of 5 rounds of iters calls: microseconds per call; *out_len. */
static double time_it(body_fn f, const void *s, const char *doc, size_t len, int iters,
                      size_t *out_len)
{
    sink_t o = {NULL, 0, 0};
    double best = 1e9;
    for (int round = 0; round < 5; round++) {
        double t0 = now();
        for (int i = 0; i < iters; i++) {
            o.len = 0;
            if (f(s, doc, len, sink, &o) != TG_SHAPE_SHAPED) {
                fprintf(stderr, "not shaped\n");
                exit(1);
            }
        }
        double us = (now() - t0) * 1e6 / iters;
        best = us < best ? us : best;
    }
    *out_len = o.len;
    free(o.buf);
    return best;
}

int main(int argc, char **argv)
{
    size_t len;
    char *doc = argc > 1 ? read_file(argv[1], &len) : make_doc(&len);
    if (doc == NULL) {
        perror(argv[1]);
        return 1;
    }
    char err[256];
    tg_shape_t *mobile = tg_shape_new(), *none = tg_shape_new();
    dom_shape_t *dmobile = dom_shape_new(), *dnone = dom_shape_new();
    static const char *const inc[] = {"id", "name", "avatar_url", "orders"};
    static const char *const exc[] = {"orders[].cost_price", "orders[].notes"};
    static const char *const ren[][2] = {{"avatar_url", "avatar"}, {"orders[].total", "sum"}};
    for (int i = 0; i < 4; i++) {
        tg_shape_add(mobile, TG_SHAPE_INCLUDE, inc[i], NULL, err, sizeof(err));
        dom_shape_add(dmobile, TG_SHAPE_INCLUDE, inc[i], NULL, err, sizeof(err));
    }
    for (int i = 0; i < 2; i++) {
        tg_shape_add(mobile, TG_SHAPE_EXCLUDE, exc[i], NULL, err, sizeof(err));
        dom_shape_add(dmobile, TG_SHAPE_EXCLUDE, exc[i], NULL, err, sizeof(err));
        tg_shape_add(mobile, TG_SHAPE_RENAME, ren[i][0], ren[i][1], err, sizeof(err));
        dom_shape_add(dmobile, TG_SHAPE_RENAME, ren[i][0], ren[i][1], err, sizeof(err));
    }
    size_t n1, n2;
    printf("document: %zu bytes\n", len);
    double a = time_it(run_dom, dmobile, doc, len, 2000, &n1);
    double b = time_it(run_new, mobile, doc, len, 20000, &n2), mb = b;
    printf("mobile profile:  DOM %8.2f us  streaming %6.2f us  (%.0fx)  output %zu / %zu bytes\n",
           a, b, a / b, n1, n2);
    a = time_it(run_dom, dnone, doc, len, 2000, &n1);
    b = time_it(run_new, none, doc, len, 20000, &n2);
    printf("no rules:        DOM %8.2f us  streaming %6.2f us  (%.0fx)  output %zu / %zu bytes\n",
           a, b, a / b, n1, n2);
    printf("streaming, mobile: %.0f MB/s of input\n", (double)len / mb);
    tg_shape_free(mobile);
    tg_shape_free(none);
    dom_shape_free(dmobile);
    dom_shape_free(dnone);
    free(doc);
    return 0;
}
