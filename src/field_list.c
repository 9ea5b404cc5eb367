#include "field_list.h"

#include "http_parser.h"

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static tg_span_t trim(const char *s, const char *e)
{
    while (s < e && is_ows(*s))
        s++;
    while (e > s && is_ows(e[-1]))
        e--;
    return (tg_span_t){s, (size_t)(e - s)};
}

bool tg_list_next(const char *v, size_t len, size_t *pos, tg_span_t *elem)
{
    size_t i = *pos < len ? *pos : len;
    while (i < len) {
        size_t s = i;
        while (i < len && v[i] != ',')
            i++;
        *elem = trim(v + s, v + i);
        if (i < len)
            i++; /* the comma */
        if (elem->len > 0) {
            *pos = i;
            return true;
        }
    }
    *pos = len;
    return false;
}

bool tg_list_prev(const char *v, size_t len, size_t *end, tg_span_t *elem)
{
    size_t i = *end < len ? *end : len;
    while (i > 0) {
        size_t e = i;
        while (i > 0 && v[i - 1] != ',')
            i--;
        *elem = trim(v + i, v + e);
        if (i > 0)
            i--; /* the comma */
        if (elem->len > 0) {
            *end = i;
            return true;
        }
    }
    *end = 0;
    return false;
}

static bool eq_lower(const tg_span_t *e, const char *lower, size_t lower_len)
{
    return tg_http_name_eq(e->p, e->len, lower, lower_len) != 0;
}

bool tg_list_has(const char *v, size_t len, const char *lower, size_t lower_len)
{
    size_t pos = 0;
    tg_span_t e;
    while (tg_list_next(v, len, &pos, &e))
        if (eq_lower(&e, lower, lower_len))
            return true;
    return false;
}

bool tg_token_valid(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(tg_http_ctype[(unsigned char)s[i]] & TG_HTTP_C_TCHAR))
            return false;
    return true;
}

bool tg_field_value_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(tg_http_ctype[(unsigned char)s[i]] & TG_HTTP_C_FIELD))
            return false;
    return true;
}

/* RFC 9110 section 7.8: protocol-name [ "/" protocol-version ], both tokens. */
static bool is_protocol(const tg_span_t *e)
{
    for (size_t i = 0; i < e->len; i++)
        if (e->p[i] == '/')
            return tg_token_valid(e->p, i) && tg_token_valid(e->p + i + 1, e->len - i - 1);
    return tg_token_valid(e->p, e->len);
}

int tg_list_upgrade_websocket(const char *v, size_t len)
{
    size_t pos = 0;
    tg_span_t e;
    int found = 0;
    while (tg_list_next(v, len, &pos, &e)) {
        if (!is_protocol(&e))
            return -1;
        if (eq_lower(&e, "websocket", 9))
            found = 1;
    }
    return found;
}

bool tg_list_only_websocket(const char *v, size_t len)
{
    size_t pos = 0;
    tg_span_t e;
    bool any = false;
    while (tg_list_next(v, len, &pos, &e)) {
        if (!eq_lower(&e, "websocket", 9))
            return false;
        any = true;
    }
    return any;
}
