/*
 * jwt plugin: a JSON Web Key Set fetched from an upstream (jwks_uri) and
 * refreshed, one copy per worker (the fetch API runs on a worker's loop, and
 * a per-worker set needs no lock). Until the first fetch succeeds the set is
 * empty: tokens whose kid only it could know get 401 "unknown key".
 */
#ifndef TG_JWT_REMOTE_H
#define TG_JWT_REMOTE_H

#include <event2/event.h>
#include <stdint.h>

#include "jwt_keys.h"

typedef struct {
    char *upstream;      /* upstream name, as in `upstreams:` */
    char *path;          /* origin-form target, "/.well-known/jwks.json" */
    uint64_t refresh_ms; /* time between successful fetches */
} tg_jwt_remote_conf_t;

typedef struct tg_jwt_remote_s tg_jwt_remote_t;

/* Schedules the first fetch at once. on_change(arg) runs on the worker after
 * every successful fetch that replaced the set. NULL when out of memory. */
tg_jwt_remote_t *tg_jwt_remote_start(const tg_jwt_remote_conf_t *conf, struct event_base *base,
                                     void (*on_change)(void *arg), void *arg);
/* The current set (empty before the first successful fetch); valid until the
 * worker's loop runs again. */
const tg_jwt_keyset_t *tg_jwt_remote_keys(const tg_jwt_remote_t *r);
/* A token named a kid nobody knows: fetch again now, unless a fetch is in
 * flight or one started less than TG_JWT_REMOTE_MIN_INTERVAL_MS ago (so junk
 * kids cannot turn the gateway into a load generator against the IdP). */
#define TG_JWT_REMOTE_MIN_INTERVAL_MS 30000
void tg_jwt_remote_poke(tg_jwt_remote_t *r);
void tg_jwt_remote_stop(tg_jwt_remote_t *r);

void tg_jwt_remote_conf_free(tg_jwt_remote_conf_t *c);

#endif
