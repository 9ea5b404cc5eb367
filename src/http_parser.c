/*
 * Strict HTTP/1.x head parser (RFC 9110, RFC 9112).
 *
 * One left-to-right pass over the bytes received so far, re-run from the start
 * by the caller as more bytes arrive (picohttpparser style). Every decision
 * depends only on the bytes already seen, so feeding a message byte by byte
 * gives TG_HTTP_INCOMPLETE until the one-shot answer appears. The parser never
 * reads buf[len] or beyond.
 *
 * Rejected requests (error_status / error_reason), as strict as HAProxy
 * because every leniency here is a request smuggling vector:
 *   400  method not a token; not exactly one SP between the request-line parts;
 *        CTL, DEL or non-ASCII byte in the request-target; malformed version;
 *        bare LF or bare CR anywhere; whitespace before a header colon;
 *        header name not a token; NUL, CTL or DEL in a value; obs-fold;
 *        Content-Length not 1*DIGIT or above 2^63-1, or several differing
 *        values; Content-Length with Transfer-Encoding; any transfer coding
 *        other than one final "chunked"; Transfer-Encoding in HTTP/1.0;
 *        missing Host in HTTP/1.1; several Host fields; a Host value that
 *        is not empty and not a valid uri-host [":" port] (src/host.h).
 *   414  request-target longer than TG_MAX_TARGET.
 *   431  more header fields than the caller's capacity.
 *   505  well-formed HTTP version other than 1.0 and 1.1.
 *
 * Rejected responses (error_reason; the caller answers 502 and closes the
 * upstream connection): the same syntax and Content-Length rules; a status
 * that is not three digits from 100; Content-Length with Transfer-Encoding;
 * any transfer coding other than one "chunked"; Transfer-Encoding in HTTP/1.0;
 * a 1xx with Transfer-Encoding or a non-zero Content-Length.
 */
#include "http_parser.h"

#include <limits.h>
#include <string.h>

#include "host.h"

#define OK 0
#define INCOMPLETE TG_HTTP_INCOMPLETE
#define ERROR TG_HTTP_ERROR

/* RFC 9112 section 3 leaves the limit to us; 8 KiB is what nginx and HAProxy
 * accept by default. */
#define TG_MAX_TARGET 8192
/* RFC 9112 section 2.2: ignore "at least one" empty line before the
 * request-line; a few cover buggy clients, more is garbage. */
#define MAX_LEADING_CRLF 4
/* Content-Length above this cannot be a real body and would overflow int64. */
#define MAX_CONTENT_LENGTH ((uint64_t)INT64_MAX)

#define T TG_HTTP_C_TCHAR
#define V TG_HTTP_C_VCHAR
#define F TG_HTTP_C_FIELD
#define H TG_HTTP_C_HEX
#define Q TG_HTTP_C_QDTEXT

/* Values are bit sets of the classes above: 20 = F|Q (HTAB, SP, obs-text),
 * 22 = V|F|Q (delimiters), 23 = T|V|F|Q (token chars), 31 = hex digits too. */
/* clang-format off */
const unsigned char tg_http_ctype[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  20, 0,  0,  0,  0,  0,  0,  /* 0x00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
    20, 23, 6,  23, 23, 23, 23, 23, 22, 22, 23, 23, 22, 23, 23, 22, /* 0x20 */
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 22, 22, 22, 22, 22, 22, /* 0x30 */
    22, 31, 31, 31, 31, 31, 31, 23, 23, 23, 23, 23, 23, 23, 23, 23, /* 0x40 */
    23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 22, 6,  22, 23, 23, /* 0x50 */
    23, 31, 31, 31, 31, 31, 31, 23, 23, 23, 23, 23, 23, 23, 23, 23, /* 0x60 */
    23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 22, 23, 22, 23, 0,  /* 0x70 */
    20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, /* 0x80 */
    20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, /* 0x90 */
    20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, /* 0xA0 */
    20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, /* 0xB0 */
    20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, /* 0xC0 */
    20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, /* 0xD0 */
    20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, /* 0xE0 */
    20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, /* 0xF0 */
};
/* clang-format on */

#define IS(c, cls) (tg_http_ctype[(unsigned char)(c)] & (cls))
#define IS_OWS(c) ((c) == ' ' || (c) == '\t')
/* 0x20-0x7E and 0x21-0x7E without a table load: the common bytes of values
 * and targets. */
#define IS_PRINT(c) ((unsigned char)((c)-0x20) < 0x5F)
#define IS_VCHAR(c) ((unsigned char)((c)-0x21) < 0x5E)
#define LIKELY(x) __builtin_expect(!!(x), 1)

typedef const unsigned char *cur_t;

/* Everything the header section yields, for requests and responses alike. */
typedef struct {
    tg_http_header_t *headers;
    size_t cap, n;
    int is_request, minor;
    unsigned flags;
    int host_index, host_count;
    int have_cl, have_te;
    uint64_t cl;
    int status; /* error status for requests */
    const char *reason;
} head_t;

static int fail(head_t *h, int status, const char *reason)
{
    h->status = status;
    h->reason = reason;
    return ERROR;
}

/* Eight bytes lower-cased at once: exactly the bytes 'A'..'Z' get 0x20
 * (a plain `| 0x20` would also turn CR into '-'). */
static inline uint64_t lower8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull;
    uint64_t h = x & (0x7f * ones); /* no carry can cross a byte below */
    uint64_t ge_a = h + (0x80 - 'A') * ones, gt_z = h + (0x7f - 'Z') * ones;
    uint64_t upper = ge_a & ~gt_z & ~x & (0x80 * ones);
    return x | (upper >> 2);
}

static inline uint64_t load8(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Header names are compared for every field of every head: eight bytes at a
 * time, the last eight overlapping (the literal is already lower case). */
int tg_http_name_eq(const char *name, size_t len, const char *lower_literal, size_t lit_len)
{
    if (len != lit_len)
        return 0;
    if (len >= 8) {
        for (size_t i = 0; i + 8 < len; i += 8)
            if (lower8(load8(name + i)) != load8(lower_literal + i))
                return 0;
        return lower8(load8(name + len - 8)) == load8(lower_literal + len - 8);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + ('a' - 'A'));
        if (c != (unsigned char)lower_literal[i])
            return 0;
    }
    return 1;
}

#define EQ(s, n, lit) tg_http_name_eq(s, n, lit, sizeof(lit) - 1)

/* ---- line endings ---- */

/* At a CR or LF ending a line: RFC 9112 section 2.2 lets a recipient accept a
 * bare LF; we do not, because a front end that does would see other lines. */
static int eat_crlf(cur_t *pp, cur_t end, head_t *h)
{
    cur_t p = *pp;
    if (*p != '\r')
        return fail(h, 400, *p == '\n' ? "bare LF" : "invalid character at end of line");
    if (++p == end)
        return INCOMPLETE;
    if (*p != '\n')
        return fail(h, 400, "bare CR");
    *pp = p + 1;
    return OK;
}

/* ---- comma-separated lists (RFC 9110 section 5.6.1) ---- */

/* Next element of a list, OWS-trimmed; may be empty. Returns 0 at the end. */
static int list_next(const char **pp, const char *end, const char **elem, size_t *elen)
{
    const char *p = *pp, *s, *e;
    if (p == NULL)
        return 0;
    while (p < end && IS_OWS(*p))
        p++;
    s = p;
    while (p < end && *p != ',')
        p++;
    e = p;
    while (e > s && IS_OWS(e[-1]))
        e--;
    *elem = s;
    *elen = (size_t)(e - s);
    *pp = p < end ? p + 1 : NULL;
    return 1;
}

/* ---- framing fields ---- */

/* RFC 9110 section 8.6: 1*DIGIT; a list of identical values may be collapsed,
 * differing values are an error (RFC 9112 section 6.3 item 5). */
static int on_content_length(head_t *h, const char *v, size_t n)
{
    const char *it = v, *e;
    size_t elen;
    while (list_next(&it, v + n, &e, &elen)) {
        uint64_t x = 0;
        if (elen == 0)
            return fail(h, 400, "invalid Content-Length");
        for (size_t i = 0; i < elen; i++) {
            unsigned d = (unsigned)((unsigned char)e[i] - '0');
            if (d > 9)
                return fail(h, 400, "invalid Content-Length");
            if (x > (MAX_CONTENT_LENGTH - d) / 10)
                return fail(h, 400, "Content-Length too large");
            x = x * 10 + d;
        }
        if (h->have_cl && x != h->cl)
            return fail(h, 400, "conflicting Content-Length values");
        h->have_cl = 1;
        h->cl = x;
    }
    return OK;
}

/* RFC 9112 section 6.1: chunked must be the final coding and applied once.
 * We decode nothing else, in either direction: a request body we cannot frame
 * must be refused (section 6.3 item 4), and a response in another coding
 * ("gzip, chunked") would reach the client as undeclared gzip bytes once the
 * hop-by-hop Transfer-Encoding is gone; "chunked, gzip" could only be read
 * until close. nginx answers both with 502 too. */
static int on_transfer_encoding(head_t *h, const char *v, size_t n)
{
    const char *it = v, *e;
    size_t elen;
    int any = 0;
    /* section 6.1: TE in an HTTP/1.0 message means faulty framing */
    if (h->minor == 0)
        return fail(h, 400,
                    h->is_request ? "Transfer-Encoding in an HTTP/1.0 request"
                                  : "Transfer-Encoding in an HTTP/1.0 response");
    while (list_next(&it, v + n, &e, &elen)) {
        if (elen == 0)
            continue; /* RFC 9110 section 5.6.1: ignore empty elements */
        any = 1;
        if (!EQ(e, elen, "chunked"))
            return fail(h, 400, "unsupported transfer coding");
        if (h->have_te)
            return fail(h, 400, "chunked applied more than once");
        h->have_te = 1;
    }
    if (!any)
        return fail(h, 400, "empty Transfer-Encoding");
    return OK;
}

static void on_connection(head_t *h, const char *v, size_t n)
{
    const char *it = v, *e;
    size_t elen;
    while (list_next(&it, v + n, &e, &elen)) {
        if (EQ(e, elen, "close"))
            h->flags |= TG_HF_CONN_CLOSE;
        else if (EQ(e, elen, "keep-alive"))
            h->flags |= TG_HF_CONN_KEEPALIVE;
        else if (EQ(e, elen, "upgrade"))
            h->flags |= TG_HF_CONN_UPGRADE;
    }
}

static void on_expect(head_t *h, const char *v, size_t n)
{
    const char *it = v, *e;
    size_t elen;
    while (list_next(&it, v + n, &e, &elen)) {
        if (EQ(e, elen, "100-continue"))
            h->flags |= TG_HF_EXPECT_CONTINUE;
        else if (elen > 0)
            h->flags |= TG_HF_EXPECT_OTHER;
    }
}

static int on_host(head_t *h, const char *v, size_t n)
{
    /* RFC 9112 section 3.2: several Host fields or an invalid one -> 400 */
    if (h->host_count++ > 0)
        return fail(h, 400, "duplicate Host header");
    /* RFC 9110 section 7.2: empty when the target URI has no authority. */
    if (n > 0 && !tg_host_valid(v, n))
        return fail(h, 400, "invalid Host header");
    h->host_index = (int)h->n;
    return OK;
}

/* Called for each complete field line; the switch on the length keeps the
 * common case (a field we do not care about) to one or two compares. */
static int on_field(head_t *h, const tg_http_header_t *f)
{
    const char *nm = f->name, *v = f->value;
    size_t n = f->value_len;
    switch (f->name_len) {
    case 4:
        if (h->is_request && EQ(nm, 4, "host"))
            return on_host(h, v, n);
        break;
    case 6:
        if (h->is_request && EQ(nm, 6, "expect"))
            on_expect(h, v, n);
        break;
    case 7:
        if (EQ(nm, 7, "upgrade"))
            h->flags |= TG_HF_HAS_UPGRADE;
        break;
    case 10:
        if (EQ(nm, 10, "connection"))
            on_connection(h, v, n);
        break;
    case 14:
        if (EQ(nm, 14, "content-length"))
            return on_content_length(h, v, n);
        break;
    case 17:
        if (EQ(nm, 17, "transfer-encoding"))
            return on_transfer_encoding(h, v, n);
        break;
    }
    return OK;
}

/* ---- header section (RFC 9112 section 5) ---- */

static int field_name_error(head_t *h, unsigned char c, int empty)
{
    /* RFC 9112 section 5.1: no whitespace between name and colon, 400. */
    if (IS_OWS(c))
        return fail(h, 400,
                    empty ? "obs-fold or whitespace before field name"
                          : "whitespace between field name and colon");
    if (c == '\r' || c == '\n')
        return fail(h, 400, "header line without colon");
    return fail(h, 400, "invalid header name");
}

/* The two hottest loops: eight bytes per round while that many remain, so the
 * bound is checked once per round (as picohttpparser does). They return the
 * first byte that does not belong, or end. */
/* Eight value bytes none of which is a control character or DEL (0x80-0xFF
 * are obs-text, allowed): most words of a long value (a token, a cookie),
 * tested at once. */
static inline bool plain_word(cur_t p)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x80 * ones;
    uint64_t x, y;
    memcpy(&x, p, 8);
    y = x ^ (0x7f * ones);
    return (((x - 0x20 * ones) & ~x) | ((y - ones) & ~y)) & highs ? false : true;
}

static cur_t scan_value(cur_t p, cur_t end)
{
#define STEP                                 \
    if (!LIKELY(IS_PRINT(*p)) && !IS(*p, F)) \
        return p;                            \
    p++;
    while (end - p >= 8) {
        if (LIKELY(plain_word(p))) {
            p += 8;
            continue;
        }
        STEP STEP STEP STEP STEP STEP STEP STEP
    }
#undef STEP
    while (p < end && IS(*p, F))
        p++;
    return p;
}

static cur_t scan_token(cur_t p, cur_t end)
{
#define STEP                \
    if (!LIKELY(IS(*p, T))) \
        return p;           \
    p++;
    while (end - p >= 8) {
        STEP STEP STEP STEP STEP STEP STEP STEP
    }
#undef STEP
    while (p < end && IS(*p, T))
        p++;
    return p;
}

static cur_t scan_target(cur_t p, cur_t end)
{
#define STEP                   \
    if (!LIKELY(IS_VCHAR(*p))) \
        return p;              \
    p++;
    while (end - p >= 8) {
        STEP STEP STEP STEP STEP STEP STEP STEP
    }
#undef STEP
    while (p < end && IS_VCHAR(*p))
        p++;
    return p;
}

/* One "name: value CRLF" line, p at its first byte (not CR/LF/SP/HTAB). */
static int parse_field(cur_t *pp, cur_t end, head_t *h, tg_http_header_t *f)
{
    cur_t p = scan_token(*pp, end), name = *pp, val, ve;
    int r;
    if (p == end)
        return INCOMPLETE;
    if (*p != ':' || p == name)
        return field_name_error(h, *p, p == name);
    f->name = (const char *)name;
    f->name_len = (size_t)(p - name);
    p++;
    while (p < end && IS_OWS(*p))
        p++;
    val = p;
    p = scan_value(p, end);
    if (p == end)
        return INCOMPLETE;
    if (*p != '\r' && *p != '\n')
        return fail(h, 400, "invalid character in header value");
    for (ve = p; ve > val && IS_OWS(ve[-1]); ve--)
        ;
    f->value = (const char *)val;
    f->value_len = (size_t)(ve - val);
    if ((r = eat_crlf(&p, end, h)) != OK)
        return r;
    *pp = p;
    return OK;
}

static int parse_headers(cur_t *pp, cur_t end, head_t *h)
{
    cur_t p = *pp;
    int r;
    for (;;) {
        if (p == end)
            return INCOMPLETE;
        if (*p == '\r' || *p == '\n') {
            if ((r = eat_crlf(&p, end, h)) != OK)
                return r;
            *pp = p;
            return OK;
        }
        /* RFC 9112 section 5.2: obs-fold is rejected with 400 (also a
         * leading SP/HTAB right after the start-line, section 2.2). */
        if (IS_OWS(*p))
            return fail(h, 400, "obs-fold in header section");
        if (h->n == h->cap)
            return fail(h, 431, "too many header fields");
        if ((r = parse_field(&p, end, h, &h->headers[h->n])) != OK)
            return r;
        if ((r = on_field(h, &h->headers[h->n])) != OK)
            return r;
        h->n++;
    }
}

/* "HTTP/" DIGIT "." DIGIT (RFC 9112 section 2.3, case-sensitive). */
static int parse_version(cur_t *pp, cur_t end, head_t *h, int *minor)
{
    cur_t p = *pp;
    for (int i = 0; i < 8; i++) {
        unsigned char c;
        if (p + i == end)
            return INCOMPLETE;
        c = p[i];
        if (i < 5 ? c != (unsigned char)"HTTP/"[i] : i == 6 ? c != '.' : (c < '0' || c > '9'))
            return fail(h, 400, "invalid HTTP version");
    }
    if (p[5] != '1' || p[7] > '1')
        return fail(h, 505, "HTTP version not supported");
    *minor = p[7] - '0';
    *pp = p + 8;
    return OK;
}

static void head_init(head_t *h, tg_http_header_t *headers, size_t cap, int is_request)
{
    memset(h, 0, sizeof(*h));
    h->headers = headers;
    h->cap = headers ? cap : 0;
    h->is_request = is_request;
    h->host_index = -1;
}

static int head_len(cur_t p, const char *buf)
{
    return (int)((const char *)p - buf);
}

/* ---- requests ---- */

/* RFC 9112 section 2.2: skip a few empty lines left over from a previous
 * message. */
static int skip_empty_lines(cur_t *pp, cur_t end, head_t *h)
{
    int r;
    for (int i = 0;; i++) {
        if (*pp == end)
            return INCOMPLETE;
        if (**pp != '\r' && **pp != '\n')
            return OK;
        if (i == MAX_LEADING_CRLF)
            return fail(h, 400, "too many empty lines before request line");
        if ((r = eat_crlf(pp, end, h)) != OK)
            return r;
    }
}

/* RFC 9112 section 3.2: origin-form, absolute-form, authority-form (these
 * two contain a colon) or "*" for OPTIONS only. */
static int check_target_form(const tg_http_request_t *req, head_t *h)
{
    const char *t = req->target;
    if (t[0] == '/')
        return OK;
    if (req->target_len == 1 && t[0] == '*') /* methods are case-sensitive */
        return req->method_len == 7 && memcmp(req->method, "OPTIONS", 7) == 0
                   ? OK
                   : fail(h, 400, "asterisk-form request-target without OPTIONS");
    if (memchr(t, ':', req->target_len) != NULL)
        return OK;
    return fail(h, 400, "invalid request-target");
}

static int parse_request_line(cur_t *pp, cur_t end, tg_http_request_t *req, head_t *h)
{
    cur_t p = *pp, s = p, lim;
    int r;
    /* method SP (RFC 9112 section 3: exactly one SP) */
    while (p < end && IS(*p, T))
        p++;
    if (p == end)
        return INCOMPLETE;
    if (*p != ' ' || p == s)
        return fail(h, 400, "invalid method");
    req->method = (const char *)s;
    req->method_len = (size_t)(p - s);
    s = ++p;
    /* request-target SP; scanning stops one byte past the limit */
    lim = (size_t)(end - p) > TG_MAX_TARGET ? p + TG_MAX_TARGET + 1 : end;
    p = scan_target(p, lim);
    if (p - s > TG_MAX_TARGET)
        return fail(h, 414, "request-target too long");
    if (p == end)
        return INCOMPLETE;
    if (*p != ' ' || p == s)
        return fail(h, 400,
                    p == s                     ? "invalid request-target"
                    : *p == '\r' || *p == '\n' ? "missing HTTP version"
                                               : "invalid character in request-target");
    req->target = (const char *)s;
    req->target_len = (size_t)(p - s);
    if ((r = check_target_form(req, h)) != OK)
        return r;
    p++;
    if ((r = parse_version(&p, end, h, &req->minor_version)) != OK)
        return r;
    h->minor = req->minor_version;
    if (p == end)
        return INCOMPLETE;
    if ((r = eat_crlf(&p, end, h)) != OK)
        return r;
    *pp = p;
    return OK;
}

/* RFC 9112 section 6.3 items 3-6 for requests, once the head is complete. */
static int request_framing(tg_http_request_t *req, head_t *h)
{
    if (h->have_te && h->have_cl)
        return fail(h, 400, "both Content-Length and Transfer-Encoding");
    if (h->minor == 1 && h->host_count == 0)
        return fail(h, 400, "missing Host header");
    if (h->have_te) {
        req->body_kind = TG_BODY_CHUNKED;
    } else if (h->have_cl) {
        req->body_kind = TG_BODY_LENGTH;
        req->content_length = h->cl;
    }
    return OK;
}

static int request_done(tg_http_request_t *req, head_t *h, int r)
{
    req->flags = h->flags;
    req->host_index = h->host_index;
    if (r == INCOMPLETE)
        return r;
    req->num_headers = h->n;
    if (r == ERROR) {
        req->error_status = h->status;
        req->error_reason = h->reason;
    }
    return r;
}

int tg_http_parse_request(const char *buf, size_t len, tg_http_request_t *req)
{
    cur_t p = (cur_t)buf, end;
    head_t h;
    int r;
    if (len > INT_MAX)
        len = INT_MAX; /* a head that large is refused by the caller's limit */
    end = p + len;
    head_init(&h, req->headers, req->num_headers, 1);
    req->method = req->target = NULL;
    req->method_len = req->target_len = 0;
    req->minor_version = -1;
    req->body_kind = TG_BODY_NONE;
    req->content_length = 0;
    req->error_status = 0;
    req->error_reason = NULL;
    if ((r = skip_empty_lines(&p, end, &h)) == OK &&
        (r = parse_request_line(&p, end, req, &h)) == OK &&
        (r = parse_headers(&p, end, &h)) == OK && (r = request_framing(req, &h)) == OK)
        r = head_len(p, buf);
    return request_done(req, &h, r);
}

/* ---- responses ---- */

/* status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
 * (RFC 9112 section 4); the SP before an empty reason is often missing. */
static int parse_status_line(cur_t *pp, cur_t end, tg_http_response_t *resp, head_t *h)
{
    cur_t p = *pp, s;
    int r, st = 0;
    if ((r = parse_version(&p, end, h, &resp->minor_version)) != OK)
        return r;
    for (int i = 0; i < 4; i++, p++) {
        if (p == end)
            return INCOMPLETE;
        if (i == 0 ? *p != ' ' : (*p < '0' || *p > '9' || (i == 1 && *p == '0')))
            return fail(h, 0, "invalid status line");
        if (i > 0)
            st = st * 10 + (*p - '0');
    }
    resp->status = st;
    if (p == end)
        return INCOMPLETE;
    if (*p == ' ')
        p++;
    else if (*p != '\r' && *p != '\n')
        return fail(h, 0, "invalid status line");
    s = p;
    while (p < end && IS(*p, F))
        p++;
    if (p == end)
        return INCOMPLETE;
    resp->reason = (const char *)s;
    resp->reason_len = (size_t)(p - s);
    if ((r = eat_crlf(&p, end, h)) != OK)
        return r;
    *pp = p;
    return OK;
}

/* RFC 9112 section 6.3 items 3-7 (the method and status rules are applied
 * later by tg_http_response_body). An upstream is held to the rules a client
 * is: every framing the gateway would have to guess at is an error, so that
 * the response is never forwarded and its connection never reused. */
static int response_framing(tg_http_response_t *resp, head_t *h)
{
    /* item 3: "ought to be handled as an error" */
    if (h->have_te && h->have_cl)
        return fail(h, 0, "both Content-Length and Transfer-Encoding");
    /* RFC 9110 section 8.6 and RFC 9112 section 6.1: a 1xx has no body and
     * carries neither; what would follow it is the next head. "Content-Length:
     * 0" announces nothing and some servers send it on a 101. */
    if (resp->status < 200 && (h->have_te || h->cl > 0))
        return fail(h, 0, "1xx response with body framing");
    if (h->have_te) {
        resp->body_kind = TG_BODY_CHUNKED;
    } else if (h->have_cl) {
        resp->body_kind = TG_BODY_LENGTH;
        resp->content_length = h->cl;
    } else {
        resp->body_kind = TG_BODY_UNTIL_CLOSE;
    }
    return OK;
}

int tg_http_parse_response(const char *buf, size_t len, tg_http_response_t *resp)
{
    cur_t p = (cur_t)buf, end;
    head_t h;
    int r;
    if (len > INT_MAX)
        len = INT_MAX;
    end = p + len;
    head_init(&h, resp->headers, resp->num_headers, 0);
    resp->minor_version = -1;
    resp->status = 0;
    resp->reason = NULL;
    resp->reason_len = 0;
    resp->body_kind = TG_BODY_UNTIL_CLOSE;
    resp->content_length = 0;
    resp->error_reason = NULL;
    if ((r = parse_status_line(&p, end, resp, &h)) == OK) {
        h.minor = resp->minor_version;
        r = parse_headers(&p, end, &h);
    }
    if (r == OK && (r = response_framing(resp, &h)) == OK)
        r = head_len(p, buf);
    resp->flags = h.flags;
    if (r != INCOMPLETE)
        resp->num_headers = h.n;
    if (r == ERROR)
        resp->error_reason = h.reason;
    return r;
}

tg_body_kind_t tg_http_response_body(const tg_http_response_t *resp, int request_was_head)
{
    /* RFC 9112 section 6.3 item 1 */
    if (request_was_head || resp->status < 200 || resp->status == 204 || resp->status == 304)
        return TG_BODY_NONE;
    return resp->body_kind;
}

bool tg_http_response_reusable(const tg_http_response_t *resp, int request_was_head)
{
    if (tg_http_response_body(resp, request_was_head) == TG_BODY_UNTIL_CLOSE ||
        (resp->flags & TG_HF_CONN_CLOSE))
        return false;
    if (resp->minor_version == 0 && !(resp->flags & TG_HF_CONN_KEEPALIVE))
        return false;
    /* RFC 9110 section 8.6 / RFC 9112 section 6.1: a 204 carries neither
     * field. One that announces a body may still send it: the bytes could
     * only be read as the next response, so the connection ends here. HEAD
     * and 304 answers describe the representation: their fields are fine. */
    return !(resp->status == 204 && !request_was_head &&
             (resp->body_kind == TG_BODY_CHUNKED ||
              (resp->body_kind == TG_BODY_LENGTH && resp->content_length > 0)));
}
