/*
 * "host:port" as config files write it (listen, targets, redis, tracing):
 * split without resolving, then resolved once at load. IPv6 in brackets;
 * ":port" and "*:port" are the wildcard address.
 */
#include "config_address.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

static int split_port(const char *text, const char *colon, tg_hostport_t *hp, char *eb, size_t el)
{
    if (colon == NULL || colon[1] == '\0') {
        snprintf(eb, el, "missing port in '%s'", text);
        return -1;
    }
    unsigned long v = 0;
    const char *p = colon + 1;
    for (; *p >= '0' && *p <= '9' && v <= 65535; p++)
        v = v * 10 + (unsigned long)(*p - '0');
    if (*p != '\0' || v == 0 || v > 65535) {
        snprintf(eb, el, "invalid port in '%s': expected 1 to 65535", text);
        return -1;
    }
    hp->port = colon + 1;
    hp->portnum = (unsigned)v;
    hp->host_end = (size_t)(colon - text);
    return 0;
}

int tg_hostport_split(const char *text, tg_hostport_t *hp, char *eb, size_t el)
{
    memset(hp, 0, sizeof(*hp));
    const char *host = text, *host_end, *colon;
    if (text[0] == '[') {
        host = text + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL || (host_end[1] != ':' && host_end[1] != '\0')) {
            snprintf(eb, el, "invalid address '%s'", text);
            return -1;
        }
        colon = host_end[1] == ':' ? host_end + 1 : NULL;
        hp->bracketed = true;
    } else {
        colon = strrchr(text, ':');
        host_end = colon != NULL ? colon : text + strlen(text);
        if (memchr(text, ':', (size_t)(host_end - text)) != NULL) {
            snprintf(eb, el, "invalid address '%s': IPv6 addresses must be in brackets", text);
            return -1;
        }
    }
    size_t hl = (size_t)(host_end - host);
    if (hl >= sizeof(hp->host)) {
        snprintf(eb, el, "host name too long in '%s'", text);
        return -1;
    }
    memcpy(hp->host, host, hl);
    hp->host[hl] = '\0';
    hp->wildcard = !hp->bracketed && (hl == 0 || strcmp(hp->host, "*") == 0);
    return split_port(text, colon, hp, eb, el);
}

int tg_hostport_resolve(const tg_hostport_t *hp, struct sockaddr_storage *ss, socklen_t *len,
                        char *eb, size_t el)
{
    memset(ss, 0, sizeof(*ss));
    if (hp->wildcard) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)hp->portnum)};
        sin.sin_addr.s_addr = htonl(INADDR_ANY);
        memcpy(ss, &sin, sizeof(sin));
        *len = sizeof(sin);
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    hints.ai_flags = AI_NUMERICSERV | (hp->bracketed ? AI_NUMERICHOST : 0);
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(hp->host, hp->port, &hints, &res);
    if (rc != 0) {
        snprintf(eb, el, "cannot resolve '%s': %s", hp->host,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int tg_config_parse_address(const char *text, struct sockaddr_storage *ss, socklen_t *len,
                            char *errbuf, size_t errlen)
{
    tg_hostport_t hp;
    if (tg_hostport_split(text, &hp, errbuf, errlen) < 0)
        return -1;
    return tg_hostport_resolve(&hp, ss, len, errbuf, errlen);
}
