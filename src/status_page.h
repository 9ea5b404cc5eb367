/*
 * The admin endpoint's status page: GET /status (one HTML page, no external
 * assets, a small inline script that polls its JSON twin) and GET
 * /status.json. Per route: requests, request rate and error rate over the
 * last ~10 s, p50/p99 (from the duration histogram since start), requests in
 * flight; per upstream: connections, retries, p50/p99 of the response time,
 * targets with their passive health; client connections per listener;
 * recent reloads. What HAProxy's stats page is to its users.
 *
 * Rates need two readings: each /status.json keeps a snapshot (at most one
 * a second, the last 16) and measures against the oldest one under 10 s;
 * with none a second old yet, rates are null. Admin thread only.
 */
#ifndef TG_STATUS_PAGE_H
#define TG_STATUS_PAGE_H

#include <event2/buffer.h>

typedef struct tg_status_s tg_status_t;
typedef struct tg_config_s tg_config_t;
typedef struct tg_worker_s tg_worker_t;

tg_status_t *tg_status_new(void);
void tg_status_free(tg_status_t *st);

/* The JSON document (application/json). */
void tg_status_json(tg_status_t *st, struct evbuffer *out, const tg_config_t *cfg,
                    tg_worker_t *workers, unsigned nworkers);

/* The HTML page (text/html; charset=utf-8). */
void tg_status_html(struct evbuffer *out);

#endif
