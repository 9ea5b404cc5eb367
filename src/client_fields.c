#include "client_fields.h"

#include <string.h>

#include "field_list.h"

static unsigned char fold(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (unsigned char)(c + ('a' - 'A'));
    return c == '_' ? '-' : c;
}

bool tg_field_name_folded_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (fold((unsigned char)a[i]) != fold((unsigned char)b[i]))
            return false;
    return true;
}

typedef enum {
    F_OTHER = 0,
    F_HOP,        /* RFC 9110 section 7.6.1 plus Proxy-Connection */
    F_FORWARDING, /* says who the client is or how it came: only a trusted peer's counts */
    F_GATEWAY,    /* read by the core and written by it toward the upstream */
} field_class_t;

/* Plugins may not set these (request.h): OWN_REQ in requests, OWN_RESP in
 * responses. The gateway writes its own Host, framing, X-Request-Id and
 * X-Forwarded-For toward the upstream, and framing and X-Request-Id toward
 * the client; the other forwarding fields a plugin sets are passed on. */
enum { OWN_REQ = 1, OWN_RESP = 2, OWN_BOTH = 3 };

#define K(lit, cls, own)               \
    {                                  \
        lit, sizeof(lit) - 1, cls, own \
    }
static const struct {
    const char *name;
    size_t len;
    field_class_t cls;
    unsigned owned;
} known[] = {
    K("connection", F_HOP, OWN_BOTH),
    K("keep-alive", F_HOP, OWN_BOTH),
    K("te", F_HOP, OWN_BOTH),
    K("trailer", F_HOP, OWN_BOTH),
    K("transfer-encoding", F_HOP, OWN_BOTH),
    K("upgrade", F_HOP, OWN_BOTH),
    K("proxy-connection", F_HOP, OWN_BOTH),
    K("x-forwarded-for", F_FORWARDING, OWN_REQ),
    K("x-forwarded-proto", F_FORWARDING, 0),
    K("x-forwarded-host", F_FORWARDING, 0),
    K("x-forwarded-port", F_FORWARDING, 0),
    K("x-forwarded-prefix", F_FORWARDING, 0),
    K("forwarded", F_FORWARDING, 0),
    K("x-real-ip", F_FORWARDING, 0),
    K("host", F_GATEWAY, OWN_REQ),
    K("content-length", F_GATEWAY, OWN_BOTH),
    K("expect", F_GATEWAY, OWN_REQ),
    K("x-request-id", F_GATEWAY, OWN_BOTH),
};
#undef K

/* Runs for every field a request carries and every one a plugin adds: the
 * length and the first character rule out nearly every entry before a
 * character-by-character comparison (the known names start with a letter,
 * stored lowercase). */
static int find_known(const char *name, size_t len)
{
    if (len == 0)
        return -1;
    unsigned char c0 = fold((unsigned char)name[0]);
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (known[i].len == len && (unsigned char)known[i].name[0] == c0 &&
            tg_field_name_folded_eq(name, len, known[i].name, known[i].len))
            return (int)i;
    return -1;
}

static field_class_t classify(const tg_http_header_t *h)
{
    int i = find_known(h->name, h->name_len);
    return i < 0 ? F_OTHER : known[i].cls;
}

bool tg_field_gateway_owned(const char *name, size_t len, bool response)
{
    int i = find_known(name, len);
    return i >= 0 && (known[i].owned & (response ? OWN_RESP : OWN_REQ));
}

typedef struct {
    tg_span_t opt[TG_MAX_CONN_OPTIONS];
    unsigned n;
} options_t;

/* The options of every Connection field line (RFC 9110 section 7.6.1). */
static int connection_options(const tg_http_header_t *hs, size_t n, options_t *o)
{
    o->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (!TG_HTTP_NAME_IS(&hs[i], "connection"))
            continue;
        size_t pos = 0;
        tg_span_t e;
        while (tg_list_next(hs[i].value, hs[i].value_len, &pos, &e)) {
            if (o->n == TG_MAX_CONN_OPTIONS)
                return -1;
            o->opt[o->n++] = e;
        }
    }
    return 0;
}

static bool named_in_connection(const tg_http_header_t *h, const options_t *o)
{
    for (unsigned i = 0; i < o->n; i++)
        if (tg_field_name_folded_eq(o->opt[i].p, o->opt[i].len, h->name, h->name_len))
            return true;
    return false;
}

static bool has_underscore(const tg_http_header_t *h)
{
    return memchr(h->name, '_', h->name_len) != NULL;
}

/* Whether field h stays. */
static bool keep(const tg_http_header_t *h, const tg_client_fields_policy_t *p, const options_t *o)
{
    bool underscore = has_underscore(h);
    switch (classify(h)) {
    case F_HOP:
        return false;
    case F_FORWARDING:
        if (!p->trusted_peer || underscore)
            return false;
        break;
    case F_GATEWAY:
        if (underscore)
            return false;
        break;
    case F_OTHER:
        break;
    }
    if (underscore && p->underscores != TG_UNDERSCORES_ALLOW)
        return false;
    return !named_in_connection(h, o);
}

int tg_client_fields_filter(tg_http_header_t *hs, size_t *n, const tg_client_fields_policy_t *p,
                            int *track, const char **reason)
{
    options_t o;
    for (size_t i = 0; p->underscores == TG_UNDERSCORES_REJECT && i < *n; i++) {
        if (has_underscore(&hs[i])) {
            *reason = "underscore in header field name";
            return -1;
        }
    }
    if (connection_options(hs, *n, &o) < 0) {
        *reason = "too many Connection options";
        return -1;
    }
    size_t w = 0;
    int moved = -1;
    for (size_t i = 0; i < *n; i++) {
        if (!keep(&hs[i], p, &o))
            continue;
        if (track != NULL && *track == (int)i)
            moved = (int)w;
        /* o.opt points into field values, never into hs itself: moving is safe. */
        hs[w++] = hs[i];
    }
    *n = w;
    if (track != NULL)
        *track = moved;
    return 0;
}
