#include "resolve.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tollgate/clock.h"
#include "upstream_shared.h"

/* A load waits at most this long for every name. */
#define LOAD_TIMEOUT_MS 5000

/* ---- config ---------------------------------------------------------------- */

int tg_resolver_conf_parse(const tg_conf_node_t *n, tg_arena_t *arena, tg_config_t *cfg,
                           tg_conf_err_t *err)
{
    const tg_conf_node_t *one[1] = {n};
    const tg_conf_node_t *const *items = n->type == TG_CONF_SEQ ? (void *)n->items : one;
    size_t count = n->type == TG_CONF_SEQ ? n->count : 1;
    if (count == 0)
        return tg_conf_error(err, n, "resolver: expected at least one nameserver");
    cfg->nameservers = tg_arena_calloc(arena, count * sizeof(char *));
    for (size_t i = 0; i < count; i++) {
        const char *s;
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        if (tg_conf_get_string(items[i], &s, err) < 0)
            return -1;
        if (evutil_parse_sockaddr_port(s, (struct sockaddr *)&ss, &len) < 0)
            return tg_conf_error(err, items[i],
                                 "resolver: '%s' is not an IP address (with an optional port)", s);
        cfg->nameservers[i] = tg_arena_strndup(arena, s, strlen(s));
        cfg->nnameservers++;
    }
    return 0;
}

bool tg_resolve_is_name(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1;
}

const char *tg_target_label(const tg_target_t *t, char *buf, size_t len)
{
    if (!t->dynamic)
        return t->name;
    const tg_endpoint_t *e = tg_target_endpoint(t);
    return e ? tg_endpoint_label(e, buf, len) : NULL;
}

const char *tg_endpoint_label(const tg_endpoint_t *e, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    const struct sockaddr *sa = (const struct sockaddr *)&e->addr;
    bool v6 = sa->sa_family == AF_INET6;
    const void *a = v6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                       : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    unsigned port = ntohs(v6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                             : ((const struct sockaddr_in *)sa)->sin_port);
    if (inet_ntop(sa->sa_family, a, ip, sizeof(ip)) == NULL)
        return NULL;
    snprintf(buf, len, v6 ? "[%s]:%u" : "%s:%u", ip, port);
    return buf;
}

/* ---- applying an answer ------------------------------------------------------ */

/* One name: its slots are u->targets[first .. first + TG_RESOLVE_SLOTS). */
typedef struct {
    struct tg_resolver_s *r;
    tg_upstream_conf_t *u;
    size_t first;
    char host[256];
    char port[8];
    struct evdns_getaddrinfo_request *req;
    bool done;  /* load: answered */
    int result; /* load: the last error */
} group_t;

static bool same_addr(const struct sockaddr *a, const tg_endpoint_t *e)
{
    if (a->sa_family != e->addr.ss_family)
        return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)&e->addr;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)&e->addr;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* A slot gets a new address: a new endpoint, and the state of what was
 * there before is forgotten (it is another server). */
static bool is_last(const tg_tshared_t *s, const struct sockaddr *sa, socklen_t len)
{
    return s->last_len == len && memcmp(&s->last_addr, sa, len) == 0;
}

static void publish(tg_target_t *t, const struct sockaddr *sa, socklen_t len)
{
    tg_tshared_t *s = t->shared;
    tg_endpoint_t *e = NULL;
    if (sa != NULL && (e = calloc(1, sizeof(*e))) != NULL) {
        memcpy(&e->addr, sa, len);
        e->addrlen = len;
        e->older = t->history; /* freed with the config: a worker may hold it */
        t->history = e;
    }
    /* Another server in this slot: what was known of the last one goes (a
     * reload that finds the same address keeps it). */
    if (e == NULL || !is_last(s, sa, len)) {
        atomic_store(&s->fails, 0);
        atomic_store(&s->down_until, 0);
        atomic_store(&s->unhealthy, false);
        atomic_store(&s->c5xx, 0);
        atomic_store(&s->cgw, 0);
        atomic_store(&s->ejections, 0);
        atomic_store(&s->checks_ok, 0);
        atomic_store(&s->checks_failed, 0);
    }
    s->last_len = e ? e->addrlen : 0;
    if (e != NULL)
        memcpy(&s->last_addr, &e->addr, e->addrlen);
    atomic_store_explicit(&t->endpoint, e, memory_order_release);
}

/* A free slot for a new address: the one that had it last (a reload keeps
 * its state), else one that remembers no other address, else any. */
static size_t free_slot(tg_target_t *slots, const bool *keep, const struct sockaddr *sa,
                        socklen_t len)
{
    size_t any = SIZE_MAX, blank = SIZE_MAX;
    for (size_t k = 0; k < TG_RESOLVE_SLOTS; k++) {
        if (keep[k] || tg_target_endpoint(&slots[k]) != NULL)
            continue;
        if (is_last(slots[k].shared, sa, len))
            return k;
        if (blank == SIZE_MAX && slots[k].shared->last_len == 0)
            blank = k;
        if (any == SIZE_MAX)
            any = k;
    }
    return blank != SIZE_MAX ? blank : any;
}

static void addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    const void *a = sa->sa_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (inet_ntop(sa->sa_family, a, buf, (socklen_t)len) == NULL)
        snprintf(buf, len, "?");
}

/* The name's addresses are now res: addresses that stay keep their slots. */
static void apply(group_t *g, struct evutil_addrinfo *res)
{
    tg_target_t *slots = &g->u->targets[g->first];
    bool keep[TG_RESOLVE_SLOTS] = {false};
    struct evutil_addrinfo *fresh[TG_RESOLVE_SLOTS];
    size_t nfresh = 0, dropped = 0;
    char list[TG_RESOLVE_SLOTS * 48] = "", one[INET6_ADDRSTRLEN];
    for (struct evutil_addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        bool seen = false;
        for (size_t k = 0; k < TG_RESOLVE_SLOTS && !seen; k++) {
            const tg_endpoint_t *e = tg_target_endpoint(&slots[k]);
            if (e != NULL && same_addr(ai->ai_addr, e))
                seen = keep[k] = true;
        }
        for (size_t f = 0; f < nfresh && !seen; f++)
            seen = fresh[f]->ai_addrlen == ai->ai_addrlen &&
                   memcmp(fresh[f]->ai_addr, ai->ai_addr, ai->ai_addrlen) == 0;
        if (seen)
            continue;
        size_t kept = 0;
        for (size_t k = 0; k < TG_RESOLVE_SLOTS; k++)
            kept += keep[k];
        if (kept + nfresh >= TG_RESOLVE_SLOTS) {
            dropped++;
            continue;
        }
        fresh[nfresh++] = ai;
    }
    size_t changed = 0;
    for (size_t k = 0; k < TG_RESOLVE_SLOTS; k++) {
        if (!keep[k] && tg_target_endpoint(&slots[k]) != NULL) {
            publish(&slots[k], NULL, 0);
            changed++;
        }
    }
    for (size_t f = 0; f < nfresh; f++) {
        socklen_t len = (socklen_t)fresh[f]->ai_addrlen;
        size_t k = free_slot(slots, keep, fresh[f]->ai_addr, len);
        if (k == SIZE_MAX)
            break;
        publish(&slots[k], fresh[f]->ai_addr, len);
        keep[k] = true;
        changed++;
    }
    if (changed == 0 && dropped == 0)
        return;
    for (size_t k = 0; k < TG_RESOLVE_SLOTS; k++) {
        const tg_endpoint_t *e = tg_target_endpoint(&slots[k]);
        if (e == NULL)
            continue;
        addr_text((const struct sockaddr *)&e->addr, one, sizeof(one));
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", list[0] ? ", " : "",
                 one);
    }
    tg_log_notice("upstream %s: %s resolves to %s%s", g->u->name, slots[0].name, list,
                  dropped ? " (more records left out: at most 8 per name)" : "");
}

static const struct evutil_addrinfo hints = {
    .ai_family = AF_UNSPEC,
    .ai_socktype = SOCK_STREAM,
    .ai_protocol = IPPROTO_TCP,
};

static bool any_address(const struct evutil_addrinfo *res)
{
    for (; res != NULL; res = res->ai_next)
        if (res->ai_family == AF_INET || res->ai_family == AF_INET6)
            return true;
    return false;
}

/* ---- groups -------------------------------------------------------------- */

static size_t count_groups(const tg_config_t *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->nupstreams; i++)
        for (size_t t = 0; t < cfg->upstreams[i].ntargets; t++)
            n += cfg->upstreams[i].targets[t].dynamic && cfg->upstreams[i].targets[t].slot == 0;
    return n;
}

static group_t *make_groups(tg_config_t *cfg, size_t n)
{
    group_t *gs = calloc(n, sizeof(*gs));
    size_t k = 0;
    for (size_t i = 0; gs != NULL && i < cfg->nupstreams; i++) {
        tg_upstream_conf_t *u = &cfg->upstreams[i];
        for (size_t t = 0; t < u->ntargets; t++) {
            if (!u->targets[t].dynamic || u->targets[t].slot != 0)
                continue;
            group_t *g = &gs[k++];
            g->u = u;
            g->first = t;
            /* "host:port": the port after the last colon (names have none) */
            const char *name = u->targets[t].name, *colon = strrchr(name, ':');
            snprintf(g->host, sizeof(g->host), "%.*s", (int)(colon - name), name);
            snprintf(g->port, sizeof(g->port), "%s", colon + 1);
        }
    }
    return gs;
}

static struct evdns_base *dns_new(struct event_base *base, const tg_config_t *cfg)
{
    int flags = cfg->nnameservers ? 0 : EVDNS_BASE_INITIALIZE_NAMESERVERS;
    struct evdns_base *dns = evdns_base_new(base, flags);
    if (dns == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->nnameservers; i++)
        evdns_base_nameserver_ip_add(dns, cfg->nameservers[i]);
    /* A stuck nameserver costs a second per try, twice, not libevent's 5 s x 3. */
    evdns_base_set_option(dns, "timeout:", "1");
    evdns_base_set_option(dns, "attempts:", "2");
    return dns;
}

/* ---- at load --------------------------------------------------------------- */

/* A reload while the name does not resolve: the addresses the running config
 * had (the slots' shared state keeps them) stay, as they would at an
 * interval. False when there are none (the first load). */
static bool keep_last(group_t *g)
{
    tg_target_t *slots = &g->u->targets[g->first];
    size_t kept = 0;
    for (size_t k = 0; k < TG_RESOLVE_SLOTS; k++) {
        tg_tshared_t *s = slots[k].shared;
        if (s->last_len == 0)
            continue;
        struct sockaddr_storage ss = s->last_addr;
        publish(&slots[k], (const struct sockaddr *)&ss, s->last_len);
        kept++;
    }
    if (kept > 0)
        tg_log_warn("upstream %s: cannot resolve '%s': keeping the last good addresses", g->u->name,
                    g->host);
    return kept > 0;
}

static void load_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    group_t *g = arg;
    g->req = NULL;
    g->done = true;
    g->result = result;
    if (result == 0 && any_address(res))
        apply(g, res);
    else if (result == 0)
        g->result = EVUTIL_EAI_NONAME;
    if (res != NULL)
        evutil_freeaddrinfo(res);
}

int tg_resolve_load(tg_config_t *cfg, tg_conf_err_t *err)
{
    size_t n = count_groups(cfg);
    if (n == 0)
        return 0;
    group_t *gs = make_groups(cfg, n);
    struct event_base *base = event_base_new();
    struct evdns_base *dns = base ? dns_new(base, cfg) : NULL;
    int rc = 0;
    if (gs == NULL || dns == NULL) {
        rc = tg_conf_error(err, NULL, "%s: cannot start the resolver", cfg->file);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        gs[i].req = evdns_getaddrinfo(dns, gs[i].host, gs[i].port, &hints, load_cb, &gs[i]);
    struct timeval tv = tg_timeval_ms(LOAD_TIMEOUT_MS);
    event_base_loopexit(base, &tv);
    for (;;) {
        size_t pending = 0;
        for (size_t i = 0; i < n; i++)
            pending += !gs[i].done;
        if (pending == 0 || event_base_got_exit(base))
            break;
        event_base_loop(base, EVLOOP_ONCE);
    }
    for (size_t i = 0; i < n; i++) {
        bool timed_out = !gs[i].done;
        if (gs[i].req != NULL)
            evdns_getaddrinfo_cancel(gs[i].req);
        if ((timed_out || gs[i].result != 0) && keep_last(&gs[i]))
            continue;
        if (rc == 0 && (timed_out || gs[i].result != 0))
            rc = tg_conf_error(err, NULL, "%s: upstream '%s': cannot resolve '%s': %s", cfg->file,
                               gs[i].u->name, gs[i].host,
                               timed_out ? "timed out" : evutil_gai_strerror(gs[i].result));
    }
out:
    if (dns != NULL)
        evdns_base_free(dns, 0);
    if (base != NULL)
        event_base_free(base);
    free(gs);
    return rc;
}

void tg_resolve_free(tg_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        tg_upstream_conf_t *u = &cfg->upstreams[i];
        for (size_t t = 0; u->targets != NULL && t < u->ntargets; t++) {
            tg_endpoint_t *e = u->targets[t].history;
            while (e != NULL) {
                tg_endpoint_t *older = e->older;
                free(e);
                e = older;
            }
            u->targets[t].history = NULL;
        }
    }
}

/* ---- while running ----------------------------------------------------------- */

struct tg_resolver_s {
    tg_config_t *cfg;
    struct evdns_base *dns;
    group_t *groups;
    size_t ngroups;
    struct event **timers; /* one per upstream with names */
    size_t ntimers;
    bool stopping;
};

static void run_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    group_t *g = arg;
    g->req = NULL;
    if (result == EVUTIL_EAI_CANCEL || g->r->stopping) {
        if (res != NULL)
            evutil_freeaddrinfo(res);
        return;
    }
    if (result == 0 && any_address(res))
        apply(g, res);
    else
        tg_log_warn("upstream %s: cannot resolve '%s' (%s): keeping the last good addresses",
                    g->u->name, g->host,
                    result ? evutil_gai_strerror(result) : "no A or AAAA record");
    if (res != NULL)
        evutil_freeaddrinfo(res);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    group_t *first = arg;
    tg_resolver_t *r = first->r;
    for (group_t *g = first; g < r->groups + r->ngroups && g->u == first->u; g++)
        if (g->req == NULL)
            g->req = evdns_getaddrinfo(r->dns, g->host, g->port, &hints, run_cb, g);
}

tg_resolver_t *tg_resolver_start(struct event_base *base, tg_config_t *cfg)
{
    size_t n = count_groups(cfg);
    if (n == 0)
        return NULL;
    tg_resolver_t *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->groups = make_groups(cfg, n)) == NULL ||
        (r->timers = calloc(n, sizeof(*r->timers))) == NULL ||
        (r->dns = dns_new(base, cfg)) == NULL) {
        tg_log_error("resolver: cannot start: names are not re-resolved");
        if (r != NULL) {
            free(r->groups);
            free(r->timers);
            free(r);
        }
        return NULL;
    }
    r->cfg = tg_config_ref(cfg);
    r->ngroups = n;
    for (size_t i = 0; i < n; i++) {
        r->groups[i].r = r;
        if (i > 0 && r->groups[i - 1].u == r->groups[i].u)
            continue; /* one timer per upstream */
        struct event *ev = event_new(base, -1, EV_PERSIST, tick_cb, &r->groups[i]);
        struct timeval tv = tg_timeval_ms(r->groups[i].u->resolve_ms);
        if (ev != NULL && event_add(ev, &tv) == 0)
            r->timers[r->ntimers++] = ev;
        else if (ev != NULL)
            event_free(ev);
    }
    return r;
}

void tg_resolver_stop(tg_resolver_t *r)
{
    if (r == NULL)
        return;
    r->stopping = true;
    for (size_t i = 0; i < r->ntimers; i++)
        event_free(r->timers[i]);
    for (size_t i = 0; i < r->ngroups; i++)
        if (r->groups[i].req != NULL)
            evdns_getaddrinfo_cancel(r->groups[i].req);
    evdns_base_free(r->dns, 0);
    free(r->timers);
    free(r->groups);
    tg_config_unref(r->cfg);
    free(r);
}
