/*
 * Targets named by host name, re-resolved while the gateway runs (`resolve:`
 * on an upstream): every A and AAAA record of a name is a target. Names are
 * resolved with libevent's evdns, never a blocking getaddrinfo on a worker:
 * once while the config loads (on the loading thread, bounded), then every
 * interval on the main thread's event loop, next to the health prober.
 *
 * A named target is expanded at load into TG_RESOLVE_SLOTS slots (targets
 * of the upstream, each with its own cross-worker state and pool). A slot
 * holds one address or none; the resolver publishes an address by swapping
 * the slot's endpoint pointer (endpoints are immutable and freed with the
 * config), so workers read it without a lock. An address that stays keeps
 * its slot, so its pooled connections stay too; one that goes empties its
 * slot (its idle connections are dropped when next met); a new one takes a
 * free slot. A failed resolution keeps the last good set and is logged.
 */
#ifndef TG_RESOLVE_H
#define TG_RESOLVE_H

#include <event2/event.h>
#include <stdatomic.h>

#include "config.h"

/* Addresses used per name (more records than this are left out, logged). */
#define TG_RESOLVE_SLOTS 8

/* One published address of a slot. */
typedef struct tg_endpoint_s {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct tg_endpoint_s *older; /* every endpoint the slot ever had (freed with the config) */
} tg_endpoint_t;

/* The slot's address now; NULL while it has none. Any thread. */
static inline const tg_endpoint_t *tg_target_endpoint(const tg_target_t *t)
{
    return atomic_load_explicit(&t->endpoint, memory_order_acquire);
}

/* How a target is named in /metrics and the access log: as written, or for
 * a slot its address now ("10.0.0.7:8080", "[::1]:8080", written into buf);
 * NULL for a slot without one. */
const char *tg_target_label(const tg_target_t *t, char *buf, size_t len);
const char *tg_endpoint_label(const tg_endpoint_t *e, char *buf, size_t len);

/* Top-level `resolver:` (nameservers "ip" or "ip:port"; default: the
 * system's /etc/resolv.conf). */
int tg_resolver_conf_parse(const tg_conf_node_t *n, tg_arena_t *arena, tg_config_t *cfg,
                           tg_conf_err_t *err);

/* Whether a target text names a host (not an IP literal). */
bool tg_resolve_is_name(const char *target_text);

/* Resolves every slot group of cfg once (at load; blocks the calling thread
 * for at most a few seconds). Fails with the name that did not resolve. */
int tg_resolve_load(tg_config_t *cfg, tg_conf_err_t *err);

/* Frees the endpoints cfg's slots ever held (config unref). */
void tg_resolve_free(tg_config_t *cfg);

typedef struct tg_resolver_s tg_resolver_t;

/* Re-resolves cfg's names every interval on base; NULL when none. */
tg_resolver_t *tg_resolver_start(struct event_base *base, tg_config_t *cfg);
void tg_resolver_stop(tg_resolver_t *r);

#endif
