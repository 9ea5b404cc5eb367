#include "json_escape.h"

size_t tg_json_escape_buf(char *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0, run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            continue;
        memcpy(out + n, s + run, i - run);
        n += i - run;
        run = i + 1;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            memcpy(out + n, esc, 6);
            n += 6;
        }
    }
    memcpy(out + n, s + run, len - run);
    return n + len - run;
}

void tg_json_escape(struct evbuffer *out, const char *s, size_t len)
{
    struct evbuffer_iovec v;
    if (len == 0 || evbuffer_reserve_space(out, (ev_ssize_t)(6 * len), &v, 1) < 1)
        return;
    v.iov_len = tg_json_escape_buf(v.iov_base, s, len);
    evbuffer_commit_space(out, &v, 1);
}
