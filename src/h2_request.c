#include "h2_request.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tollgate/text.h"

int tg_h2_req_init(tg_h2_req_t *r, uint32_t max_list_size)
{
    memset(r, 0, sizeof(*r));
    r->max_list_size = max_list_size;
    return 0;
}

void tg_h2_req_free(tg_h2_req_t *r)
{
    if (r->cookies != NULL)
        evbuffer_free(r->cookies);
    free(r->fields);
    free(r->text);
    r->cookies = NULL;
    r->fields = r->text = NULL;
    r->fields_cap = r->text_cap = 0;
}

/* Buffers a usual head fits in are kept for the next one; a large one's go. */
#define KEEP_CAP 1024

void tg_h2_req_reset(tg_h2_req_t *r)
{
    if (r->cookies != NULL)
        evbuffer_free(r->cookies);
    if (r->fields_cap > KEEP_CAP || r->text_cap > KEEP_CAP) {
        r->cookies = NULL;
        tg_h2_req_free(r);
    }
    tg_h2_req_t keep = {.max_list_size = r->max_list_size,
                        .fields = r->fields,
                        .fields_cap = r->fields_cap,
                        .text = r->text,
                        .text_cap = r->text_cap};
    *r = keep;
}

/* Room for n more bytes in a grown buffer. */
static int reserve(char **buf, size_t len, size_t *cap, size_t n)
{
    if (len + n <= *cap)
        return 0;
    size_t c = *cap ? *cap : 128;
    while (c < len + n)
        c *= 2;
    char *t = realloc(*buf, c);
    if (t == NULL)
        return -1;
    *buf = t;
    *cap = c;
    return 0;
}

/* Appends v to text; its offset in *at. */
static int keep_text(tg_h2_req_t *r, const uint8_t *v, size_t vl, size_t *at, size_t *len)
{
    if (reserve(&r->text, r->text_len, &r->text_cap, vl) < 0)
        return -1;
    memcpy(r->text + r->text_len, v, vl);
    *at = r->text_len;
    *len = vl;
    r->text_len += vl;
    return 0;
}

static int fail(tg_h2_req_t *r, int status, const char *reason)
{
    if (r->status == TG_H2_REQ_OK) {
        r->status = status;
        r->reason = reason;
    }
    return r->status;
}

static bool name_is(const uint8_t *n, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(n, lit, len) == 0;
}

/* RFC 9113 section 8.2.1: a field name is a token in lower case. */
static bool lower_token(const uint8_t *n, size_t len)
{
    if (!tg_token_valid((const char *)n, len))
        return false;
    for (size_t i = 0; i < len; i++)
        if (n[i] >= 'A' && n[i] <= 'Z')
            return false;
    return true;
}

/* RFC 9113 section 8.2.2: fields that only mean something to an HTTP/1.1
 * connection make the request malformed; TE may only say "trailers". */
static const char *connection_specific(const uint8_t *n, size_t nl, const uint8_t *v, size_t vl)
{
    if (name_is(n, nl, "connection") || name_is(n, nl, "proxy-connection") ||
        name_is(n, nl, "keep-alive") || name_is(n, nl, "transfer-encoding") ||
        name_is(n, nl, "upgrade"))
        return "connection-specific header field";
    if (name_is(n, nl, "te") && !(vl == 8 && strncasecmp((const char *)v, "trailers", 8) == 0))
        return "te other than trailers";
    return NULL;
}

static int pseudo(tg_h2_req_t *r, const uint8_t *n, size_t nl, const uint8_t *v, size_t vl)
{
    unsigned bit = name_is(n, nl, ":method")      ? TG_H2_PS_METHOD
                   : name_is(n, nl, ":scheme")    ? TG_H2_PS_SCHEME
                   : name_is(n, nl, ":authority") ? TG_H2_PS_AUTHORITY
                   : name_is(n, nl, ":path")      ? TG_H2_PS_PATH
                                                  : 0;
    /* RFC 9113 section 8.3: only these (no :protocol: RFC 8441 is not
     * offered), each once, all before the regular fields. */
    if (bit == 0)
        return fail(r, TG_H2_REQ_MALFORMED, "unknown pseudo-header");
    if (r->regular_seen)
        return fail(r, TG_H2_REQ_MALFORMED, "pseudo-header after a regular field");
    if (r->pseudo & bit)
        return fail(r, TG_H2_REQ_MALFORMED, "repeated pseudo-header");
    r->pseudo |= bit;
    switch (bit) {
    case TG_H2_PS_METHOD:
        if (vl == 0 || vl >= sizeof(r->method) || !tg_token_valid((const char *)v, vl))
            return fail(r, TG_H2_REQ_MALFORMED, "invalid :method");
        memcpy(r->method, v, vl);
        r->method_len = vl;
        return 0;
    case TG_H2_PS_SCHEME:
        if (vl == 0 || vl >= sizeof(r->scheme) || !tg_token_valid((const char *)v, vl))
            return fail(r, TG_H2_REQ_MALFORMED, "invalid :scheme");
        memcpy(r->scheme, v, vl);
        r->scheme_len = vl;
        return 0;
    case TG_H2_PS_AUTHORITY:
        /* No userinfo (RFC 9113 section 8.3.1); the rest is checked as a Host. */
        if (memchr(v, '@', vl) != NULL || memchr(v, ' ', vl) != NULL)
            return fail(r, TG_H2_REQ_MALFORMED, "invalid :authority");
        if (keep_text(r, v, vl, &r->authority_at, &r->authority_len) < 0)
            return fail(r, TG_H2_REQ_TOO_LARGE, "out of memory");
        return 0;
    default:
        if (vl == 0)
            return fail(r, TG_H2_REQ_MALFORMED, "empty :path");
        if (memchr(v, ' ', vl) != NULL)
            return fail(r, TG_H2_REQ_MALFORMED, "invalid :path");
        if (keep_text(r, v, vl, &r->path_at, &r->path_len) < 0)
            return fail(r, TG_H2_REQ_TOO_LARGE, "out of memory");
        return 0;
    }
}

int tg_h2_req_field(tg_h2_req_t *r, const uint8_t *n, size_t nl, const uint8_t *v, size_t vl)
{
    uint64_t size = (uint64_t)r->list_size + nl + vl + TG_H2_FIELD_OVERHEAD;
    r->list_size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
    if (r->list_size > r->max_list_size)
        fail(r, TG_H2_REQ_TOO_LARGE, "header list too large");
    if (r->status != TG_H2_REQ_OK)
        return r->status;
    /* HPACK may carry any octet: what HTTP/1.1 could not, HTTP/2 may not
     * either (RFC 9113 section 8.2.1). */
    if (!tg_field_value_valid((const char *)v, vl))
        return fail(r, TG_H2_REQ_MALFORMED, "invalid field value");
    if (nl > 0 && n[0] == ':')
        return pseudo(r, n, nl, v, vl);
    r->regular_seen = true;
    if (!lower_token(n, nl))
        return fail(r, TG_H2_REQ_MALFORMED, "invalid field name");
    const char *why = connection_specific(n, nl, v, vl);
    if (why != NULL)
        return fail(r, TG_H2_REQ_MALFORMED, why);
    if (name_is(n, nl, "cookie")) {
        if (r->cookies == NULL && (r->cookies = evbuffer_new()) == NULL)
            return fail(r, TG_H2_REQ_TOO_LARGE, "out of memory");
        if (evbuffer_get_length(r->cookies) > 0)
            evbuffer_add(r->cookies, "; ", 2);
        evbuffer_add(r->cookies, v, vl);
        return 0;
    }
    if (name_is(n, nl, "host")) {
        if (r->has_host)
            return fail(r, TG_H2_REQ_MALFORMED, "repeated host");
        r->has_host = true;
        if (keep_text(r, v, vl, &r->host_at, &r->host_len) < 0)
            return fail(r, TG_H2_REQ_TOO_LARGE, "out of memory");
        return 0; /* written by tg_h2_req_finish, from :authority when present */
    }
    if (name_is(n, nl, "content-length"))
        r->has_content_length = true;
    if (reserve(&r->fields, r->fields_len, &r->fields_cap, nl + vl + 4) < 0)
        return fail(r, TG_H2_REQ_TOO_LARGE, "out of memory");
    char *w = r->fields + r->fields_len;
    memcpy(w, n, nl);
    memcpy(w + nl, ": ", 2);
    memcpy(w + nl + 2, v, vl);
    memcpy(w + nl + 2 + vl, "\r\n", 2);
    r->fields_len += nl + vl + 4;
    return 0;
}

/* RFC 9113 section 8.3.1: :method, and (but for CONNECT) a non-empty
 * :scheme and :path; CONNECT carries :authority only. */
static int check_pseudo(tg_h2_req_t *r)
{
    if (!(r->pseudo & TG_H2_PS_METHOD))
        return fail(r, TG_H2_REQ_MALFORMED, "missing :method");
    bool connect = r->method_len == 7 && memcmp(r->method, "CONNECT", 7) == 0;
    if (connect) {
        if ((r->pseudo & (TG_H2_PS_SCHEME | TG_H2_PS_PATH)) || !(r->pseudo & TG_H2_PS_AUTHORITY))
            return fail(r, TG_H2_REQ_MALFORMED, "invalid CONNECT pseudo-headers");
        return 0;
    }
    if (!(r->pseudo & TG_H2_PS_SCHEME) || !(r->pseudo & TG_H2_PS_PATH))
        return fail(r, TG_H2_REQ_MALFORMED, "missing :scheme or :path");
    const char *p = r->text + r->path_at;
    size_t pl = r->path_len;
    bool options_star =
        pl == 1 && p[0] == '*' && r->method_len == 7 && memcmp(r->method, "OPTIONS", 7) == 0;
    if (p[0] != '/' && !options_star)
        return fail(r, TG_H2_REQ_MALFORMED, "invalid :path");
    /* :authority and Host name the same thing, or the request is malformed:
     * which one a router or an upstream believes must not differ. */
    if ((r->pseudo & TG_H2_PS_AUTHORITY) && r->has_host &&
        (r->authority_len != r->host_len ||
         strncasecmp(r->text + r->authority_at, r->text + r->host_at, r->host_len) != 0))
        return fail(r, TG_H2_REQ_MALFORMED, ":authority and host differ");
    return 0;
}

int tg_h2_req_finish(tg_h2_req_t *r, bool end_stream, struct evbuffer *out, bool *chunked)
{
    *chunked = false;
    if (r->status != TG_H2_REQ_OK || check_pseudo(r) != 0)
        return r->status;
    bool connect = !(r->pseudo & TG_H2_PS_PATH);
    evbuffer_add(out, r->method, r->method_len);
    evbuffer_add(out, " ", 1);
    if (connect)
        evbuffer_add(out, r->text + r->authority_at, r->authority_len);
    else
        evbuffer_add(out, r->text + r->path_at, r->path_len);
    evbuffer_add(out, " HTTP/1.1\r\n", 11);
    /* :authority becomes Host; without it, the client's Host is kept. */
    bool authority = (r->pseudo & TG_H2_PS_AUTHORITY) && (r->authority_len > 0 || connect);
    if (authority || r->has_host) {
        evbuffer_add(out, "host: ", 6);
        if (authority)
            evbuffer_add(out, r->text + r->authority_at, r->authority_len);
        else
            evbuffer_add(out, r->text + r->host_at, r->host_len);
        evbuffer_add(out, "\r\n", 2);
    }
    evbuffer_add(out, r->fields, r->fields_len);
    if (r->cookies != NULL && evbuffer_get_length(r->cookies) > 0) {
        evbuffer_add(out, "cookie: ", 8);
        evbuffer_add_buffer(out, r->cookies);
        evbuffer_add(out, "\r\n", 2);
    }
    if (!end_stream && !r->has_content_length) {
        evbuffer_add(out, "transfer-encoding: chunked\r\n", 28);
        *chunked = true;
    }
    evbuffer_add(out, "\r\n", 2);
    return TG_H2_REQ_OK;
}
