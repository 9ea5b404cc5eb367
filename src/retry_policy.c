#include "retry_policy.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "router.h"
#include "tollgate/text.h"
#include "upstream_shared.h"

/* RFC 9110 section 9.2.2: the idempotent methods, retried by default. */
#define IDEMPOTENT                                                                           \
    (TG_METHOD_GET | TG_METHOD_HEAD | TG_METHOD_PUT | TG_METHOD_DELETE | TG_METHOD_OPTIONS | \
     TG_METHOD_TRACE)

static const struct {
    const char *name;
    uint32_t bit;
} fail_names[] = {
    {"connect_failure", TG_FAIL_CONNECT},
    {"reset", TG_FAIL_RESET},
    {"timeout", TG_FAIL_TIMEOUT},
};

static int parse_on_item(const tg_conf_node_t *n, tg_retry_policy_t *p, tg_conf_err_t *err)
{
    if (n->type != TG_CONF_SCALAR)
        return tg_conf_error(err, n, "expected a failure name or a status");
    for (size_t i = 0; i < sizeof(fail_names) / sizeof(fail_names[0]); i++) {
        if (strcmp(n->value, fail_names[i].name) == 0) {
            p->on |= fail_names[i].bit;
            return 0;
        }
    }
    uint64_t s;
    if (!isdigit((unsigned char)n->value[0]))
        return tg_conf_error(err, n,
                             "unknown retry condition '%s' (known: connect_failure, reset, "
                             "timeout, or a status from 400 to 599)",
                             n->value);
    if (tg_conf_get_uint(n, 400, 599, &s, err) < 0)
        return -1;
    p->statuses[(s - 400) / 64] |= 1ull << ((s - 400) % 64);
    return 0;
}

static int parse_on(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    tg_retry_policy_t *p = out;
    p->on = 0;
    memset(p->statuses, 0, sizeof(p->statuses));
    if (n->type == TG_CONF_SCALAR)
        return parse_on_item(n, p, err);
    if (n->type != TG_CONF_SEQ || n->count == 0)
        return tg_conf_error(err, n, "on: expected a list of failures and statuses");
    for (size_t i = 0; i < n->count; i++)
        if (parse_on_item(n->items[i], p, err) < 0)
            return -1;
    return 0;
}

static int parse_methods(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    tg_retry_policy_t *p = out;
    const tg_conf_node_t *one[1] = {n};
    const tg_conf_node_t *const *items = n->type == TG_CONF_SEQ ? (void *)n->items : one;
    size_t count = n->type == TG_CONF_SEQ ? n->count : 1;
    if (count == 0)
        return tg_conf_error(err, n, "methods: expected at least one method");
    p->methods = 0;
    for (size_t i = 0; i < count; i++) {
        const char *s;
        if (tg_conf_get_string(items[i], &s, err) < 0)
            return -1;
        uint32_t bit = tg_router_method_bit(s, strlen(s));
        if (bit == TG_METHOD_OTHER || bit == TG_METHOD_CONNECT)
            return tg_conf_error(err, items[i],
                                 "methods: '%s' cannot be retried (GET, HEAD, POST, PUT, DELETE, "
                                 "PATCH, OPTIONS or TRACE)",
                                 s);
        p->methods |= bit;
    }
    return 0;
}

typedef struct {
    uint64_t base, max;
} backoff_t;

static const tg_conf_field_t backoff_fields[] = {
    {"base", TG_CONF_FIELD_DURATION, TG_CONF_AT(backoff_t, base), .min = 1, .max = 60000,
     .def = 25},
    {"max", TG_CONF_FIELD_DURATION, TG_CONF_AT(backoff_t, max), .min = 1, .max = 600000,
     .def = 250},
    TG_CONF_END,
};

static int parse_backoff(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    tg_retry_policy_t *p = out;
    backoff_t b;
    if (tg_conf_read(n, backoff_fields, "backoff", &b, err) < 0)
        return -1;
    if (b.max < b.base)
        return tg_conf_error(err, n, "backoff: max must not be below base");
    p->backoff_base_ms = b.base;
    p->backoff_max_ms = b.max;
    return 0;
}

/* "20%" (or 20). */
static int parse_budget(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    tg_retry_policy_t *p = out;
    char *end;
    if (n->type != TG_CONF_SCALAR || !isdigit((unsigned char)n->value[0]))
        return tg_conf_error(err, n, "budget: expected a percentage such as 20%%");
    unsigned long v = strtoul(n->value, &end, 10);
    if ((*end != '\0' && strcmp(end, "%") != 0) || v < 1 || v > 100)
        return tg_conf_error(err, n, "budget must be between 1%% and 100%%");
    p->budget_pct = (uint32_t)v;
    return 0;
}

static const tg_conf_field_t retry_fields[] = {
    {"attempts", TG_CONF_FIELD_UINT, TG_CONF_AT(tg_retry_policy_t, attempts), .min = 1, .max = 10,
     .def = 2},
    {"on", TG_CONF_FIELD_CUSTOM, .parse = parse_on},
    {"per_try_timeout", TG_CONF_FIELD_DURATION, TG_CONF_AT(tg_retry_policy_t, per_try_timeout_ms),
     .min = 1},
    {"backoff", TG_CONF_FIELD_CUSTOM, .parse = parse_backoff},
    {"methods", TG_CONF_FIELD_CUSTOM, .parse = parse_methods},
    {"budget", TG_CONF_FIELD_CUSTOM, .parse = parse_budget},
    TG_CONF_END,
};

static int parse_retry(const tg_conf_node_t *n, tg_arena_t *arena, tg_retry_policy_t **out,
                       tg_conf_err_t *err)
{
    tg_retry_policy_t *p = tg_arena_calloc(arena, sizeof(*p));
    /* Defaults: what nginx's proxy_next_upstream does (error, timeout), the
     * idempotent methods, a short backoff, Linkerd's 20% budget. */
    p->on = TG_FAIL_CONNECT | TG_FAIL_RESET | TG_FAIL_TIMEOUT;
    p->methods = IDEMPOTENT;
    p->backoff_base_ms = 25;
    p->backoff_max_ms = 250;
    p->budget_pct = 20;
    if (tg_conf_read(n, retry_fields, "retry", p, err) < 0)
        return -1;
    *out = p;
    return 0;
}

int tg_route_policy_parse(const tg_conf_node_t *route, tg_arena_t *arena, uint64_t *timeout_ms,
                          uint64_t *max_body_size, bool *has_max_body_size,
                          tg_retry_policy_t **retry, tg_conf_err_t *err)
{
    const tg_conf_node_t *t = tg_conf_map_get(route, "timeout");
    const tg_conf_node_t *m = tg_conf_map_get(route, "max_body_size");
    const tg_conf_node_t *r = tg_conf_map_get(route, "retry");
    if (t != NULL && tg_conf_get_duration_ms(t, timeout_ms, err) < 0)
        return -1;
    if (t != NULL && *timeout_ms == 0)
        return tg_conf_error(err, t, "timeout must be greater than 0");
    if (m != NULL && tg_conf_get_size(m, max_body_size, err) < 0)
        return -1;
    *has_max_body_size = m != NULL;
    if (r != NULL && parse_retry(r, arena, retry, err) < 0)
        return -1;
    return 0;
}

bool tg_retry_on_failure(const tg_retry_policy_t *p, tg_fail_kind_t kind)
{
    if (p->on & kind)
        return true;
    return tg_retry_on_status(p, kind == TG_FAIL_TIMEOUT ? 504 : 502);
}

uint64_t tg_retry_backoff_ms(const tg_retry_policy_t *p, unsigned n, uint64_t rnd)
{
    uint64_t cap = p->backoff_base_ms;
    for (unsigned i = 1; i < n && cap < p->backoff_max_ms; i++)
        cap *= 2;
    if (cap > p->backoff_max_ms)
        cap = p->backoff_max_ms;
    return rnd % (cap + 1);
}

bool tg_retry_budget_take(tg_ushared_t *u, uint32_t budget_pct)
{
    unsigned inflight = atomic_load_explicit(&u->requests, memory_order_relaxed);
    unsigned allowed = (unsigned)((uint64_t)inflight * budget_pct / 100);
    if (allowed < TG_RETRY_BUDGET_MIN)
        allowed = TG_RETRY_BUDGET_MIN;
    unsigned cur = atomic_load_explicit(&u->retrying, memory_order_relaxed);
    do {
        if (cur >= allowed)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&u->retrying, &cur, cur + 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    return true;
}

void tg_retry_budget_give(tg_ushared_t *u)
{
    atomic_fetch_sub_explicit(&u->retrying, 1, memory_order_relaxed);
}
