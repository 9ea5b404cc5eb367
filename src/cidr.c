/* IP address blocks ("10.0.0.0/8", "::1"): parsing and matching peers (tollgate/cidr.h). */
#include "tollgate/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static void mask_cidr(tg_cidr_t *cidr)
{
    size_t bytes = cidr->family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < bytes; i++) {
        unsigned keep = cidr->prefix > i * 8 ? cidr->prefix - (unsigned)i * 8 : 0;
        if (keep < 8)
            cidr->addr[i] &= (uint8_t)(0xff00u >> keep);
    }
}

/* "IP" or "IP/prefix", v4 or v6. Host bits set in IP are cleared. */
int tg_cidr_parse(const char *text, tg_cidr_t *out)
{
    char buf[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t alen = slash != NULL ? (size_t)(slash - text) : strlen(text);
    if (alen >= sizeof(buf))
        return -1;
    memcpy(buf, text, alen);
    buf[alen] = '\0';
    memset(out, 0, sizeof(*out));
    out->family = strchr(buf, ':') != NULL ? AF_INET6 : AF_INET;
    if (inet_pton(out->family, buf, out->addr) != 1)
        return -1;
    unsigned max = out->family == AF_INET ? 32 : 128;
    out->prefix = max;
    if (slash != NULL) {
        size_t dl = strlen(slash + 1);
        if (dl == 0 || dl > 3 || strspn(slash + 1, "0123456789") != dl)
            return -1;
        out->prefix = (unsigned)atoi(slash + 1);
        if (out->prefix > max)
            return -1;
    }
    mask_cidr(out);
    /* ::ffff:a.b.c.d/96+ is an IPv4 block: IPv4 peers (and mapped ones) match it. */
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (out->family == AF_INET6 && out->prefix >= 96 && memcmp(out->addr, v4mapped, 12) == 0) {
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->family = AF_INET;
        out->prefix -= 96;
    }
    return 0;
}

static bool cidr_contains(const tg_cidr_t *cidr, int family, const uint8_t *a)
{
    if (cidr->family != family)
        return false;
    unsigned bytes = cidr->prefix / 8, bits = cidr->prefix % 8;
    if (memcmp(cidr->addr, a, bytes) != 0)
        return false;
    if (bits == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff00u >> bits);
    return (cidr->addr[bytes] & mask) == (a[bytes] & mask);
}

static bool any_contains(const tg_cidr_t *list, size_t n, int family, const uint8_t *a)
{
    for (size_t i = 0; i < n; i++)
        if (cidr_contains(&list[i], family, a))
            return true;
    return false;
}

bool tg_cidr_list_contains(const tg_cidr_t *list, size_t n, const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, addr, sizeof(sin));
        return any_contains(list, n, AF_INET, (const uint8_t *)&sin.sin_addr);
    }
    if (addr->sa_family != AF_INET6)
        return false;
    struct sockaddr_in6 sin6;
    memcpy(&sin6, addr, sizeof(sin6));
    const uint8_t *a = sin6.sin6_addr.s6_addr;
    /* A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d. */
    if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr) && any_contains(list, n, AF_INET, a + 12))
        return true;
    return any_contains(list, n, AF_INET6, a);
}
