/* Token and field-value checks (include/tollgate/text.h), on the HTTP
 * parser's character classes so that what a plugin may send and what the
 * gateway accepts from the wire are the same set. */
#include "tollgate/text.h"

#include <string.h>

#include "http_parser.h"

static bool all_of(const char *s, size_t len, unsigned cls)
{
    for (size_t i = 0; i < len; i++)
        if (!(tg_http_ctype[(unsigned char)s[i]] & cls))
            return false;
    return true;
}

bool tg_token_valid(const char *s, size_t len)
{
    return len > 0 && all_of(s, len, TG_HTTP_C_TCHAR);
}

bool tg_field_value_valid(const char *s, size_t len)
{
    return all_of(s, len, TG_HTTP_C_FIELD);
}

bool tg_query_bytes_valid(const char *s, size_t len)
{
    return len == 0 || (all_of(s, len, TG_HTTP_C_VCHAR) && memchr(s, '#', len) == NULL);
}
