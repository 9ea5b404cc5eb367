#include "upstream_shared.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A registry entry; the state is embedded so that put() finds its entry. */
typedef struct entry_s {
    struct entry_s *next;
    unsigned refs; /* under lock */
    char *key;     /* "u/<name>" or "t/<upstream>/<address>" */
    union {
        tg_ushared_t u;
        tg_tshared_t t;
    } s;
} entry_t;

const char *const tg_limit_names[TG_LIMIT_COUNT] = {"max_connections", "max_pending",
                                                    "max_requests"};
const char *const tg_check_names[TG_CHECK_COUNT] = {"success", "failure", "timeout"};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry_t *entries;

static void *get(const char *kind, const char *a, const char *b)
{
    size_t n = strlen(kind) + strlen(a) + (b ? strlen(b) : 0) + 3;
    char *key = malloc(n);
    if (key == NULL)
        return NULL;
    snprintf(key, n, "%s/%s%s%s", kind, a, b ? "/" : "", b ? b : "");
    pthread_mutex_lock(&lock);
    entry_t *e = entries;
    while (e != NULL && strcmp(e->key, key) != 0)
        e = e->next;
    if (e != NULL) {
        free(key);
        e->refs++;
    } else if ((e = calloc(1, sizeof(*e))) != NULL) {
        e->key = key;
        e->refs = 1;
        e->next = entries;
        entries = e;
    } else {
        free(key);
    }
    pthread_mutex_unlock(&lock);
    return e ? &e->s : NULL;
}

static void put(void *state)
{
    if (state == NULL)
        return;
    entry_t *e = (entry_t *)((char *)state - offsetof(entry_t, s));
    pthread_mutex_lock(&lock);
    if (--e->refs == 0) {
        for (entry_t **p = &entries; *p != NULL; p = &(*p)->next) {
            if (*p == e) {
                *p = e->next;
                break;
            }
        }
        free(e->key);
        free(e);
    }
    pthread_mutex_unlock(&lock);
}

tg_ushared_t *tg_ushared_get(const char *upstream)
{
    return get("u", upstream, NULL);
}

void tg_ushared_put(tg_ushared_t *u)
{
    put(u);
}

tg_tshared_t *tg_tshared_get(const char *upstream, const char *address)
{
    return get("t", upstream, address);
}

void tg_tshared_put(tg_tshared_t *t)
{
    put(t);
}
