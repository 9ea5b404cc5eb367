/*
 * libFuzzer target for the client-field code: src/field_list.c (comma lists
 * both ways, Upgrade protocol lists), src/client_fields.c (what passes this
 * hop) and src/client_addr.c (the client behind trusted proxies).
 *
 * Input: one policy byte, then a header block "Name: value\n...". Checked:
 * forward and backward list walks agree element for element; the Upgrade
 * decision equals a naive reference written from RFC 9110 section 7.8; the
 * filter keeps a subsequence of the input that obeys every rule of
 * client_fields.h; the client address is one of the X-Forwarded-For elements.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client_addr.h"
#include "client_fields.h"
#include "field_list.h"

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

#define MAXH 64
#define MAXE 4096

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

static size_t walk_forward(const char *v, size_t n, tg_span_t *e)
{
    size_t pos = 0, k = 0;
    while (k < MAXE && tg_list_next(v, n, &pos, &e[k])) {
        const tg_span_t *x = &e[k];
        CHECK(x->len > 0 && x->p >= v && x->p + x->len <= v + n);
        CHECK(!ows(x->p[0]) && !ows(x->p[x->len - 1]) && memchr(x->p, ',', x->len) == NULL);
        k++;
    }
    return k;
}

static void check_lists(const char *v, size_t n)
{
    static tg_span_t fwd[MAXE];
    size_t k = walk_forward(v, n, fwd);
    if (k == MAXE)
        return;
    size_t end = n;
    tg_span_t e;
    for (size_t i = k; i-- > 0;) {
        CHECK(tg_list_prev(v, n, &end, &e));
        CHECK(e.p == fwd[i].p && e.len == fwd[i].len);
    }
    CHECK(!tg_list_prev(v, n, &end, &e) && end == 0);
}

static bool ref_tchar(unsigned char c)
{
    return c < 128 && c > 32 && strchr("\"(),/:;<=>?@[\\]{}\x7f", c) == NULL;
}

static bool ref_token(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!ref_tchar((unsigned char)s[i]))
            return false;
    return n > 0;
}

static int ref_upgrade(const char *v, size_t n)
{
    int found = 0;
    size_t s = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && v[i] != ',')
            continue;
        size_t a = s, b = i;
        s = i + 1;
        while (a < b && ows(v[a]))
            a++;
        while (b > a && ows(v[b - 1]))
            b--;
        if (a == b)
            continue;
        const char *slash = memchr(v + a, '/', b - a);
        size_t nl = slash ? (size_t)(slash - (v + a)) : b - a;
        if (!ref_token(v + a, nl) || (slash && !ref_token(slash + 1, b - a - nl - 1)))
            return -1;
        if (b - a == 9 && strncasecmp(v + a, "websocket", 9) == 0)
            found = 1;
    }
    return found;
}

static const char *const hop[] = {
    "connection", "keep-alive",       "te", "trailer", "transfer-encoding",
    "upgrade",    "proxy-connection", NULL};
static const char *const fwdn[] = {
    "x-forwarded-for",    "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
    "x-forwarded-prefix", "forwarded",         "x-real-ip",        NULL};
static const char *const owned[] = {"host", "content-length", "expect", "x-request-id", NULL};

static bool folds_to(const tg_http_header_t *h, const char *const *list)
{
    for (; *list; list++)
        if (tg_field_name_folded_eq(h->name, h->name_len, *list, strlen(*list)))
            return true;
    return false;
}

static bool has_us(const tg_http_header_t *h)
{
    return memchr(h->name, '_', h->name_len) != NULL;
}

static void check_filter(const tg_http_header_t *in, size_t n, const tg_client_fields_policy_t *p)
{
    tg_http_header_t out[MAXH];
    memcpy(out, in, n * sizeof(*in));
    size_t m = n;
    const char *reason = NULL;
    int track = n ? (int)(n - 1) : -1;
    bool any_us = false;
    for (size_t i = 0; i < n; i++)
        any_us |= has_us(&in[i]);
    if (tg_client_fields_filter(out, &m, p, &track, &reason) < 0) {
        CHECK(reason != NULL);
        CHECK((p->underscores == TG_UNDERSCORES_REJECT && any_us) ||
              strcmp(reason, "too many Connection options") == 0);
        return;
    }
    CHECK(!(p->underscores == TG_UNDERSCORES_REJECT && any_us));
    size_t j = 0; /* out is a subsequence of in */
    for (size_t i = 0; i < m; i++) {
        while (j < n && memcmp(&in[j], &out[i], sizeof(out[i])) != 0)
            j++;
        CHECK(j < n);
        if (track >= 0 && (size_t)track == i)
            CHECK(j == n - 1);
        j++;
        const tg_http_header_t *h = &out[i];
        CHECK(!folds_to(h, hop));
        CHECK(p->trusted_peer ? !(has_us(h) && folds_to(h, fwdn)) : !folds_to(h, fwdn));
        CHECK(!(has_us(h) && folds_to(h, owned)));
        CHECK(p->underscores == TG_UNDERSCORES_ALLOW || !has_us(h));
        for (size_t k = 0; k < n; k++) {
            if (!tg_field_name_folded_eq(in[k].name, in[k].name_len, "connection", 10) ||
                has_us(&in[k]))
                continue;
            size_t pos = 0;
            tg_span_t e;
            while (tg_list_next(in[k].value, in[k].value_len, &pos, &e))
                CHECK(!tg_field_name_folded_eq(e.p, e.len, h->name, h->name_len));
        }
    }
}

static void check_client(const tg_http_header_t *hs, size_t n)
{
    static tg_cidr_t trusted[3];
    static bool init;
    if (!init) {
        CHECK(tg_cidr_parse("10.0.0.0/8", &trusted[0]) == 0);
        CHECK(tg_cidr_parse("127.0.0.1", &trusted[1]) == 0);
        CHECK(tg_cidr_parse("fd00::/8", &trusted[2]) == 0);
        init = true;
    }
    struct sockaddr_storage ss;
    if (!tg_client_addr_from_xff(hs, n, trusted, 3, &ss))
        return;
    CHECK(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
    /* The result is one of the X-Forwarded-For elements. */
    char want[INET6_ADDRSTRLEN], got[INET6_ADDRSTRLEN];
    const void *a = ss.ss_family == AF_INET
                        ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                        : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
    CHECK(inet_ntop(ss.ss_family, a, want, sizeof(want)) != NULL);
    for (size_t i = 0; i < n; i++) {
        if (!tg_field_name_folded_eq(hs[i].name, hs[i].name_len, "x-forwarded-for", 15))
            continue;
        size_t pos = 0;
        tg_span_t e;
        while (tg_list_next(hs[i].value, hs[i].value_len, &pos, &e)) {
            char buf[INET6_ADDRSTRLEN];
            unsigned char bin[16];
            if (e.len >= sizeof(buf))
                continue;
            memcpy(buf, e.p, e.len);
            buf[e.len] = '\0';
            int fam = strchr(buf, ':') ? AF_INET6 : AF_INET;
            if (inet_pton(fam, buf, bin) == 1 && inet_ntop(fam, bin, got, sizeof(got)) &&
                strcmp(got, want) == 0)
                return;
        }
    }
    CHECK(!"client address is not an X-Forwarded-For element");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned policy = data[0];
    size--;
    /* An exact-size heap copy so that ASan sees any read past the end. */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data + 1, size);
    tg_http_header_t hs[MAXH];
    size_t n = 0, s = 0;
    for (size_t i = 0; i <= size && n < MAXH; i++) {
        if (i < size && buf[i] != '\n')
            continue;
        const char *line = buf + s, *colon = memchr(line, ':', i - s);
        if (colon != NULL && colon > line) {
            const char *v = colon + 1;
            hs[n++] = (tg_http_header_t){line, (size_t)(colon - line), v, (size_t)(buf + i - v)};
        }
        s = i + 1;
    }
    for (size_t i = 0; i < n; i++) {
        check_lists(hs[i].value, hs[i].value_len);
        CHECK(tg_list_upgrade_websocket(hs[i].value, hs[i].value_len) ==
              ref_upgrade(hs[i].value, hs[i].value_len));
        (void)tg_list_only_websocket(hs[i].value, hs[i].value_len);
    }
    tg_client_fields_policy_t p = {.underscores = (tg_underscores_t)(policy % 3),
                                   .trusted_peer = (policy & 4) != 0};
    check_filter(hs, n, &p);
    check_client(hs, n);
    free(buf);
    return 0;
}
