/* jwt plugin: token cookies (jwt_source.h). */
#include "jwt_source.h"

#include <stdbool.h>
#include <string.h>

#include "tollgate/text.h"

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static tg_span_t trim(const char *p, size_t len)
{
    while (len > 0 && is_ows(p[0])) {
        p++;
        len--;
    }
    while (len > 0 && is_ows(p[len - 1]))
        len--;
    return (tg_span_t){p, len};
}

/* The next cookie-pair of [*p, end): its trimmed text, name and value. */
static bool next_pair(const char **p, const char *end, tg_span_t *pair, tg_span_t *name,
                      tg_span_t *value)
{
    if (*p >= end)
        return false;
    const char *semi = memchr(*p, ';', (size_t)(end - *p));
    const char *stop = semi ? semi : end;
    *pair = trim(*p, (size_t)(stop - *p));
    *p = semi ? semi + 1 : end;
    const char *eq = memchr(pair->p, '=', pair->len);
    if (eq == NULL) {
        /* No "=": not a pair with a name (RFC 6265bis makes it a nameless value). */
        *name = (tg_span_t){pair->p, 0};
        *value = *pair;
        return true;
    }
    *name = trim(pair->p, (size_t)(eq - pair->p));
    *value = trim(eq + 1, (size_t)(pair->p + pair->len - eq - 1));
    return true;
}

size_t tg_jwt_cookie_find(const char *v, size_t len, const char *name, tg_span_t *value)
{
    size_t nlen = strlen(name), count = 0;
    const char *p = v, *end = v + len;
    tg_span_t pair, n, val;
    while (next_pair(&p, end, &pair, &n, &val)) {
        if (n.len != nlen || memcmp(n.p, name, nlen) != 0 || count++ > 0)
            continue;
        /* cookie-value = *cookie-octet / ( DQUOTE *cookie-octet DQUOTE ) */
        if (val.len >= 2 && val.p[0] == '"' && val.p[val.len - 1] == '"') {
            val.p++;
            val.len -= 2;
        }
        *value = val;
    }
    return count;
}

size_t tg_jwt_cookie_without(const char *v, size_t len, const char *name, char *out, size_t olen)
{
    size_t nlen = strlen(name);
    const char *p = v, *end = v + len;
    tg_span_t pair, n, val;
    while (next_pair(&p, end, &pair, &n, &val)) {
        if (pair.len == 0 || (n.len == nlen && memcmp(n.p, name, nlen) == 0))
            continue;
        if (olen > 0) {
            memcpy(out + olen, "; ", 2);
            olen += 2;
        }
        memcpy(out + olen, pair.p, pair.len);
        olen += pair.len;
    }
    return olen;
}
