#include "server.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"
#include "chain.h"
#include "health_check.h"
#include "log.h"
#include "log_conf.h"
#include "metrics.h"
#include "otlp_export.h"
#include "process_metrics.h"
#include "reload_signal.h"
#include "resolve.h"
#include "sd_notify.h"
#include "worker.h"

typedef struct {
    tg_config_t *cfg;
    tg_worker_t *workers;
    unsigned nworkers;
    struct event_base *base;
    tg_admin_t *admin;
    bool stopping;
    /* POST /reload from the admin thread: run on the main thread, wait for it. */
    pthread_mutex_t reload_lock;
    pthread_cond_t reload_done;
    int reload_fd; /* eventfd */
    struct event *reload_ev;
    bool reload_pending;
    int reload_rc;
    char reload_err[512];
    struct tg_health_s *health;     /* the current config's prober (health_check.h) */
    struct tg_resolver_s *resolver; /* the current config's names (resolve.h) */
} tg_server_t;

/* Idle keep-alive connections cost descriptors, not CPU: take what the hard
 * limit allows, as nginx's worker_rlimit_nofile would be set to. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* listen(2) caps the backlog at net.core.somaxconn without a word: say so
 * once per listener, so that an operator who asked for more knows. */
static void log_backlog_cap(const tg_listen_conf_t *l)
{
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "re");
    long max = -1;
    if (f == NULL)
        return;
    if (fscanf(f, "%ld", &max) == 1 && max >= 0 && l->backlog > (unsigned long)max)
        tg_log_warn("listen %s: backlog %u capped at net.core.somaxconn = %ld", l->name,
                    (unsigned)l->backlog, max);
    fclose(f);
}

static int open_listener(const tg_listen_conf_t *l)
{
    int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) < 0 ||
        listen(fd, (int)l->backlog) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int open_listeners(const tg_config_t *cfg, int *fds)
{
    for (size_t i = 0; i < cfg->nlisteners; i++)
        log_backlog_cap(&cfg->listeners[i]);
    for (unsigned w = 0; w < cfg->workers; w++) {
        for (size_t i = 0; i < cfg->nlisteners; i++) {
            int fd = open_listener(&cfg->listeners[i]);
            if (fd < 0) {
                tg_log_error("cannot listen on %s: %s", cfg->listeners[i].name, strerror(errno));
                for (size_t k = 0; k < w * cfg->nlisteners + i; k++)
                    close(fds[k]);
                return -1;
            }
            fds[w * cfg->nlisteners + i] = fd;
        }
    }
    return 0;
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    tg_server_t *s = arg;
    if (s->stopping) {
        tg_log_notice("signal %d again: still draining", (int)sig);
        return;
    }
    s->stopping = true;
    tg_sd_notify("STOPPING=1\nSTATUS=draining in-flight requests");
    tg_log_notice("signal %d: no longer accepting, draining in-flight requests", (int)sig);
    for (unsigned i = 0; i < s->nworkers; i++)
        tg_worker_request_stop(&s->workers[i]);
    event_base_loopexit(s->base, NULL);
}

static bool same_addr(const tg_listen_conf_t *a, const tg_listen_conf_t *b)
{
    return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

static void close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* New sockets for the listeners the running config does not have, one per
 * worker; kept listeners are matched by address. */
static int prepare_reload(tg_server_t *s, tg_config_t *cfg, tg_worker_reload_t **out, char *err,
                          size_t errlen)
{
    size_t n = cfg->nlisteners;
    for (unsigned w = 0; w < s->nworkers; w++) {
        out[w] = calloc(1, sizeof(tg_worker_reload_t));
        out[w]->fds = calloc(n ? n : 1, sizeof(int));
        out[w]->old_index = calloc(n ? n : 1, sizeof(size_t));
        out[w]->cfg = tg_config_ref(cfg);
        for (size_t i = 0; i < n; i++)
            out[w]->fds[i] = -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < s->cfg->nlisteners && !same_addr(&s->cfg->listeners[j], &cfg->listeners[i]))
            j++;
        /* A kept socket gets the new backlog from its worker (swap_listeners). */
        if (j == s->cfg->nlisteners || s->cfg->listeners[j].backlog != cfg->listeners[i].backlog)
            log_backlog_cap(&cfg->listeners[i]);
        for (unsigned w = 0; w < s->nworkers; w++) {
            out[w]->old_index[i] = j;
            if (j < s->cfg->nlisteners)
                continue;
            out[w]->fds[i] = open_listener(&cfg->listeners[i]);
            if (out[w]->fds[i] < 0) {
                snprintf(err, errlen, "cannot listen on %s: %s", cfg->listeners[i].name,
                         strerror(errno));
                return -1;
            }
        }
    }
    return 0;
}

static int do_reload(tg_server_t *s, char *err, size_t errlen);

/* Loads the config file again and hands it to every worker. A config that
 * fails to load changes nothing. systemd hears RELOADING=1 before and
 * READY=1 after, whatever the outcome (the old config keeps running). */
static int reload(tg_server_t *s, char *err, size_t errlen)
{
    tg_sd_notify_reloading();
    int rc = do_reload(s, err, errlen);
    tg_sd_notify(rc == 0 ? "READY=1\nSTATUS=configuration reloaded"
                         : "READY=1\nSTATUS=reload failed: running the previous configuration");
    return rc;
}

static int do_reload(tg_server_t *s, char *err, size_t errlen)
{
    tg_config_t *cfg = NULL;
    tg_conf_err_t cerr = {{0}};
    tg_conf_errors_t errs;
    tg_config_opts_t opts = {.errors = &errs};
    if (tg_config_load_opts(s->cfg->file, &opts, &cfg, &cerr) < 0) {
        snprintf(err, errlen, "%s", cerr.msg);
        tg_log_error("reload failed, keeping the running config:");
        for (size_t i = 0; i < errs.n; i++)
            tg_log_error("  %s", errs.msgs[i]);
        if (errs.total > errs.n)
            tg_log_error("  (%zu more errors)", errs.total - errs.n);
        tg_process_metrics_reload(false, cerr.msg);
        return -1;
    }
    if (cfg->workers != s->nworkers)
        tg_log_warn("reload: workers: %u needs a restart; keeping %u", cfg->workers, s->nworkers);
    tg_worker_reload_t **r = calloc(s->nworkers, sizeof(*r));
    if (r == NULL || prepare_reload(s, cfg, r, err, errlen) < 0) {
        tg_log_error("reload failed, keeping the running config: %s", err);
        for (unsigned w = 0; r && w < s->nworkers; w++) {
            if (r[w] == NULL)
                continue;
            close_all(r[w]->fds, cfg->nlisteners);
            tg_config_unref(r[w]->cfg);
            free(r[w]->fds);
            free(r[w]->old_index);
            free(r[w]);
        }
        free(r);
        tg_config_unref(cfg);
        tg_process_metrics_reload(false, err);
        return -1;
    }
    for (unsigned w = 0; w < s->nworkers; w++)
        tg_worker_request_reload(&s->workers[w], r[w]);
    free(r);
    if (s->admin)
        tg_admin_set_config(s->admin, cfg);
    tg_health_stop(s->health);
    s->health = tg_health_start(s->base, cfg);
    tg_resolver_stop(s->resolver);
    s->resolver = tg_resolver_start(s->base, cfg);
    tg_otlp_configure(cfg->tracing);
    char lerr[512];
    if (tg_log_conf_apply(cfg, lerr, sizeof(lerr)) < 0)
        tg_log_error("reload: %s; the log stays where it was", lerr);
    tg_process_metrics_reload(true, NULL);
    tg_config_unref(s->cfg);
    s->cfg = cfg;
    tg_log_notice("reloaded %s: %zu routes, %zu upstreams", cfg->file, cfg->nroutes,
                  cfg->nupstreams);
    return 0;
}

/* SIGHUP, answered when it came from `tollgate -s reload` (reload_signal.h). */
static int sighup_reload(void *arg)
{
    char err[512];
    return reload(arg, err, sizeof(err));
}

/* The admin thread's POST /reload, run here on the main thread. */
static void reload_request_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    tg_server_t *s = arg;
    uint64_t v;
    if (read(fd, &v, sizeof(v)) < 0)
        return;
    char err[512] = "";
    int rc = reload(s, err, sizeof(err));
    pthread_mutex_lock(&s->reload_lock);
    s->reload_rc = rc;
    snprintf(s->reload_err, sizeof(s->reload_err), "%s", err);
    s->reload_pending = false;
    pthread_cond_broadcast(&s->reload_done);
    pthread_mutex_unlock(&s->reload_lock);
}

/* Called on the admin thread. */
static int admin_reload(void *arg, char *err, size_t errlen)
{
    tg_server_t *s = arg;
    pthread_mutex_lock(&s->reload_lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->reload_lock);
        snprintf(err, errlen, "shutting down");
        return -1;
    }
    while (s->reload_pending)
        pthread_cond_wait(&s->reload_done, &s->reload_lock);
    s->reload_pending = true;
    uint64_t one = 1;
    if (write(s->reload_fd, &one, sizeof(one)) < 0) {
        s->reload_pending = false;
        pthread_mutex_unlock(&s->reload_lock);
        snprintf(err, errlen, "cannot reach the main thread");
        return -1;
    }
    while (s->reload_pending)
        pthread_cond_wait(&s->reload_done, &s->reload_lock);
    int rc = s->reload_rc;
    snprintf(err, errlen, "%s", s->reload_err);
    pthread_mutex_unlock(&s->reload_lock);
    return rc;
}

/* SIGUSR1: plugins reopen their files (log rotation). */
static void reopen_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    tg_server_t *s = arg;
    tg_log_notice("SIGUSR1: reopening log files");
    char err[512];
    if (tg_log_conf_apply(s->cfg, err, sizeof(err)) < 0)
        tg_log_error("SIGUSR1: %s", err);
    for (size_t i = 0; i < s->cfg->ninstances; i++) {
        const tg_plugin_inst_t *pi = s->cfg->instances[i];
        if (pi->plugin->reopen)
            pi->plugin->reopen(pi->instance);
    }
}

/* The watchdog's view: a worker stuck in a plugin or a loop is a hang even
 * though the main loop still runs. Half the interval is the same slack the
 * petting itself has. */
static bool workers_alive(void *arg, char *why, size_t whylen)
{
    tg_server_t *s = arg;
    return tg_workers_alive(s->workers, s->nworkers, tg_sd_watchdog_usec() / 2000, why, whylen);
}

static int start_workers(tg_server_t *s, int *fds)
{
    const tg_config_t *cfg = s->cfg;
    for (unsigned i = 0; i < s->nworkers; i++) {
        if (tg_worker_init(&s->workers[i], i, s->cfg, fds + (size_t)i * cfg->nlisteners,
                           cfg->nlisteners) < 0) {
            tg_log_error("worker %u: initialisation failed", i);
            return -1;
        }
    }
    /* Workers inherit a mask with the handled signals blocked, so that only
     * the main thread's event loop sees them. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int rc = 0;
    for (unsigned i = 0; i < s->nworkers && rc == 0; i++)
        rc = tg_worker_start(&s->workers[i]);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int tg_server_run(tg_config_t *cfg)
{
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    /* The server's own reference: a reload replaces it. */
    tg_server_t s = {.cfg = tg_config_ref(cfg), .nworkers = cfg->workers};
    size_t nfds = (size_t)cfg->workers * cfg->nlisteners;
    int *fds = calloc(nfds ? nfds : 1, sizeof(int));
    s.workers = calloc(cfg->workers, sizeof(tg_worker_t));
    s.base = event_base_new();
    if (fds == NULL || s.workers == NULL || s.base == NULL) {
        free(fds);
        free(s.workers);
        if (s.base)
            event_base_free(s.base);
        tg_config_unref(s.cfg);
        return 1;
    }
    /* Signals are caught before the first listen(): from then on the kernel
     * completes handshakes, so a supervisor that sees the port open may send
     * SIGHUP at once, and the default action would kill the process. */
    struct event *sigterm = evsignal_new(s.base, SIGTERM, stop_cb, &s);
    struct event *sigint = evsignal_new(s.base, SIGINT, stop_cb, &s);
    struct event *sigusr1 = evsignal_new(s.base, SIGUSR1, reopen_cb, &s);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    evsignal_add(sigusr1, NULL);
    if (tg_reload_signal_start(s.base, sighup_reload, &s) < 0)
        tg_log_error("cannot catch SIGHUP: %s", strerror(errno));
    char lerr[512];
    bool log_ok = tg_log_conf_apply(cfg, lerr, sizeof(lerr)) == 0;
    if (!log_ok)
        tg_log_error("%s", lerr);
    /* The admin socket listens before any worker accepts: a client that
     * reached the gateway can reach its admin endpoint too. */
    char admin_err[256];
    int admin_fd = -1;
    int lrc = log_ok ? open_listeners(cfg, fds) : -1;
    if (lrc == 0 && cfg->has_admin &&
        (admin_fd = tg_admin_listen(cfg, admin_err, sizeof(admin_err))) < 0) {
        tg_log_error("admin: %s", admin_err);
        close_all(fds, (size_t)cfg->workers * cfg->nlisteners);
        lrc = -1;
    }
    if (lrc < 0) {
        tg_reload_signal_stop();
        event_free(sigterm);
        event_free(sigint);
        event_free(sigusr1);
        free(fds);
        free(s.workers);
        event_base_free(s.base);
        tg_config_unref(s.cfg);
        return 1;
    }
    pthread_mutex_init(&s.reload_lock, NULL);
    pthread_cond_init(&s.reload_done, NULL);
    s.reload_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s.reload_ev = event_new(s.base, s.reload_fd, EV_READ | EV_PERSIST, reload_request_cb, &s);
    event_add(s.reload_ev, NULL);
    tg_metrics_set_workers(s.workers, s.nworkers);
    tg_process_metrics_start();
    tg_otlp_configure(cfg->tracing);
    int rc = start_workers(&s, fds);
    if (rc != 0 && admin_fd >= 0)
        close(admin_fd);
    if (rc == 0 && cfg->has_admin) {
        char msg[256];
        s.admin = tg_admin_start(cfg, admin_fd, s.workers, s.nworkers, msg, sizeof(msg));
        admin_fd = -1;
        if (s.admin != NULL)
            tg_admin_set_reload(s.admin, admin_reload, &s);
        if (s.admin == NULL) {
            tg_log_error("admin: %s", msg);
            rc = -1;
            for (unsigned i = 0; i < s.nworkers; i++)
                tg_worker_request_stop(&s.workers[i]);
        }
    }
    if (rc == 0) {
        for (size_t i = 0; i < cfg->nlisteners; i++)
            tg_log_notice("listening on %s", cfg->listeners[i].name);
        tg_log_notice("tollgate ready: %u workers, %zu routes, %zu upstreams", cfg->workers,
                      cfg->nroutes, cfg->nupstreams);
        if (s.admin)
            tg_admin_set_ready(s.admin, true);
        s.health = tg_health_start(s.base, s.cfg);
        s.resolver = tg_resolver_start(s.base, s.cfg);
        /* Listeners and workers are up: a Type=notify unit is started. */
        char state[160];
        snprintf(state, sizeof(state), "READY=1\nSTATUS=%u workers, %zu routes, %zu upstreams",
                 cfg->workers, cfg->nroutes, cfg->nupstreams);
        tg_sd_notify(state);
        struct tg_sd_watchdog_s *watchdog = tg_sd_watchdog_start(s.base, workers_alive, &s);
        event_base_dispatch(s.base);
        tg_sd_watchdog_stop(watchdog);
        tg_resolver_stop(s.resolver);
        tg_health_stop(s.health);
        s.health = NULL;
        /* A POST /reload that arrived during shutdown gets its answer. */
        pthread_mutex_lock(&s.reload_lock);
        if (s.reload_pending) {
            s.reload_rc = -1;
            snprintf(s.reload_err, sizeof(s.reload_err), "shutting down");
            s.reload_pending = false;
            pthread_cond_broadcast(&s.reload_done);
        }
        pthread_mutex_unlock(&s.reload_lock);
    } else {
        for (unsigned i = 0; i < s.nworkers; i++)
            if (s.workers[i].base)
                tg_worker_request_stop(&s.workers[i]);
    }
    if (s.admin)
        tg_admin_set_ready(s.admin, false);
    for (unsigned i = 0; i < s.nworkers; i++)
        if (s.workers[i].thread)
            tg_worker_join(&s.workers[i]);
    /* The admin thread reads the workers' metrics: it stops before they go. */
    if (s.admin) {
        tg_admin_stop(s.admin);
        s.admin = NULL;
    }
    tg_metrics_set_workers(NULL, 0);
    tg_otlp_stop(); /* after the workers: their last spans are queued */
    for (unsigned i = 0; i < s.nworkers; i++)
        tg_worker_destroy(&s.workers[i]);
    /* Freeing the signal events gives SIGTERM back its default action: a
     * second SIGTERM during the rest of this cleanup (a supervisor repeating
     * its stop) would then end a clean shutdown with status 143. Blocked, it
     * stays pending and the exit status is ours. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGHUP);
    sigaddset(&stop_set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    event_free(sigterm);
    event_free(sigint);
    event_free(sigusr1);
    tg_reload_signal_stop();
    event_free(s.reload_ev);
    close(s.reload_fd);
    pthread_cond_destroy(&s.reload_done);
    pthread_mutex_destroy(&s.reload_lock);
    tg_config_unref(s.cfg);
    event_base_free(s.base);
    free(s.workers);
    free(fds);
    tg_log_notice("stopped");
    return rc == 0 ? 0 : 1;
}
