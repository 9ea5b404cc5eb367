/* Percent-encoding (RFC 3986 section 2.1), both ways (include/tollgate/text.h). */
#include "tollgate/text.h"

ssize_t tg_percent_decode_flags(const char *in, size_t len, char *out, unsigned flags)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (in[i] != '%') {
            out[o++] = (flags & TG_PERCENT_PLUS) && in[i] == '+' ? ' ' : in[i];
        } else if (len - i >= 3 && (hi = tg_hex_value((unsigned char)in[i + 1])) >= 0 &&
                   (lo = tg_hex_value((unsigned char)in[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (flags & TG_PERCENT_STRICT) {
            return -1;
        } else {
            out[o++] = '%';
        }
    }
    return (ssize_t)o;
}

size_t tg_percent_decode(const char *in, size_t len, char *out)
{
    return (size_t)tg_percent_decode_flags(in, len, out, 0);
}

size_t tg_percent_encode(const char *in, size_t len, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return o;
}
