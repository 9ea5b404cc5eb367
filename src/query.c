/* Finding and removing one parameter of a query string (include/tollgate/text.h). */
#include <stdbool.h>
#include <string.h>

#include "tollgate/text.h"

/* Whether the raw (percent-encoded) name decodes to name (nlen bytes). */
static bool query_name_is(const char *raw, size_t rlen, const char *name, size_t nlen)
{
    /* Decoding shortens 3 bytes to 1 at most: most names are ruled out by
     * their length alone, the rest fit the buffer. */
    char buf[3 * TG_QUERY_NAME_MAX];
    if (rlen < nlen || rlen > 3 * nlen || rlen > sizeof(buf))
        return false;
    if (rlen == nlen && memchr(raw, '%', rlen) == NULL)
        return memcmp(raw, name, nlen) == 0;
    return tg_percent_decode(raw, rlen, buf) == nlen && memcmp(buf, name, nlen) == 0;
}

size_t tg_query_find(const char *q, size_t len, const char *name, tg_span_t *param,
                     tg_span_t *value)
{
    size_t nlen = strlen(name), count = 0;
    const char *end = q + len;
    if (nlen > TG_QUERY_NAME_MAX)
        return 0;
    while (q != NULL && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(stop - q));
        const char *name_end = eq ? eq : stop;
        if (query_name_is(q, (size_t)(name_end - q), name, nlen) && count++ == 0) {
            *param = (tg_span_t){q, (size_t)(stop - q)};
            const char *v = eq ? eq + 1 : stop;
            *value = (tg_span_t){v, (size_t)(stop - v)};
        }
        q = amp ? amp + 1 : NULL;
    }
    return count;
}

size_t tg_query_without(const char *q, size_t len, tg_span_t param, char *out)
{
    size_t start = (size_t)(param.p - q), stop = start + param.len;
    if (stop < len)
        stop++; /* the "&" after it */
    else if (start > 0)
        start--; /* the last parameter: the "&" before it */
    memcpy(out, q, start);
    memcpy(out + start, q + stop, len - stop);
    return start + len - stop;
}
