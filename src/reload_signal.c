/* SIGHUP with an answer (src/reload_signal.h). */
#include "reload_signal.h"

#include <errno.h>
#include <event2/event.h>
#include <grp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Requesters waiting for the next reload. More at once than this is a
 * script gone wrong; the extra ones time out rather than block anything. */
#define MAX_WAITING 32

static atomic_int waiting[MAX_WAITING]; /* pids; 0 = free slot */
static int wake_fd = -1;
static struct event *wake_ev;
static int (*reload_fn)(void *);
static void *reload_arg;

/* Async-signal-safe: atomics and write(2) only. */
static void on_sighup(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    int saved = errno;
    if (si != NULL && si->si_code == SI_QUEUE && si->si_value.sival_int == TG_RELOAD_COOKIE &&
        si->si_pid > 0) {
        for (int i = 0; i < MAX_WAITING; i++) {
            int free_slot = 0;
            if (atomic_compare_exchange_strong(&waiting[i], &free_slot, (int)si->si_pid))
                break;
        }
    }
    uint64_t one = 1;
    ssize_t n = write(wake_fd, &one, sizeof(one));
    (void)n; /* the counter only saturates: the loop wakes anyway */
    errno = saved;
}

static void answer(pid_t pid, bool ok)
{
    union sigval v = {.sival_int = ok ? 1 : 0};
    if (sigqueue(pid, TG_RELOAD_REPLY_SIGNAL, v) < 0)
        tg_log_warn("reload: cannot answer pid %d: %s", (int)pid, strerror(errno));
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    uint64_t count;
    if (read(fd, &count, sizeof(count)) != sizeof(count))
        return;
    /* Take the requesters first: one that comes during the reload is
     * answered by the next one, which it woke. */
    pid_t batch[MAX_WAITING];
    int n = 0;
    for (int i = 0; i < MAX_WAITING; i++) {
        int pid = atomic_exchange(&waiting[i], 0);
        if (pid != 0)
            batch[n++] = pid;
    }
    tg_log_notice("SIGHUP: reloading the configuration%s", n > 0 ? " (tollgate -s reload)" : "");
    bool ok = reload_fn(reload_arg) == 0;
    for (int i = 0; i < n; i++)
        answer(batch[i], ok);
}

int tg_reload_signal_start(struct event_base *base, int (*reload)(void *arg), void *arg)
{
    reload_fn = reload;
    reload_arg = arg;
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0)
        return -1;
    wake_ev = event_new(base, wake_fd, EV_READ | EV_PERSIST, wake_cb, NULL);
    if (wake_ev == NULL || event_add(wake_ev, NULL) < 0)
        return -1;
    struct sigaction sa = {.sa_sigaction = on_sighup, .sa_flags = SA_SIGINFO | SA_RESTART};
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGHUP, &sa, NULL);
}

void tg_reload_signal_stop(void)
{
    struct sigaction sa = {.sa_handler = SIG_DFL};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    if (wake_ev != NULL)
        event_free(wake_ev);
    wake_ev = NULL;
    if (wake_fd >= 0)
        close(wake_fd);
    wake_fd = -1;
    for (int i = 0; i < MAX_WAITING; i++) {
        int pid = atomic_exchange(&waiting[i], 0);
        if (pid != 0)
            answer(pid, false); /* stopping: it was not reloaded */
    }
}

/* The gateway answers with a signal, which it may only send to a process of
 * its own user: root asking a gateway that runs as `tollgate` (sudo tollgate
 * -s reload) becomes that user first. It needs nothing of root any more:
 * the file was checked already. */
static int become_owner_of(pid_t pid, char *why, size_t whylen)
{
    char proc[32];
    struct stat st;
    snprintf(proc, sizeof(proc), "/proc/%d", (int)pid);
    if (geteuid() != 0 || stat(proc, &st) < 0 || st.st_uid == 0)
        return 0;
    if (setgroups(0, NULL) < 0 || setresgid(st.st_gid, st.st_gid, st.st_gid) < 0 ||
        setresuid(st.st_uid, st.st_uid, st.st_uid) < 0) {
        snprintf(why, whylen, "cannot become uid %u to talk to pid %d: %s", (unsigned)st.st_uid,
                 (int)pid, strerror(errno));
        return -1;
    }
    return 0;
}

int tg_reload_request(pid_t pid, unsigned timeout_ms, char *why, size_t whylen)
{
    if (become_owner_of(pid, why, whylen) < 0)
        return -1;
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, TG_RELOAD_REPLY_SIGNAL);
    /* Blocked before asking: the answer may come before sigtimedwait(). */
    sigprocmask(SIG_BLOCK, &set, &old);
    union sigval v = {.sival_int = TG_RELOAD_COOKIE};
    int rc = -1;
    if (sigqueue(pid, SIGHUP, v) < 0) {
        snprintf(why, whylen, "cannot signal pid %d: %s", (int)pid, strerror(errno));
        goto out;
    }
    struct timespec end, now;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += timeout_ms / 1000;
    end.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (end.tv_nsec >= 1000000000) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000;
    }
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long left = (end.tv_sec - now.tv_sec) * 1000000000ll + (end.tv_nsec - now.tv_nsec);
        if (left <= 0) {
            snprintf(why, whylen, "pid %d did not answer within %u ms", (int)pid, timeout_ms);
            break;
        }
        struct timespec ts = {.tv_sec = left / 1000000000ll, .tv_nsec = left % 1000000000ll};
        siginfo_t si;
        if (sigtimedwait(&set, &si, &ts) < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            snprintf(why, whylen, "waiting for pid %d: %s", (int)pid, strerror(errno));
            break;
        }
        if (si.si_pid != pid || si.si_code != SI_QUEUE)
            continue; /* not the answer we wait for */
        rc = si.si_value.sival_int == 1 ? 0 : 1;
        break;
    }
out:
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}
