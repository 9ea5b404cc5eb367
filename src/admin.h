/*
 * The admin endpoint (admin.address): its own thread and event loop, separate
 * from client listeners, serving /healthz, /readyz, /metrics and /config.
 * /healthz, /readyz and /metrics are open to any prober; /config, POST /reload
 * and unknown paths need a Host naming the endpoint and admin.token when set;
 * a request with Origin is refused everywhere (src/admin_guard.h).
 */
#ifndef TG_ADMIN_H
#define TG_ADMIN_H

#include <jansson.h>
#include <stdbool.h>

#include "config.h"

typedef struct tg_worker_s tg_worker_t;
typedef struct tg_admin_s tg_admin_t;

/* Binds admin.address and listens: the socket, or -1 with a message in
 * errbuf. Done with the other listeners, before any worker accepts, so a
 * client that reached the gateway can reach its admin endpoint too. */
int tg_admin_listen(const tg_config_t *cfg, char *errbuf, size_t errlen);
/* Starts the admin thread serving fd (from tg_admin_listen; taken over,
 * closed on failure); NULL with a message in errbuf. */
tg_admin_t *tg_admin_start(tg_config_t *cfg, int fd, tg_worker_t *workers, unsigned nworkers,
                           char *errbuf, size_t errlen);
/* /readyz answers 200 once set (config loaded, listeners up, plugins ready). */
void tg_admin_set_ready(tg_admin_t *a, bool ready);
void tg_admin_stop(tg_admin_t *a);

/* After a reload: /config and /metrics describe cfg from now on (takes a
 * reference; thread-safe). */
void tg_admin_set_config(tg_admin_t *a, tg_config_t *cfg);

/* POST /reload calls fn(arg, err, errlen) on the admin thread; fn returns 0,
 * or -1 with err filled (the FILE:LINE:COL message of the config that failed). */
void tg_admin_set_reload(tg_admin_t *a, int (*fn)(void *arg, char *err, size_t errlen), void *arg);

/* What GET /config serves: the effective configuration, defaults filled in,
 * secrets masked. NULL when out of memory; the caller json_decref()s it. */
json_t *tg_admin_config_json(const tg_config_t *cfg);

/* Whether a config key looks secret: password, secret, token, private,
 * authorization, or ending in "key"; any case (also `tollgate -T`'s rule). */
bool tg_admin_secret_name(const char *k);

/* Replaces every string under a key that looks secret (tg_admin_secret_name),
 * at any depth, by "***". */
void tg_admin_mask_secrets(json_t *root);

/* On the admin thread (plugin actions): the current config, with a reference
 * (tg_config_unref), and the count of workers; NULL on any other thread. */
tg_config_t *tg_admin_thread_config(unsigned *nworkers);

#endif
