/* sd_notify(3)'s datagram protocol (src/sd_notify.h). */
#include "sd_notify.h"

#include <errno.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

int tg_sd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0')
        return 0;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sun.sun_path)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(sun.sun_path, path, len);
    if (path[0] == '@') /* abstract namespace: a leading NUL, not NUL-terminated */
        sun.sun_path[0] = '\0';
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, alen);
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(state) ? 0 : -1;
}

int tg_sd_notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char state[80];
    snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    return tg_sd_notify(state);
}

uint64_t tg_sd_watchdog_usec(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    if (usec == NULL)
        return 0;
    char *end;
    unsigned long long v = strtoull(usec, &end, 10);
    if (*end != '\0' || v == 0)
        return 0;
    if (pid != NULL && strtol(pid, NULL, 10) != (long)getpid())
        return 0; /* meant for another process (a parent that exec'd us keeps its own) */
    return v;
}

struct tg_sd_watchdog_s {
    struct event *ev;
    tg_sd_alive_fn alive;
    void *arg;
};

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_sd_watchdog_s *wd = arg;
    char why[160];
    if (!wd->alive(wd->arg, why, sizeof(why))) {
        tg_log_error("systemd watchdog: not petting it: %s", why);
        return;
    }
    if (tg_sd_notify("WATCHDOG=1") < 0)
        tg_log_warn("sd_notify WATCHDOG=1: %s", strerror(errno));
}

void tg_sd_watchdog_stop(struct tg_sd_watchdog_s *wd)
{
    if (wd == NULL)
        return;
    event_free(wd->ev);
    free(wd);
}

struct tg_sd_watchdog_s *tg_sd_watchdog_start(struct event_base *base, tg_sd_alive_fn alive,
                                              void *arg)
{
    uint64_t usec = tg_sd_watchdog_usec();
    if (usec == 0)
        return NULL;
    /* Half the interval, as sd_watchdog_enabled(3) recommends: a late tick
     * must not look like a hang. */
    struct timeval tv = {.tv_sec = (time_t)(usec / 2 / 1000000),
                         .tv_usec = (suseconds_t)(usec / 2 % 1000000)};
    struct tg_sd_watchdog_s *wd = calloc(1, sizeof(*wd));
    if (wd == NULL)
        return NULL;
    wd->alive = alive;
    wd->arg = arg;
    wd->ev = event_new(base, -1, EV_PERSIST, watchdog_cb, wd);
    if (wd->ev == NULL || event_add(wd->ev, &tv) < 0) {
        if (wd->ev != NULL)
            event_free(wd->ev);
        free(wd);
        return NULL;
    }
    tg_log_info("systemd watchdog: WATCHDOG=1 every %llu ms",
                (unsigned long long)(usec / 2 / 1000));
    watchdog_cb(-1, 0, wd);
    return wd;
}
