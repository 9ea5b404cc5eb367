/*
 * Reading HTTP caching fields: Cache-Control directives (RFC 9111 section
 * 5.2, RFC 5861), HTTP dates (RFC 9110 section 5.6.7), entity-tag matching
 * (RFC 9110 section 13.1.2).
 */
#include "cache_policy.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include "tollgate/text.h"

/* RFC 9111 section 1.2.2: delta-seconds past 2^31 are taken as 2^31. */
#define DELTA_MAX 2147483648LL

void tg_cc_init(tg_cc_t *cc)
{
    memset(cc, 0, sizeof(*cc));
    cc->max_age = cc->s_maxage = cc->swr = cc->sie = -1;
}

int64_t tg_delta_seconds(const char *v, size_t len)
{
    if (len == 0)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        if (n < DELTA_MAX)
            n = n * 10 + (v[i] - '0');
    }
    return n < DELTA_MAX ? n : DELTA_MAX;
}

/* A directive's argument: a token or a quoted-string (quotes dropped). */
static int64_t arg_seconds(const char *v, size_t len)
{
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"')
        return tg_delta_seconds(v + 1, len - 2);
    return tg_delta_seconds(v, len);
}

static bool is(const char *name, size_t nlen, const char *want)
{
    return strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
}

static void directive(tg_cc_t *cc, const char *d, size_t len)
{
    const char *eq = memchr(d, '=', len);
    size_t nlen = eq != NULL ? (size_t)(eq - d) : len;
    const char *arg = eq != NULL ? eq + 1 : NULL;
    size_t alen = eq != NULL ? len - nlen - 1 : 0;
    cc->any = true;
    if (is(d, nlen, "max-age") && arg != NULL)
        cc->max_age = arg_seconds(arg, alen);
    else if (is(d, nlen, "s-maxage") && arg != NULL)
        cc->s_maxage = arg_seconds(arg, alen);
    else if (is(d, nlen, "stale-while-revalidate") && arg != NULL)
        cc->swr = arg_seconds(arg, alen);
    else if (is(d, nlen, "stale-if-error") && arg != NULL)
        cc->sie = arg_seconds(arg, alen);
    else if (is(d, nlen, "no-store"))
        cc->no_store = true;
    else if (is(d, nlen, "no-cache"))
        cc->no_cache = true;
    else if (is(d, nlen, "private"))
        cc->private_ = true;
    else if (is(d, nlen, "public"))
        cc->public_ = true;
    else if (is(d, nlen, "must-revalidate"))
        cc->must_revalidate = true;
    else if (is(d, nlen, "proxy-revalidate"))
        cc->proxy_revalidate = true;
    /* An invalid max-age (say "max-age=abc") means stale (section 4.2.1):
     * arg_seconds() gave -1, which reads as absent; make it 0. */
    if ((is(d, nlen, "max-age") || is(d, nlen, "s-maxage")) && arg != NULL &&
        arg_seconds(arg, alen) < 0) {
        if (is(d, nlen, "max-age"))
            cc->max_age = 0;
        else
            cc->s_maxage = 0;
    }
}

void tg_cc_parse(const char *v, size_t len, tg_cc_t *cc)
{
    size_t pos = 0;
    tg_span_t el;
    while (tg_list_next(v, len, &pos, &el))
        if (el.len > 0)
            directive(cc, el.p, el.len);
}

int64_t tg_http_date(const char *v, size_t len)
{
    static const char *const formats[] = {
        "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
        "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
        "%a %b %e %H:%M:%S %Y",      /* asctime */
    };
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *end = strptime(buf, formats[i], &tm);
        if (end != NULL && *end == '\0')
            return (int64_t)timegm(&tm);
    }
    return -1;
}

/* The opaque-tag of an entity-tag, W/ prefix dropped (weak comparison). */
static void opaque(const char *v, size_t len, const char **o, size_t *olen)
{
    if (len >= 2 && v[0] == 'W' && v[1] == '/') {
        v += 2;
        len -= 2;
    }
    *o = v;
    *olen = len;
}

bool tg_etag_match(const char *v, size_t len, const char *et)
{
    if (et == NULL)
        return false;
    const char *eo;
    size_t eolen;
    opaque(et, strlen(et), &eo, &eolen);
    size_t pos = 0;
    tg_span_t el;
    while (tg_list_next(v, len, &pos, &el)) {
        const char *o;
        size_t olen;
        if (el.len == 1 && el.p[0] == '*')
            return true;
        opaque(el.p, el.len, &o, &olen);
        if (olen == eolen && memcmp(o, eo, olen) == 0)
            return true;
    }
    return false;
}
