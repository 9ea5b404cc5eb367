/*
 * Admin actions registered by plugins: a small table under one mutex. The
 * mutex is held while an action runs, so tg_admin_action_remove() returning
 * means no call is under way and the plugin may free its data.
 */
#include "admin_action.h"

#include <pthread.h>
#include <string.h>

#define ACTIONS_MAX 16
#define PATH_MAX_LEN 63

typedef struct {
    char path[PATH_MAX_LEN + 1];
    tg_admin_action_fn fn;
    void *data;
} action_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static action_t actions[ACTIONS_MAX];
static size_t nactions;

static const char *const core_paths[] = {"/healthz", "/readyz", "/metrics", "/config", "/reload"};

static bool valid_path(const char *path)
{
    size_t len = path != NULL ? strlen(path) : 0;
    if (len < 2 || len > PATH_MAX_LEN || path[0] != '/' || strpbrk(path, "? \t\r\n") != NULL)
        return false;
    for (size_t i = 0; i < sizeof(core_paths) / sizeof(core_paths[0]); i++)
        if (strcmp(path, core_paths[i]) == 0)
            return false;
    return true;
}

/* Under lock. */
static action_t *find(const char *path, size_t plen)
{
    for (size_t i = 0; i < nactions; i++)
        if (strlen(actions[i].path) == plen && memcmp(actions[i].path, path, plen) == 0)
            return &actions[i];
    return NULL;
}

int tg_admin_action_add(const char *path, tg_admin_action_fn fn, void *data)
{
    if (!valid_path(path) || fn == NULL)
        return -1;
    int rc = -1;
    pthread_mutex_lock(&lock);
    if (find(path, strlen(path)) == NULL && nactions < ACTIONS_MAX) {
        action_t *a = &actions[nactions++];
        strcpy(a->path, path);
        a->fn = fn;
        a->data = data;
        rc = 0;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void tg_admin_action_remove(const char *path, void *data)
{
    if (path == NULL)
        return;
    pthread_mutex_lock(&lock);
    action_t *a = find(path, strlen(path));
    if (a != NULL && a->data == data)
        *a = actions[--nactions];
    pthread_mutex_unlock(&lock);
}

bool tg_admin_action_exists(const char *path, size_t plen)
{
    pthread_mutex_lock(&lock);
    bool found = find(path, plen) != NULL;
    pthread_mutex_unlock(&lock);
    return found;
}

int tg_admin_action_run(const char *path, size_t plen, const char *body, size_t len, char *out)
{
    int status = 0;
    out[0] = '\0';
    pthread_mutex_lock(&lock);
    action_t *a = find(path, plen);
    if (a != NULL) {
        status = a->fn(a->data, body, len, out);
        out[TG_ADMIN_ACTION_OUT_MAX - 1] = '\0';
        if (status < 200 || status > 599)
            status = 500;
    }
    pthread_mutex_unlock(&lock);
    return status;
}
