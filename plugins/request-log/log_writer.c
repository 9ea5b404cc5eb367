/* request-log: the per-instance writer thread (see log_writer.h). */
#include "log_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tollgate/log.h"

/* Empty buffers kept for reuse; more are freed (a burst is over). */
#define SPARE_MAX 16

struct tg_reqlog_writer_s {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tg_reqlog_buf_t *head, *tail; /* queue, oldest first (under mu) */
    tg_reqlog_buf_t *spare;       /* empty buffers to reuse (under mu) */
    size_t nspare;                /* (under mu) */
    size_t queued;                /* bytes pushed and not yet written (under mu) */
    size_t max_queued;
    bool stop;             /* (under mu) */
    bool reopen;           /* (under mu) */
    _Atomic uint64_t lost; /* lines whose write() failed */
    int fd;                /* only the writer thread touches it once started */
    char *path;            /* NULL: never reopened */
    int last_errno;        /* writer thread only: to report an error once */
};

tg_reqlog_buf_t *tg_reqlog_buf_new(size_t cap)
{
    tg_reqlog_buf_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->data = malloc(cap);
    if (b->data == NULL) {
        free(b);
        return NULL;
    }
    b->cap = cap;
    return b;
}

void tg_reqlog_buf_free(tg_reqlog_buf_t *b)
{
    if (b != NULL) {
        free(b->data);
        free(b);
    }
}

int tg_reqlog_buf_reserve(tg_reqlog_buf_t *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (d == NULL)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

/* Writes all of b; false when the file refused it. */
static bool write_all(tg_reqlog_writer_t *w, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k >= 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            /* stdout may be a non-blocking pipe: this thread may wait. */
            struct pollfd pfd = {.fd = w->fd, .events = POLLOUT};
            poll(&pfd, 1, 1000);
            continue;
        }
        if (errno != w->last_errno)
            tg_log(TG_LOG_ERROR, "request-log: write to %s failed: %s (lines are lost)",
                   w->path ? w->path : "stdout", strerror(errno));
        w->last_errno = errno;
        return false;
    }
    w->last_errno = 0;
    return true;
}

static void do_reopen(tg_reqlog_writer_t *w)
{
    int fd = open(w->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        /* Keep writing to the old file rather than losing lines. */
        tg_log(TG_LOG_ERROR, "request-log: cannot reopen %s: %s (still writing to the old file)",
               w->path, strerror(errno));
        return;
    }
    fsync(w->fd);
    close(w->fd);
    w->fd = fd;
}

/* Back to the spare list, or freed; called under mu. */
static void recycle_locked(tg_reqlog_writer_t *w, tg_reqlog_buf_t *b)
{
    if (w->nspare < SPARE_MAX && b->cap <= 4 * TG_REQLOG_BUF_SIZE) {
        b->len = 0;
        b->lines = 0;
        b->next = w->spare;
        w->spare = b;
        w->nspare++;
    } else {
        tg_reqlog_buf_free(b);
    }
}

/* Writes a batch taken off the queue (without the lock), then gives the
 * buffers back. */
static void write_batch(tg_reqlog_writer_t *w, tg_reqlog_buf_t *batch)
{
    size_t bytes = 0;
    for (tg_reqlog_buf_t *b = batch; b != NULL; b = b->next) {
        if (!write_all(w, b->data, b->len))
            atomic_fetch_add(&w->lost, b->lines);
        bytes += b->len;
    }
    pthread_mutex_lock(&w->mu);
    w->queued -= bytes;
    for (tg_reqlog_buf_t *b = batch, *next; b != NULL; b = next) {
        next = b->next;
        recycle_locked(w, b);
    }
    pthread_mutex_unlock(&w->mu);
}

static void *writer_main(void *arg)
{
    tg_reqlog_writer_t *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->head == NULL && !w->stop && !w->reopen)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->reopen) {
            w->reopen = false;
            pthread_mutex_unlock(&w->mu);
            do_reopen(w);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        if (w->head == NULL) /* stop, and everything written */
            break;
        tg_reqlog_buf_t *batch = w->head;
        w->head = w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        write_batch(w, batch);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void writer_free(tg_reqlog_writer_t *w)
{
    while (w->spare != NULL) {
        tg_reqlog_buf_t *b = w->spare;
        w->spare = b->next;
        tg_reqlog_buf_free(b);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->path);
    free(w);
}

tg_reqlog_writer_t *tg_reqlog_writer_start(int fd, const char *path, size_t max_queued)
{
    tg_reqlog_writer_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->fd = fd;
    w->max_queued = max_queued;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (path != NULL && (w->path = strdup(path)) == NULL) {
        writer_free(w);
        return NULL;
    }
    /* Signals are the main thread's business (SIGTERM, SIGUSR1...). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        writer_free(w);
        return NULL;
    }
    return w;
}

tg_reqlog_buf_t *tg_reqlog_writer_push(tg_reqlog_writer_t *w, tg_reqlog_buf_t *buf,
                                       uint64_t *dropped)
{
    tg_reqlog_buf_t *next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->queued + buf->len > w->max_queued) {
        *dropped += buf->lines;
        buf->len = 0;
        buf->lines = 0;
        next = buf;
    } else {
        buf->next = NULL;
        if (w->tail)
            w->tail->next = buf;
        else
            w->head = buf;
        w->tail = buf;
        w->queued += buf->len;
        pthread_cond_signal(&w->cv);
        if ((next = w->spare) != NULL) {
            w->spare = next->next;
            w->nspare--;
        }
    }
    pthread_mutex_unlock(&w->mu);
    *dropped += atomic_exchange(&w->lost, 0);
    if (next == NULL)
        next = tg_reqlog_buf_new(TG_REQLOG_BUF_SIZE);
    else
        next->next = NULL;
    return next;
}

void tg_reqlog_writer_reopen(tg_reqlog_writer_t *w)
{
    if (w->path == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->reopen = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void tg_reqlog_writer_destroy(tg_reqlog_writer_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    if (w->path != NULL) {
        fsync(w->fd);
        close(w->fd);
    }
    writer_free(w);
}
