/*
 * libFuzzer target: the query parameter finder (src/query.c, public, used by
 * the jwt and key-auth plugins), the jwt plugin's cookie finder, and their
 * strip rewriters (plugins/jwt/jwt_source.c).
 *
 * The input is a query string and a Cookie header value at once. Checked:
 * spans stay inside the input; a query without the token parameter has one
 * token parameter fewer, only the parameter and one "&" removed; a Cookie
 * header without the token cookie holds none, fits the documented room, and
 * is a fixed point (rewriting it again changes nothing).
 *
 * Build: tests/fuzz/build.sh jwt_source (sources: plugins/jwt/jwt_source.c
 * src/query.c src/percent.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/jwt/jwt_source.h"

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

static const char *const names[] = {"access_token", "t", "a%b"};

static int inside(tg_span_t s, const char *p, size_t len)
{
    return s.p >= p && s.len <= len && (size_t)(s.p - p) <= len - s.len;
}

static void query(const char *q, size_t len, const char *name)
{
    tg_span_t param, value;
    size_t n = tg_query_find(q, len, name, &param, &value);
    if (n == 0)
        return;
    CHECK(inside(param, q, len) && inside(value, param.p, param.len));
    char *out = malloc(len + 1);
    CHECK(out != NULL);
    size_t m = tg_query_without(q, len, param, out);
    CHECK(m + param.len == len || m + param.len + 1 == len);
    /* One gap: what is before it and after it is kept byte for byte. */
    size_t start = (size_t)(param.p - q);
    if (start + param.len == len && start > 0)
        start--;
    CHECK(start <= m && memcmp(out, q, start) == 0);
    CHECK(memcmp(out + start, q + start + (len - m), m - start) == 0);
    tg_span_t p2, v2;
    CHECK(tg_query_find(out, m, name, &p2, &v2) == n - 1);
    free(out);
}

static void cookie(const char *v, size_t len, const char *name)
{
    tg_span_t value;
    size_t n = tg_jwt_cookie_find(v, len, name, &value);
    if (n > 0)
        CHECK(inside(value, v, len));
    char *out = malloc(2 * len + 3), *again = malloc(4 * len + 6);
    CHECK(out != NULL && again != NULL);
    size_t m = tg_jwt_cookie_without(v, len, name, out, 0);
    CHECK(m <= 2 * len + 2);
    CHECK(tg_jwt_cookie_find(out, m, name, &value) == 0);
    size_t k = tg_jwt_cookie_without(out, m, name, again, 0);
    CHECK(k == m && memcmp(again, out, m) == 0);
    free(out);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* "query\ncookie": either part may be empty. */
    const char *in = (const char *)data, *nl = memchr(in, '\n', size);
    size_t qlen = nl ? (size_t)(nl - in) : size;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        query(in, qlen, names[i]);
        if (nl != NULL)
            cookie(nl + 1, size - qlen - 1, names[i]);
    }
    return 0;
}
