#include "client_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "field_list.h"

/* A plain IPv4 or IPv6 literal, nothing around it. */
static bool parse_ip(const tg_span_t *e, struct sockaddr_storage *ss)
{
    char buf[INET6_ADDRSTRLEN];
    if (e->len >= sizeof(buf))
        return false;
    memcpy(buf, e->p, e->len);
    buf[e->len] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (memchr(buf, ':', e->len) != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        return inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    return inet_pton(AF_INET, buf, &s4->sin_addr) == 1;
}

bool tg_client_addr_from_xff(const tg_http_header_t *hs, size_t n, const tg_cidr_t *trusted,
                             size_t ntrusted, struct sockaddr_storage *out)
{
    bool have = false; /* out holds the last trusted hop seen */
    for (size_t i = n; i-- > 0;) {
        const tg_http_header_t *h = &hs[i];
        if (!TG_HTTP_NAME_IS(h, "x-forwarded-for"))
            continue;
        size_t end = h->value_len;
        tg_span_t e;
        while (tg_list_prev(h->value, h->value_len, &end, &e)) {
            struct sockaddr_storage a;
            if (!parse_ip(&e, &a))
                return have;
            *out = a;
            have = true;
            if (!tg_cidr_list_contains(trusted, ntrusted, (const struct sockaddr *)&a))
                return true;
        }
    }
    return have;
}
