/*
 * Active health checks: one prober per process, on the main thread's event
 * loop (which otherwise only waits for signals and reloads), so a target is
 * probed once per interval whatever the number of workers. A probe is a GET
 * of `path` over a fresh connection (TLS when the upstream has `tls:`) that
 * must answer with a status in expect_status within `timeout`.
 *
 * Verdicts go to the target's cross-worker state (upstream_shared.h,
 * `unhealthy`), which every worker's balancer reads: a target is taken out
 * after `unhealthy` failed probes in a row and comes back after `healthy`
 * passed ones. Targets start healthy (no traffic is refused at startup on a
 * guess). Each change is logged with the reason; probes are counted by
 * result. A reload starts the new config's prober and stops the old one; the
 * counts in a row survive it with the target's state.
 */
#ifndef TG_HEALTH_CHECK_H
#define TG_HEALTH_CHECK_H

#include <event2/event.h>
#include <stdint.h>

#include "config.h"

typedef struct tg_health_conf_s {
    char *path;           /* request target, default "/" */
    char *host;           /* Host header; NULL: the target's */
    uint64_t interval_ms; /* default 5s */
    uint64_t timeout_ms;  /* default 1s */
    uint32_t healthy;     /* passed probes in a row to come back; default 2 */
    uint32_t unhealthy;   /* failed probes in a row to be taken out; default 3 */
    uint64_t expect[8];   /* bit s-100: status s (100..599) passes; default 200-299 */
} tg_health_conf_t;

/* Reads `health_check:` into u->health (allocated in arena). */
int tg_health_conf_parse(const tg_conf_node_t *n, tg_arena_t *arena, tg_upstream_conf_t *u,
                         tg_conf_err_t *err);

typedef struct tg_health_s tg_health_t;

/* Starts probing cfg's upstreams on base (a reference on cfg is kept).
 * Targets of upstreams without checks are declared healthy (a reload that
 * removed them must not leave a verdict behind). NULL when nothing is probed. */
tg_health_t *tg_health_start(struct event_base *base, tg_config_t *cfg);

/* Stops probing (probes in flight are dropped) and frees h. NULL is fine. */
void tg_health_stop(tg_health_t *h);

#endif
