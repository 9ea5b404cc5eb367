#include "health_check.h"

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "resolve.h"
#include "stream.h"
#include "tls.h"
#include "tollgate/clock.h"
#include "upstream_shared.h"

/* ---- config ---------------------------------------------------------------- */

static void expect_range(tg_health_conf_t *h, unsigned lo, unsigned hi)
{
    for (unsigned s = lo; s <= hi; s++)
        h->expect[(s - 100) / 64] |= 1ull << ((s - 100) % 64);
}

/* "200-299" or 204. */
static int parse_expect_item(const tg_conf_node_t *n, tg_health_conf_t *h, tg_conf_err_t *err)
{
    unsigned lo, hi;
    char tail;
    if (n->type != TG_CONF_SCALAR)
        return tg_conf_error(err, n, "expect_status: expected a status or a range");
    int k = sscanf(n->value, "%u-%u%c", &lo, &hi, &tail);
    if (k == 1 && strspn(n->value, "0123456789") == n->len)
        hi = lo;
    else if (k != 2)
        return tg_conf_error(err, n,
                             "expect_status: expected a status or a range such as "
                             "200-299, got '%s'",
                             n->value);
    if (lo < 100 || hi > 599 || lo > hi)
        return tg_conf_error(err, n, "expect_status: '%s' is not within 100-599", n->value);
    expect_range(h, lo, hi);
    return 0;
}

static int parse_expect(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    tg_health_conf_t *h = out;
    memset(h->expect, 0, sizeof(h->expect));
    if (n->type != TG_CONF_SEQ)
        return parse_expect_item(n, h, err);
    if (n->count == 0)
        return tg_conf_error(err, n, "expect_status: expected at least one status");
    for (size_t i = 0; i < n->count; i++)
        if (parse_expect_item(n->items[i], h, err) < 0)
            return -1;
    return 0;
}

typedef struct {
    tg_health_conf_t h;
    const tg_conf_node_t *path, *host;
} keys_t;

static const tg_conf_field_t fields[] = {
    {"path", TG_CONF_FIELD_NODE, TG_CONF_AT(keys_t, path)},
    {"host", TG_CONF_FIELD_NODE, TG_CONF_AT(keys_t, host)},
    {"interval", TG_CONF_FIELD_DURATION, TG_CONF_AT(keys_t, h.interval_ms), .min = 10, .def = 5000},
    {"timeout", TG_CONF_FIELD_DURATION, TG_CONF_AT(keys_t, h.timeout_ms), .min = 1, .def = 1000},
    {"healthy", TG_CONF_FIELD_UINT, TG_CONF_AT(keys_t, h.healthy), .min = 1, .max = 1000, .def = 2},
    {"unhealthy", TG_CONF_FIELD_UINT, TG_CONF_AT(keys_t, h.unhealthy), .min = 1, .max = 1000,
     .def = 3},
    {"expect_status", TG_CONF_FIELD_CUSTOM, .parse = parse_expect},
    TG_CONF_END,
};

/* A request-target or Host that goes into the probe's head as written. */
static int get_text(const tg_conf_node_t *n, const char *what, tg_arena_t *arena, char **out,
                    tg_conf_err_t *err)
{
    const char *s;
    if (tg_conf_get_string(n, &s, err) < 0)
        return -1;
    for (const char *p = s; *p; p++)
        if (!isgraph((unsigned char)*p))
            return tg_conf_error(err, n, "%s must not hold spaces or control characters", what);
    if (*s == '\0' || (strcmp(what, "path") == 0 && s[0] != '/'))
        return tg_conf_error(err, n, "%s must %s", what,
                             strcmp(what, "path") == 0 ? "start with '/'" : "not be empty");
    *out = tg_arena_strndup(arena, s, strlen(s));
    return 0;
}

int tg_health_conf_parse(const tg_conf_node_t *n, tg_arena_t *arena, tg_upstream_conf_t *u,
                         tg_conf_err_t *err)
{
    keys_t k = {0};
    expect_range(&k.h, 200, 299);
    if (tg_conf_read(n, fields, "health_check", &k, err) < 0)
        return -1;
    if (k.h.timeout_ms > k.h.interval_ms)
        return tg_conf_error(err, n, "health_check: timeout must not exceed interval");
    tg_health_conf_t *h = tg_arena_calloc(arena, sizeof(*h));
    *h = k.h;
    h->path = "/";
    if (k.path != NULL && get_text(k.path, "path", arena, &h->path, err) < 0)
        return -1;
    if (k.host != NULL && get_text(k.host, "host", arena, &h->host, err) < 0)
        return -1;
    u->health = h;
    return 0;
}

/* ---- prober ---------------------------------------------------------------- */

typedef struct probe_s {
    struct tg_health_s *hc;
    const tg_upstream_conf_t *u;
    size_t target;
    struct event *tick;     /* every interval */
    struct event *deadline; /* the probe in flight times out */
    tg_stream_t *s;         /* the probe in flight, NULL between probes */
} probe_t;

struct tg_health_s {
    struct event_base *base;
    tg_config_t *cfg;
    probe_t *probes;
    size_t nprobes;
};

static bool expected(const tg_health_conf_t *h, unsigned status)
{
    return status >= 100 && status <= 599 &&
           (h->expect[(status - 100) / 64] >> ((status - 100) % 64) & 1u);
}

/* One probe's result: the verdict moves after enough in a row. */
static void verdict(probe_t *p, tg_check_t result, const char *reason)
{
    const tg_health_conf_t *h = p->u->health;
    tg_tshared_t *t = p->u->targets[p->target].shared;
    char buf[64];
    const char *name = tg_target_label(&p->u->targets[p->target], buf, sizeof(buf));
    if (name == NULL)
        name = p->u->targets[p->target].name;
    TG_SHARED_INC(p->u->shared->checks[result]);
    if (result == TG_CHECK_OK) {
        atomic_store(&t->checks_failed, 0);
        unsigned ok = atomic_fetch_add(&t->checks_ok, 1) + 1;
        if (atomic_load(&t->unhealthy) && ok >= h->healthy) {
            atomic_store(&t->unhealthy, false);
            tg_log_notice("upstream %s: target %s is healthy again (%u checks passed)", p->u->name,
                          name, ok);
        }
        return;
    }
    atomic_store(&t->checks_ok, 0);
    unsigned failed = atomic_fetch_add(&t->checks_failed, 1) + 1;
    if (!atomic_load(&t->unhealthy) && failed >= h->unhealthy) {
        atomic_store(&t->unhealthy, true);
        tg_log_warn("upstream %s: target %s is unhealthy: %s (%u checks failed)", p->u->name, name,
                    reason, failed);
    }
}

static void probe_end(probe_t *p, tg_check_t result, const char *reason)
{
    tg_stream_free(p->s);
    p->s = NULL;
    evtimer_del(p->deadline);
    verdict(p, result, reason);
}

/* "HTTP/1.1 200 ..." is all a probe reads. */
static void probe_read_cb(tg_stream_t *s, void *arg)
{
    probe_t *p = arg;
    struct evbuffer *in = tg_stream_input(s);
    size_t len = evbuffer_get_length(in);
    const char *line = (const char *)evbuffer_pullup(in, len < 64 ? (ev_ssize_t)len : 64);
    size_t n = len < 64 ? len : 64;
    if (n < 12 && memchr(line, '\n', n) == NULL)
        return;
    unsigned status = 0;
    if (n >= 12 && memcmp(line, "HTTP/1.", 7) == 0 && line[8] == ' ' &&
        isdigit((unsigned char)line[9]) && isdigit((unsigned char)line[10]) &&
        isdigit((unsigned char)line[11]))
        status = (unsigned)((line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0'));
    char reason[48];
    snprintf(reason, sizeof(reason), status ? "status %u" : "not an HTTP response", status);
    probe_end(p, expected(p->u->health, status) ? TG_CHECK_OK : TG_CHECK_FAILED, reason);
}

static void probe_event_cb(tg_stream_t *s, short what, void *arg)
{
    (void)s;
    probe_t *p = arg;
    if (what & TG_STREAM_CONNECTED)
        return;
    probe_end(p, TG_CHECK_FAILED,
              what & TG_STREAM_EOF ? "closed without an answer" : "connection failed");
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    probe_t *p = arg;
    if (p->s != NULL)
        probe_end(p, TG_CHECK_TIMEOUT, "timed out");
}

static const tg_stream_cbs_t probe_cbs = {
    .read = probe_read_cb, .write = NULL, .event = probe_event_cb};

static void probe_start(probe_t *p)
{
    const tg_target_t *t = &p->u->targets[p->target];
    const tg_health_conf_t *h = p->u->health;
    const tg_endpoint_t *ep = t->dynamic ? tg_target_endpoint(t) : NULL;
    if (t->dynamic && ep == NULL)
        return; /* a slot without an address now */
    const struct sockaddr_storage *addr = ep ? &ep->addr : &t->addr;
    socklen_t addrlen = ep ? ep->addrlen : t->addrlen;
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    SSL *ssl = fd >= 0 && p->u->tls ? tg_tls_client_ssl(p->u->tls, p->target) : NULL;
    if (fd < 0 || (p->u->tls && ssl == NULL) ||
        (p->s = tg_stream_new(p->hc->base, fd, ssl)) == NULL) {
        if (fd >= 0)
            close(fd);
        SSL_free(ssl);
        verdict(p, TG_CHECK_FAILED, "cannot open a socket");
        return;
    }
    tg_stream_setcb(p->s, &probe_cbs, p);
    tg_stream_connect(p->s, (const struct sockaddr *)addr, addrlen);
    struct evbuffer *head = evbuffer_new();
    if (head != NULL) {
        evbuffer_add_printf(head,
                            "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tollgate-health-check\r\n"
                            "Connection: close\r\n\r\n",
                            h->path, h->host ? h->host : t->host_header);
        tg_stream_send(p->s, head);
        evbuffer_free(head);
    }
    tg_stream_read_enable(p->s, true);
    struct timeval tv = tg_timeval_ms(h->timeout_ms);
    evtimer_add(p->deadline, &tv);
}

/* Every interval from the start of the last probe, so a hung target is out
 * within interval * unhealthy + timeout. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    probe_t *p = arg;
    if (p->s == NULL)
        probe_start(p);
}

tg_health_t *tg_health_start(struct event_base *base, tg_config_t *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const tg_upstream_conf_t *u = &cfg->upstreams[i];
        if (u->health != NULL)
            n += u->ntargets;
        else
            for (size_t t = 0; t < u->ntargets; t++)
                atomic_store(&u->targets[t].shared->unhealthy, false);
    }
    if (n == 0)
        return NULL;
    tg_health_t *hc = calloc(1, sizeof(*hc));
    if (hc == NULL || (hc->probes = calloc(n, sizeof(probe_t))) == NULL) {
        free(hc);
        tg_log_error("health checks: out of memory; no target is probed");
        return NULL;
    }
    hc->base = base;
    hc->cfg = tg_config_ref(cfg);
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const tg_upstream_conf_t *u = &cfg->upstreams[i];
        for (size_t t = 0; u->health != NULL && t < u->ntargets; t++) {
            probe_t *p = &hc->probes[hc->nprobes++];
            p->hc = hc;
            p->u = u;
            p->target = t;
            p->tick = event_new(base, -1, EV_PERSIST, tick_cb, p);
            p->deadline = evtimer_new(base, deadline_cb, p);
            struct timeval tv = tg_timeval_ms(u->health->interval_ms);
            if (p->tick != NULL)
                event_add(p->tick, &tv);
            if (p->tick != NULL && p->deadline != NULL)
                probe_start(p); /* the first one now */
        }
    }
    return hc;
}

void tg_health_stop(tg_health_t *hc)
{
    if (hc == NULL)
        return;
    for (size_t i = 0; i < hc->nprobes; i++) {
        probe_t *p = &hc->probes[i];
        tg_stream_free(p->s);
        if (p->tick)
            event_free(p->tick);
        if (p->deadline)
            event_free(p->deadline);
    }
    free(hc->probes);
    tg_config_unref(hc->cfg);
    free(hc);
}
