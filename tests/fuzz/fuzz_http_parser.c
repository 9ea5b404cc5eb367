/*
 * libFuzzer target for src/http_parser.c, src/chunked.c and src/host.c: the
 * same input is run through the request parser, the response parser, the
 * chunked decoder (whole and split) and the Host validator, and the
 * invariants the callers rely on are checked. Build with
 * tests/fuzz/build.sh http_parser.
 */
#include "host.h"
#include "http_parser.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAP 16
/* prefixes are re-parsed one by one below this size (quadratic) */
#define MAX_PREFIX_SCAN 2048

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static void check_fields(const tg_http_header_t *h, size_t n, const char *buf, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        CHECK(h[i].name_len > 0 && inside(h[i].name, h[i].name_len, buf, len));
        CHECK(inside(h[i].value, h[i].value_len, buf, len));
        CHECK(memchr(h[i].name, ':', h[i].name_len) == NULL);
        CHECK(memchr(h[i].value, '\r', h[i].value_len) == NULL);
        CHECK(memchr(h[i].value, '\n', h[i].value_len) == NULL);
        if (h[i].value_len > 0) {
            char a = h[i].value[0], z = h[i].value[h[i].value_len - 1];
            CHECK(a != ' ' && a != '\t' && z != ' ' && z != '\t');
        }
    }
}

/* Parses buf[0..len) from a private exact-size copy, so that ASan catches a
 * read past len even for a prefix of the fuzzer's input. */
static int request(const uint8_t *data, size_t len, tg_http_request_t *req, tg_http_header_t *h)
{
    char *buf = malloc(len ? len : 1);
    int r;
    memcpy(buf, data, len);
    req->headers = h;
    req->num_headers = CAP;
    r = tg_http_parse_request(buf, len, req);
    CHECK(r == TG_HTTP_INCOMPLETE || r == TG_HTTP_ERROR || (r > 0 && (size_t)r <= len));
    if (r == TG_HTTP_INCOMPLETE)
        CHECK(req->num_headers == CAP);
    if (r == TG_HTTP_ERROR) {
        int s = req->error_status;
        CHECK(s == 400 || s == 414 || s == 431 || s == 505);
        CHECK(req->error_reason != NULL);
    }
    if (r > 0) {
        CHECK(req->num_headers <= CAP);
        CHECK(inside(req->method, req->method_len, buf, (size_t)r) && req->method_len > 0);
        CHECK(inside(req->target, req->target_len, buf, (size_t)r) && req->target_len > 0);
        CHECK(req->target_len <= 8192);
        CHECK(req->minor_version == 0 || req->minor_version == 1);
        CHECK(req->host_index < (int)req->num_headers);
        CHECK(req->minor_version == 0 || req->host_index >= 0);
        CHECK(req->body_kind != TG_BODY_UNTIL_CLOSE);
        CHECK(req->body_kind != TG_BODY_CHUNKED || req->minor_version == 1);
        CHECK(req->content_length <= (uint64_t)INT64_MAX);
        check_fields(h, req->num_headers, buf, (size_t)r);
        CHECK(r >= 4 && memcmp(buf + r - 4, "\r\n\r\n", 4) == 0); /* no bare LF */
        if (req->host_index >= 0) { /* an accepted Host is empty or valid */
            const tg_http_header_t *hh = &h[req->host_index];
            CHECK(hh->value_len == 0 || tg_host_valid(hh->value, hh->value_len));
        }
    }
    free(buf);
    return r;
}

static void fuzz_request(const uint8_t *data, size_t size)
{
    tg_http_request_t whole, part;
    tg_http_header_t h1[CAP], h2[CAP];
    int r = request(data, size, &whole, h1);
    if (r > 0) /* bytes after the head change nothing */
        CHECK(request(data, (size_t)r, &part, h2) == r && part.num_headers == whole.num_headers);
    if (size > MAX_PREFIX_SCAN)
        return;
    /* every prefix answers INCOMPLETE or already the final answer */
    for (size_t k = 0; k < size; k++) {
        int rp = request(data, k, &part, h2);
        if (rp == TG_HTTP_INCOMPLETE)
            continue;
        CHECK(rp == r);
        if (r == TG_HTTP_ERROR)
            CHECK(part.error_status == whole.error_status &&
                  strcmp(part.error_reason, whole.error_reason) == 0);
        break;
    }
}

/* RFC 9112 section 6.3: an accepted response has exactly one framing, so
 * the gateway never has to guess where it ends (see http_parser.h). */
static void check_response_framing(const tg_http_response_t *resp)
{
    int cl = 0, te = 0;
    for (size_t i = 0; i < resp->num_headers; i++) {
        cl += TG_HTTP_NAME_IS(&resp->headers[i], "content-length");
        te += TG_HTTP_NAME_IS(&resp->headers[i], "transfer-encoding");
    }
    CHECK(!(cl && te));
    CHECK((resp->body_kind == TG_BODY_CHUNKED) == (te > 0));
    CHECK((resp->body_kind == TG_BODY_LENGTH) == (cl > 0));
    CHECK(resp->body_kind != TG_BODY_CHUNKED || resp->minor_version == 1);
    CHECK(resp->content_length <= (uint64_t)INT64_MAX);
    if (resp->status < 200)
        CHECK(resp->body_kind != TG_BODY_CHUNKED && resp->content_length == 0);
    for (int head = 0; head < 2; head++) {
        tg_body_kind_t k = tg_http_response_body(resp, head);
        CHECK(k == TG_BODY_NONE || (!head && k == resp->body_kind));
        /* read until close can never be followed by another exchange */
        if (tg_http_response_reusable(resp, head))
            CHECK(k != TG_BODY_UNTIL_CLOSE);
    }
}

static int response(const uint8_t *data, size_t len, tg_http_response_t *resp, tg_http_header_t *h)
{
    char *buf = malloc(len ? len : 1);
    int r;
    memcpy(buf, data, len);
    resp->headers = h;
    resp->num_headers = CAP;
    r = tg_http_parse_response(buf, len, resp);
    CHECK(r == TG_HTTP_INCOMPLETE || r == TG_HTTP_ERROR || (r > 0 && (size_t)r <= len));
    if (r == TG_HTTP_ERROR)
        CHECK(resp->error_reason != NULL);
    if (r > 0) {
        CHECK(resp->num_headers <= CAP);
        CHECK(resp->status >= 100 && resp->status <= 999);
        CHECK(inside(resp->reason, resp->reason_len, buf, (size_t)r));
        CHECK(resp->body_kind != TG_BODY_NONE);
        check_fields(h, resp->num_headers, buf, (size_t)r);
        check_response_framing(resp);
        CHECK(r >= 4 && memcmp(buf + r - 4, "\r\n\r\n", 4) == 0); /* no bare LF */
    }
    free(buf);
    return r;
}

static void fuzz_response(const uint8_t *data, size_t size)
{
    tg_http_response_t whole, part;
    tg_http_header_t h1[CAP], h2[CAP];
    int r = response(data, size, &whole, h1);
    if (size > MAX_PREFIX_SCAN)
        return;
    for (size_t k = 0; k < size; k++) {
        int rp = response(data, k, &part, h2);
        if (rp == TG_HTTP_INCOMPLETE)
            continue;
        CHECK(rp == r);
        break;
    }
}

typedef struct {
    tg_chunk_result_t r;
    size_t end;
    uint64_t data;
    int chunks;
} chunk_run_t;

/* Feeds the body first up to split, then step bytes at a time. */
static chunk_run_t chunked(const uint8_t *in, size_t len, size_t split, size_t step)
{
    chunk_run_t o = {TG_CHUNK_NEED_MORE, 0, 0, 0};
    tg_chunked_t d;
    size_t pos = 0, avail = split < len ? split : len, used;
    tg_chunked_init(&d, 64);
    for (;;) {
        tg_chunk_result_t r = tg_chunked_parse(&d, (const char *)in + pos, avail - pos, &used);
        CHECK(used <= avail - pos);
        pos += used;
        o.chunks += d.new_chunk;
        d.new_chunk = 0;
        CHECK(d.meta <= 64);
        if (r == TG_CHUNK_DATA) {
            size_t n = avail - pos;
            CHECK(d.remaining > 0 && d.remaining <= (UINT64_C(1) << 62));
            if (n > d.remaining)
                n = (size_t)d.remaining;
            pos += n;
            o.data += n;
            tg_chunked_consumed(&d, n);
            CHECK(d.total == o.data + d.remaining);
            if (n > 0 || d.remaining == 0)
                continue;
        } else if (r != TG_CHUNK_NEED_MORE) {
            CHECK(r == TG_CHUNK_DONE || d.error_reason != NULL);
            CHECK(tg_chunked_parse(&d, "0\r\n\r\n", 5, &used) == r && used == 0);
            o.r = r;
            o.end = r == TG_CHUNK_DONE ? pos : 0;
            return o;
        }
        if (avail == len)
            return o;
        avail = avail + step < len ? avail + step : len;
    }
}

static void fuzz_chunked(const uint8_t *data, size_t size)
{
    chunk_run_t a = chunked(data, size, size, 1);
    chunk_run_t b = chunked(data, size, 0, 1);
    chunk_run_t c = chunked(data, size, size / 2, 7);
    CHECK(a.r == b.r && a.r == c.r);
    CHECK(a.end == b.end && a.end == c.end);
    CHECK(a.data == b.data && a.data == c.data);
    CHECK(a.chunks == b.chunks && a.chunks == c.chunks);
}

static int is_unreserved(char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* What a valid host may contain (src/host.h): unreserved characters, at most
 * one ":port" of 1..65535, brackets only around an IPv6 literal. */
static void fuzz_host(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    if (tg_host_valid(buf, size)) {
        size_t end = size, i = 0;
        const char *colon;
        CHECK(size > 0);
        if (buf[0] == '[') {
            const char *rb = memchr(buf, ']', size);
            CHECK(rb != NULL);
            for (i = 1; buf + i < rb; i++)
                CHECK((buf[i] >= '0' && buf[i] <= '9') ||
                      ((buf[i] | 0x20) >= 'a' && (buf[i] | 0x20) <= 'f') || buf[i] == ':' ||
                      buf[i] == '.');
            i = (size_t)(rb - buf) + 1;
        }
        colon = memchr(buf + i, ':', size - i);
        if (colon != NULL) {
            unsigned long port = 0;
            end = (size_t)(colon - buf);
            CHECK(size - end >= 2 && size - end <= 6);
            for (const char *p = colon + 1; p < buf + size; p++) {
                CHECK(*p >= '0' && *p <= '9');
                port = port * 10 + (unsigned long)(*p - '0');
            }
            CHECK(port >= 1 && port <= 65535);
        }
        for (; i < end; i++)
            CHECK(is_unreserved(buf[i]));
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_host(data, size);
    fuzz_request(data, size);
    fuzz_response(data, size);
    fuzz_chunked(data, size);
    return 0;
}
