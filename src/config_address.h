/*
 * Config addresses, "host:port" (config_address.c).
 */
#ifndef TG_CONFIG_ADDRESS_H
#define TG_CONFIG_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct {
    char host[256];
    const char *port; /* points into the text */
    unsigned portnum;
    size_t host_end; /* offset in the text where ":port" starts */
    bool bracketed;
    bool wildcard; /* ":port" or "*:port" */
} tg_hostport_t;

/* Splits text (kept: port points into it); a message in eb when invalid. */
int tg_hostport_split(const char *text, tg_hostport_t *hp, char *eb, size_t el);

/* Resolves a split address (getaddrinfo, at load: blocking). */
int tg_hostport_resolve(const tg_hostport_t *hp, struct sockaddr_storage *ss, socklen_t *len,
                        char *eb, size_t el);

#endif
