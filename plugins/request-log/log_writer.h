/*
 * request-log: the writer thread behind one plugin instance.
 *
 * Workers never write to the log file: each fills its own buffer and hands it
 * over whole (tg_reqlog_writer_push), holding the queue lock only to link a
 * pointer. One thread per instance write()s the queue in order. When the
 * queue holds more than max_queued bytes the handed buffer is dropped and its
 * lines are counted, so a slow disk costs log lines, never latency.
 */
#ifndef TG_REQLOG_WRITER_H
#define TG_REQLOG_WRITER_H

#include <stddef.h>
#include <stdint.h>

/* A worker's buffer is handed over once it holds this much: a busy worker
 * hands over a few times per second, not once per request. */
#define TG_REQLOG_BUF_SIZE (64 * 1024)

/* A block of complete log lines. */
typedef struct tg_reqlog_buf_s {
    struct tg_reqlog_buf_s *next; /* queue link, owned by the writer once pushed */
    char *data;                   /* len bytes of lines, each ending in '\n' */
    size_t len;                   /* bytes used */
    size_t cap;                   /* bytes allocated */
    uint64_t lines;               /* lines in data (counted when dropped) */
} tg_reqlog_buf_t;

typedef struct tg_reqlog_writer_s tg_reqlog_writer_t;

/* Starts the thread writing to fd. path is what reopen opens again, and fd is
 * then taken over (fsynced and closed by destroy); NULL (stdout) is never
 * reopened nor closed.
 * Returns NULL when the thread cannot be started. */
tg_reqlog_writer_t *tg_reqlog_writer_start(int fd, const char *path, size_t max_queued);

/* Hands buf (lines > 0) to the writer. Returns an empty buffer for the caller
 * to go on with (recycled, or buf itself when it was dropped; NULL when none
 * could be allocated) and adds to *dropped the lines lost since the last
 * call: buf's own when the queue is full, and those of failed writes. */
tg_reqlog_buf_t *tg_reqlog_writer_push(tg_reqlog_writer_t *w, tg_reqlog_buf_t *buf,
                                       uint64_t *dropped);

/* Makes the writer reopen its path before its next write (log rotation). */
void tg_reqlog_writer_reopen(tg_reqlog_writer_t *w);

/* Writes everything queued, stops the thread, fsyncs and closes the file. */
void tg_reqlog_writer_destroy(tg_reqlog_writer_t *w);

/* A new empty buffer of cap bytes, or NULL. */
tg_reqlog_buf_t *tg_reqlog_buf_new(size_t cap);
void tg_reqlog_buf_free(tg_reqlog_buf_t *b);
/* Makes room for n more bytes (doubling); 0 or -1 when out of memory. */
int tg_reqlog_buf_reserve(tg_reqlog_buf_t *b, size_t n);

#endif
