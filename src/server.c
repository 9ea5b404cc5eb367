#include "server.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"
#include "chain.h"
#include "log.h"
#include "metrics.h"
#include "tunnel.h"
#include "worker.h"

typedef struct {
    tg_config_t *cfg;
    tg_worker_t *workers;
    unsigned nworkers;
    struct event_base *base;
    tg_admin_t *admin;
    bool stopping;
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

static int open_listener(const tg_listen_conf_t *l)
{
    int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) < 0 || listen(fd, 4096) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int open_listeners(const tg_config_t *cfg, int *fds)
{
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
    tg_log_notice("signal %d: no longer accepting, draining in-flight requests", (int)sig);
    for (unsigned i = 0; i < s->nworkers; i++)
        tg_worker_request_stop(&s->workers[i]);
    event_base_loopexit(s->base, NULL);
}

/* SIGUSR1: plugins reopen their files (log rotation). */
static void reopen_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    tg_server_t *s = arg;
    tg_log_notice("SIGUSR1: reopening log files");
    for (size_t i = 0; i < s->cfg->ninstances; i++) {
        const tg_plugin_inst_t *pi = s->cfg->instances[i];
        if (pi->plugin->reopen)
            pi->plugin->reopen(pi->instance);
    }
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
    tg_server_t s = {.cfg = cfg, .nworkers = cfg->workers};
    size_t nfds = (size_t)cfg->workers * cfg->nlisteners;
    int *fds = calloc(nfds ? nfds : 1, sizeof(int));
    s.workers = calloc(cfg->workers, sizeof(tg_worker_t));
    s.base = event_base_new();
    if (fds == NULL || s.workers == NULL || s.base == NULL || open_listeners(cfg, fds) < 0) {
        free(fds);
        free(s.workers);
        if (s.base)
            event_base_free(s.base);
        return 1;
    }
    struct event *sigterm = evsignal_new(s.base, SIGTERM, stop_cb, &s);
    struct event *sigint = evsignal_new(s.base, SIGINT, stop_cb, &s);
    struct event *sigusr1 = evsignal_new(s.base, SIGUSR1, reopen_cb, &s);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    evsignal_add(sigusr1, NULL);
    tg_tunnel_metrics_register();
    int rc = start_workers(&s, fds);
    tg_metrics_set_workers(s.workers, s.nworkers);
    if (rc == 0 && cfg->has_admin) {
        char msg[256];
        s.admin = tg_admin_start(cfg, s.workers, s.nworkers, msg, sizeof(msg));
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
        event_base_dispatch(s.base);
    } else {
        for (unsigned i = 0; i < s.nworkers; i++)
            if (s.workers[i].base)
                tg_worker_request_stop(&s.workers[i]);
    }
    if (s.admin)
        tg_admin_set_ready(s.admin, false);
    for (unsigned i = 0; i < s.nworkers; i++) {
        if (s.workers[i].thread)
            tg_worker_join(&s.workers[i]);
        tg_worker_destroy(&s.workers[i]);
    }
    if (s.admin)
        tg_admin_stop(s.admin);
    tg_metrics_set_workers(NULL, 0);
    event_free(sigterm);
    event_free(sigint);
    event_free(sigusr1);
    event_base_free(s.base);
    free(s.workers);
    free(fds);
    tg_log_notice("stopped");
    return rc == 0 ? 0 : 1;
}
