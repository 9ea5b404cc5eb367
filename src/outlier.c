#include "outlier.h"

#include "log.h"
#include "resolve.h"
#include "upstream_shared.h"

static bool enabled(const tg_upstream_conf_t *u)
{
    return u->outlier.base_ejection_time_ms != 0;
}

/* Targets out now (ejected, resting or unhealthy) and how many may be. */
static bool may_eject(const tg_upstream_conf_t *u, uint64_t now)
{
    size_t out = 0;
    for (size_t i = 0; i < u->ntargets; i++)
        out += !tg_tshared_usable(u->targets[i].shared, now);
    size_t allowed = u->ntargets * u->outlier.max_ejection_percent / 100;
    if (allowed == 0 && u->outlier.max_ejection_percent > 0)
        allowed = 1;
    return out < allowed;
}

static void eject(const tg_upstream_conf_t *u, size_t target, const char *why, uint64_t now)
{
    tg_tshared_t *t = u->targets[target].shared;
    char buf[64];
    const char *name = tg_target_label(&u->targets[target], buf, sizeof(buf));
    if (name == NULL)
        name = u->targets[target].name;
    atomic_store_explicit(&t->c5xx, 0, memory_order_relaxed);
    atomic_store_explicit(&t->cgw, 0, memory_order_relaxed);
    if (!may_eject(u, now)) {
        tg_log_warn("upstream %s: target %s is an outlier (%s) but max_ejection_percent %u is "
                    "reached: kept",
                    u->name, name, why, u->outlier.max_ejection_percent);
        return;
    }
    unsigned n = atomic_fetch_add_explicit(&t->ejections, 1, memory_order_relaxed);
    uint64_t base = u->outlier.base_ejection_time_ms, ms = base;
    uint64_t cap = base > TG_OUTLIER_MAX_EJECTION_MS ? base : TG_OUTLIER_MAX_EJECTION_MS;
    for (unsigned i = 0; i < n && ms < cap; i++)
        ms *= 2;
    if (ms > cap)
        ms = cap;
    atomic_store_explicit(&t->ejected_at, now, memory_order_relaxed);
    atomic_store_explicit(&t->down_until, now + ms, memory_order_relaxed);
    TG_SHARED_INC(u->shared->ejections);
    tg_log_warn("upstream %s: target %s ejected for %llu ms (%s, ejection %u in a row)", u->name,
                name, (unsigned long long)ms, why, n + 1);
}

/* A target that stayed in and answered for a whole base_ejection_time since
 * its last ejection ended starts again from the base time. */
static void forgive(const tg_upstream_conf_t *u, tg_tshared_t *t, uint64_t now)
{
    if (atomic_load_explicit(&t->ejections, memory_order_relaxed) == 0)
        return;
    uint64_t until = atomic_load_explicit(&t->down_until, memory_order_relaxed);
    if (now >= until + u->outlier.base_ejection_time_ms)
        atomic_store_explicit(&t->ejections, 0, memory_order_relaxed);
}

void tg_outlier_report(const tg_upstream_conf_t *u, size_t target, tg_outcome_t o, int status,
                       uint64_t now_ms)
{
    if (!enabled(u))
        return;
    tg_tshared_t *t = u->targets[target].shared;
    if (o == TG_OUTCOME_OK) {
        if (atomic_load_explicit(&t->c5xx, memory_order_relaxed) != 0)
            atomic_store_explicit(&t->c5xx, 0, memory_order_relaxed);
        if (atomic_load_explicit(&t->cgw, memory_order_relaxed) != 0)
            atomic_store_explicit(&t->cgw, 0, memory_order_relaxed);
        forgive(u, t, now_ms);
        return;
    }
    bool gateway = o == TG_OUTCOME_GATEWAY || status == 502 || status == 503 || status == 504;
    unsigned c5 = atomic_fetch_add_explicit(&t->c5xx, 1, memory_order_relaxed) + 1;
    unsigned cg = gateway ? atomic_fetch_add_explicit(&t->cgw, 1, memory_order_relaxed) + 1
                          : (atomic_store_explicit(&t->cgw, 0, memory_order_relaxed), 0);
    const tg_outlier_conf_t *oc = &u->outlier;
    if (oc->consecutive_gateway_errors && cg == oc->consecutive_gateway_errors)
        eject(u, target, "consecutive gateway errors", now_ms);
    else if (oc->consecutive_5xx && c5 == oc->consecutive_5xx)
        eject(u, target, "consecutive 5xx", now_ms);
}
