/*
 * Streams over a socket, plain or TLS (see stream.h).
 *
 * Two events per stream: `rev` (EV_READ, persistent, carries the read
 * timeout) is pending while the stream wants bytes; `wev` (EV_WRITE, not
 * persistent, carries the write timeout) is added only while the kernel or
 * OpenSSL refused output, and is also activated by hand (event_active, no
 * syscall) to run deferred work in the same loop pass: a write of what was
 * added to the output, a triggered read callback, a read of TLS records
 * OpenSSL already holds. Never event_active the persistent `rev`: libevent
 * would re-add a deleted persistent event that has a timeout. `wev` lives
 * with the buffers: a parked stream keeps `rev` only.
 *
 * The worker's base uses EPOLL_USE_CHANGELIST, so turning an interest off and
 * on within one pass costs no epoll_ctl.
 */
#include "stream.h"

#include <errno.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pool.h"
#include "tollgate/clock.h"

/* Bytes asked for per read(2) / SSL_read_ex; a bulk transfer reads up to
 * READ_ROUNDS of them per readiness before yielding to other connections.
 * libevent puts a header (48 bytes on 64-bit) in front of each chain and
 * rounds the chain up to a power of two, so this gives 16 KiB chains (16384
 * gave 32 KiB ones). */
#define CHAIN_HDR 48
#define READ_CHUNK (16384 - CHAIN_HDR)
#define READ_ROUNDS 4
/* One TLS record's worth: output is pulled into one piece this large before
 * SSL_write_ex, so a head and a small body go out as one record and one
 * write(2), and a large body in full records. */
#define TLS_RECORD 16384
/* A read into an empty input (a head, on a keep-alive connection) must not
 * cost a 16 KiB chain (libevent rounds a chain up to a power of two, header
 * included: a 32 KiB malloc and free per read). A plain read is offered a
 * small chain, which malloc serves from its per-thread cache, and the rest of
 * READ_CHUNK in the thread's spill buffer, copied in when used; a TLS record
 * is decrypted into the spill and copied. Once reads come back large the
 * stream reads whole chunks directly, until one is small again. */
#define SMALL_READ 896
static _Thread_local char spill[READ_CHUNK];

/* Compact on purpose: a parked client connection is this plus its owner's
 * area (tg_stream_new_with), so every idle keep-alive connection pays for
 * each field. Durations and watermarks fit 32 bits (49 days, 4 GiB); the
 * flags are bits. */
struct tg_stream_s {
    struct event rev;
    struct event *wev; /* with the buffers: none while parked */
    SSL *ssl;
    struct evbuffer *in, *out; /* NULL while parked */
    const tg_stream_cbs_t *cb; /* never NULL: `none` when unset */
    void *arg;
    uint64_t deadline_ms; /* connect + handshake of a connecting stream (monotonic) */
    uint32_t read_ms, write_ms;
    uint32_t rev_ms; /* the timeout rev was added with */
    uint32_t read_high, write_low;
    int fd;
    int16_t connect_error;     /* connect(2) failed at once: reported from the loop */
    int16_t error;             /* errno of the last failure (tg_stream_error) */
    uint16_t alloc_size;       /* with the owner's area (pool.h) */
    bool reading : 1;          /* enabled by the owner */
    bool connect_side : 1;     /* tg_stream_connect: report CONNECTED */
    bool connecting : 1;       /* TCP connect in progress */
    bool connect_done : 1;     /* connect(2) left it established: no EV_WRITE wait */
    bool handshaking : 1;      /* TLS handshake not finished */
    bool hs_wants_write : 1;   /* the handshake waits for EV_WRITE (else EV_READ) */
    bool write_blocked : 1;    /* the last write was refused: wait for EV_WRITE */
    bool write_wants_read : 1; /* SSL_write wants EV_READ first */
    bool read_wants_write : 1; /* SSL_read wants EV_WRITE first */
    bool rev_on : 1, wev_on : 1;
    bool sched_write : 1, sched_read : 1, sched_pending : 1; /* deferred work on wev */
    bool eof : 1;
    bool failed : 1;        /* a fatal error: no close_notify, no more I/O */
    bool error_pending : 1; /* tg_stream_send failed: reported from the loop */
    bool wrote_sync : 1;    /* tg_stream_send wrote: the write callback runs from the loop */
    bool starved : 1;       /* TLS: the last SSL_read_ex wanted more bytes from the socket */
    bool bulk : 1;          /* the last read was large: read into a full chunk */
    bool in_cb : 1;         /* a callback runs: tg_stream_free defers the free */
    bool dead : 1;
    bool is_pipe : 1;      /* in-memory (tg_stream_new_pipe): its pipe_ext_t is the owner area */
    bool keep_buffers : 1; /* TLS: SSL_MODE_RELEASE_BUFFERS is off until parked */
};

static const tg_stream_cbs_t none;

/* Where the owner's area starts (tg_stream_new_with): 8-byte aligned. */
#define OWNER_OFFSET ((sizeof(struct tg_stream_s) + 7) & ~(size_t)7)

/* An in-memory stream's pipe, kept in its owner area: socket streams, the
 * numerous ones, do not carry these two pointers. */
typedef struct {
    const tg_stream_pipe_t *ops;
    void *arg;
} pipe_ext_t;

static const pipe_ext_t *pipe_ext(const tg_stream_t *s)
{
    return s->is_pipe ? (const pipe_ext_t *)((const char *)s + OWNER_OFFSET) : NULL;
}

static uint32_t clamp32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static void rev_cb(evutil_socket_t fd, short what, void *arg);
static void destroy(tg_stream_t *s);
static void wev_cb(evutil_socket_t fd, short what, void *arg);
static void update_read(tg_stream_t *s);

static int make_buffers(tg_stream_t *s);

/* Deferred work runs from wev, which a stream made without buffers (or a
 * parked one) gets here; without memory for it the stream fails, and its
 * owner's timeout ends it. */
static void activate(tg_stream_t *s)
{
    if (s->wev == NULL && make_buffers(s) < 0) {
        s->failed = true;
        return;
    }
    event_active(s->wev, EV_WRITE, 1);
}

static bool established(const tg_stream_t *s)
{
    return !s->connecting && !s->handshaking;
}

static void schedule_write(tg_stream_t *s)
{
    if (s->sched_write || s->write_blocked || s->write_wants_read || s->failed || !established(s))
        return;
    s->sched_write = true;
    activate(s);
}

static void out_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    (void)b;
    if (info->n_added > 0)
        schedule_write(arg);
}

/* The consumer drained input: reading may resume below the watermark. */
static void in_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    tg_stream_t *s = arg;
    if (info->n_deleted > 0 && !s->rev_on && s->read_high && evbuffer_get_length(b) < s->read_high)
        update_read(s);
}

static void free_buffers(tg_stream_t *s)
{
    if (s->in)
        evbuffer_free(s->in);
    if (s->out)
        evbuffer_free(s->out);
    if (s->wev)
        tg_pool_event_free(s->wev);
    s->in = s->out = NULL;
    s->wev = NULL;
    s->wev_on = false;
}

/* The buffers and wev: made when first needed (a new stream's first read or
 * write, a parked stream waking up). */
static int make_buffers(tg_stream_t *s)
{
    s->in = evbuffer_new();
    s->out = evbuffer_new();
    s->wev =
        tg_pool_event_new(event_get_base(&s->rev), s->fd, s->is_pipe ? 0 : EV_WRITE, wev_cb, s);
    if (s->in == NULL || s->out == NULL || s->wev == NULL ||
        evbuffer_add_cb(s->in, in_cb, s) == NULL || evbuffer_add_cb(s->out, out_cb, s) == NULL) {
        free_buffers(s);
        return -1;
    }
    return 0;
}

tg_stream_t *tg_stream_new(struct event_base *base, int fd, SSL *ssl)
{
    return tg_stream_new_with(base, fd, ssl, 0, NULL);
}

tg_stream_t *tg_stream_new_with(struct event_base *base, int fd, SSL *ssl, size_t owner_size,
                                void **owner)
{
    if (owner_size > TG_POOL_MAX - OWNER_OFFSET)
        return NULL;
    tg_stream_t *s = tg_pool_alloc(OWNER_OFFSET + owner_size);
    if (s == NULL)
        return NULL;
    s->alloc_size = (uint16_t)(OWNER_OFFSET + owner_size);
    s->cb = &none;
    if (owner != NULL)
        *owner = (char *)s + OWNER_OFFSET;
    s->fd = fd;
    /* No buffers yet: an accepted connection gets them with its first bytes,
     * so that accepting a burst leaves nothing but the stream itself. */
    if (event_assign(&s->rev, base, fd, EV_READ | EV_PERSIST, rev_cb, s) < 0 ||
        (owner == NULL && make_buffers(s) < 0) || (ssl != NULL && SSL_set_fd(ssl, fd) != 1)) {
        free_buffers(s);
        ERR_clear_error();
        destroy(s);
        return NULL;
    }
    if (ssl != NULL) {
        s->ssl = ssl;
        s->handshaking = true;
        /* Partial writes and a moved retry buffer: the output is an evbuffer
         * whose first chain may be pulled up between attempts. Read-ahead:
         * one read(2) per record instead of a header read and a body read. */
        SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
        SSL_set_read_ahead(ssl, 1);
        if (SSL_is_server(ssl))
            SSL_set_accept_state(ssl);
        else
            SSL_set_connect_state(ssl);
    }
    return s;
}

static void destroy(tg_stream_t *s)
{
    tg_pool_free(s, s->alloc_size);
}

void tg_stream_free(tg_stream_t *s)
{
    if (s == NULL || s->dead)
        return;
    event_del(&s->rev);
    if (s->ssl != NULL) {
        /* close_notify, so that the peer can tell our close from a
         * truncation; one non-blocking attempt. */
        if (!s->failed && SSL_is_init_finished(s->ssl))
            SSL_shutdown(s->ssl);
        ERR_clear_error();
        SSL_free(s->ssl);
    }
    if (!s->is_pipe)
        close(s->fd);
    free_buffers(s);
    s->dead = true;
    if (s->is_pipe)
        pipe_ext(s)->ops->closed(pipe_ext(s)->arg);
    if (!s->in_cb)
        destroy(s);
}

/* ---- interest ---------------------------------------------------------- */

static uint64_t deadline_left(const tg_stream_t *s, uint64_t otherwise)
{
    if (s->deadline_ms == 0)
        return otherwise;
    uint64_t now = tg_now_ms();
    return s->deadline_ms > now ? s->deadline_ms - now : 1;
}

static void add_with_timeout(struct event *ev, uint64_t ms)
{
    struct timeval tv = tg_timeval_ms(ms);
    event_add(ev, ms ? &tv : NULL);
    if (ms == 0)
        event_remove_timer(ev); /* a timeout from an earlier add */
}

static void update_read(tg_stream_t *s)
{
    bool want;
    uint64_t ms = s->read_ms;
    if (s->connecting || s->failed || s->dead) {
        want = false;
    } else if (s->handshaking) {
        want = !s->hs_wants_write;
        ms = deadline_left(s, s->read_ms);
    } else if (s->write_wants_read) {
        want = true;
        ms = s->write_ms;
    } else {
        want = s->reading && !s->eof &&
               !(s->read_high && s->in && evbuffer_get_length(s->in) >= s->read_high);
    }
    if (s->is_pipe) /* a pipe has no input until it is given: wait while empty */
        want = want && (s->in == NULL || evbuffer_get_length(s->in) == 0);
    if (!want) {
        if (s->rev_on)
            event_del(&s->rev);
        s->rev_on = false;
        return;
    }
    if (!s->rev_on || s->rev_ms != ms || s->handshaking)
        add_with_timeout(&s->rev, ms);
    s->rev_on = true;
    s->rev_ms = clamp32(ms);
    /* Records OpenSSL already read: the socket will not say so. */
    if (s->ssl && !s->handshaking && s->reading && !s->eof && !s->starved && !s->sched_pending &&
        SSL_has_pending(s->ssl)) {
        s->sched_pending = true;
        activate(s);
    }
}

static void update_write(tg_stream_t *s)
{
    bool want;
    uint64_t ms = s->write_ms;
    if (s->failed || s->dead) {
        want = false;
    } else if (s->connecting) {
        want = !s->connect_done;
        ms = deadline_left(s, s->write_ms);
    } else if (s->handshaking) {
        want = s->hs_wants_write;
        ms = deadline_left(s, s->write_ms);
    } else if (s->read_wants_write) {
        want = true;
        ms = s->read_ms;
    } else {
        want =
            s->write_blocked && !s->write_wants_read && s->out && evbuffer_get_length(s->out) > 0;
    }
    if (want && s->wev == NULL && make_buffers(s) < 0)
        return;
    if (want && !s->wev_on)
        add_with_timeout(s->wev, ms);
    else if (!want && s->wev_on)
        event_del(s->wev);
    s->wev_on = want;
}

/* ---- reading ----------------------------------------------------------- */

enum { IO_OK, IO_AGAIN, IO_EOF, IO_ERROR };

/* Where WANT_READ / WANT_WRITE / errors of an SSL call become the stream's
 * state: the one place for it. reading: the call was SSL_read_ex (else
 * SSL_write_ex). */
static int ssl_outcome(tg_stream_t *s, int ret, bool reading)
{
    int e = SSL_get_error(s->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        if (reading) {
            s->read_wants_write = false;
            s->starved = true; /* what OpenSSL holds is not a whole record */
        } else
            s->write_wants_read = true;
        return IO_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        if (reading)
            s->read_wants_write = true;
        else
            s->write_blocked = true;
        return IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return IO_EOF;
    case SSL_ERROR_SYSCALL:
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return IO_AGAIN;
        /* fall through */
    default:
        s->failed = true;
        ERR_clear_error();
        return IO_ERROR;
    }
}

static int ssl_read(tg_stream_t *s, void *buf, size_t len, size_t *n)
{
    int r = SSL_read_ex(s->ssl, buf, len, n);
    if (r != 1)
        return ssl_outcome(s, r, true);
    s->read_wants_write = false;
    s->starved = false;
    return IO_OK;
}

/* One read into the input; *n bytes arrived. */
static int read_once(tg_stream_t *s, size_t room, size_t *n)
{
    bool small = !s->bulk && room > SMALL_READ && evbuffer_get_length(s->in) == 0;
    *n = 0;
    if (small && s->ssl != NULL) { /* one record: decrypted into the spill, copied */
        int st = ssl_read(s, spill, room, n);
        if (*n > 0 && evbuffer_add(s->in, spill, *n) < 0)
            return IO_ERROR;
        if (*n > 0)
            s->bulk = *n > SMALL_READ;
        return st;
    }
    struct evbuffer_iovec v[2];
    int nv = evbuffer_reserve_space(s->in, (ev_ssize_t)(small ? SMALL_READ : room), v, 2);
    if (nv <= 0)
        return IO_ERROR;
    int st = IO_OK;
    if (s->ssl != NULL) {
        nv = 1;
        st = ssl_read(s, v[0].iov_base, v[0].iov_len, n);
    } else {
        struct iovec iov[3];
        size_t reserved = 0;
        for (int i = 0; i < nv; i++) {
            iov[i].iov_base = v[i].iov_base;
            iov[i].iov_len = v[i].iov_len;
            reserved += v[i].iov_len;
        }
        int niov = nv;
        if (small && reserved < room)
            iov[niov++] = (struct iovec){spill, room - reserved};
        ssize_t r;
        do
            r = readv(s->fd, iov, niov);
        while (r < 0 && errno == EINTR);
        if (r > 0)
            *n = (size_t)r;
        else if (r == 0)
            st = IO_EOF;
        else
            st = errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_ERROR;
    }
    size_t left = *n;
    for (int i = 0; i < nv; i++) {
        v[i].iov_len = left < v[i].iov_len ? left : v[i].iov_len;
        left -= v[i].iov_len;
    }
    evbuffer_commit_space(s->in, v, *n > 0 ? nv : 0);
    if (left > 0 && evbuffer_add(s->in, spill, left) < 0)
        return IO_ERROR;
    if (*n > 0)
        s->bulk = *n > SMALL_READ;
    return st;
}

/* Reads what is there, up to the watermark; returns IO_OK (bytes arrived),
 * IO_AGAIN, IO_EOF or IO_ERROR (bytes may have arrived before those two:
 * *got says so). */
static int do_read(tg_stream_t *s, bool *got)
{
    if (s->in == NULL && make_buffers(s) < 0)
        return IO_ERROR;
    for (int round = 0; round < READ_ROUNDS; round++) {
        size_t len = evbuffer_get_length(s->in);
        size_t room = READ_CHUNK;
        if (s->read_high) {
            if (len >= s->read_high)
                return IO_OK;
            if (s->read_high - len < room)
                room = s->read_high - len;
        }
        size_t n;
        int st = read_once(s, room, &n);
        if (n > 0)
            *got = true;
        if (st != IO_OK)
            return st;
        /* A short read drained the socket (level-triggered: it would say
         * otherwise); under TLS, records OpenSSL holds are read on. */
        if (s->ssl != NULL ? !SSL_has_pending(s->ssl) : n < room)
            return IO_OK;
    }
    return IO_OK;
}

/* ---- writing ----------------------------------------------------------- */

static int write_tls(tg_stream_t *s, struct evbuffer *b)
{
    while (evbuffer_get_length(b) > 0) {
        size_t len = evbuffer_get_length(b);
        size_t want = len < TLS_RECORD ? len : TLS_RECORD;
        const void *p = evbuffer_pullup(b, (ev_ssize_t)want);
        if (p == NULL)
            return IO_ERROR;
        size_t w = 0;
        int r = SSL_write_ex(s->ssl, p, want, &w);
        if (r != 1) {
            int st = ssl_outcome(s, r, false);
            return st == IO_EOF ? IO_ERROR : st;
        }
        evbuffer_drain(b, w);
    }
    return IO_OK;
}

/* Writes what b holds; IO_OK when all of it went, IO_AGAIN when the rest
 * waits (write_blocked or write_wants_read set), IO_ERROR. */
static int write_buffer(tg_stream_t *s, struct evbuffer *b)
{
    s->write_blocked = false;
    s->write_wants_read = false;
    if (evbuffer_get_length(b) == 0)
        return IO_OK;
    if (s->is_pipe) {
        /* The consumer takes what it can; blocked: it calls
         * tg_stream_pipe_writable() once it has room again. */
        if (pipe_ext(s)->ops->write(b, pipe_ext(s)->arg)) {
            s->write_blocked = true;
            return IO_AGAIN;
        }
        return IO_OK;
    }
    if (s->ssl != NULL)
        return write_tls(s, b);
    int n = evbuffer_write_atmost(b, s->fd, -1);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            s->write_blocked = true;
            return IO_AGAIN;
        }
        s->failed = true;
        return IO_ERROR;
    }
    /* A short write means a full socket buffer: wait for EV_WRITE rather
     * than try again into EAGAIN. */
    if (evbuffer_get_length(b) > 0) {
        s->write_blocked = true;
        return IO_AGAIN;
    }
    return IO_OK;
}

void tg_stream_send(tg_stream_t *s, struct evbuffer *src)
{
    struct evbuffer *out = tg_stream_output(s);
    if (out == NULL) {
        evbuffer_drain(src, evbuffer_get_length(src));
        return;
    }
    if (evbuffer_get_length(out) == 0 && established(s) && !s->failed && !s->write_blocked &&
        !s->write_wants_read && !s->sched_write) {
        /* An error is reported from the loop, never from here; so is the
         * write callback (a pump waiting for it to refill goes on). */
        size_t before = evbuffer_get_length(src);
        if (write_buffer(s, src) == IO_ERROR)
            s->error_pending = true;
        else if (evbuffer_get_length(src) < before && s->cb->write)
            s->wrote_sync = true;
        if (s->error_pending || s->wrote_sync)
            activate(s);
    }
    if (evbuffer_get_length(src) > 0)
        evbuffer_add_buffer(out, src);
    update_write(s);
    update_read(s);
}

/* ---- the event loop side ----------------------------------------------- */

/* Connect and handshake; returns false when the stream cannot go on
 * (*ev says why) or waits. */
static bool progress(tg_stream_t *s, bool writable, short *ev, bool *connected)
{
    if (s->connecting) {
        if (!writable)
            return false;
        int err = s->connect_error;
        socklen_t len = sizeof(err);
        if (err == 0 && !s->connect_done && getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err == EINPROGRESS)
            return false;
        if (err != 0) {
            s->failed = true;
            s->error = (int16_t)err;
            errno = err;
            *ev = TG_STREAM_ERROR | TG_STREAM_WRITING;
            return false;
        }
        s->connecting = false;
        if (s->ssl == NULL)
            *connected = true;
    }
    if (s->handshaking) {
        ERR_clear_error();
        int r = SSL_do_handshake(s->ssl);
        if (r != 1) {
            int e = SSL_get_error(s->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                s->hs_wants_write = e == SSL_ERROR_WANT_WRITE;
                return false;
            }
            s->failed = true;
            s->error = EPROTO; /* the TLS handshake failed */
            ERR_clear_error();
            *ev = TG_STREAM_ERROR | (s->connect_side ? TG_STREAM_WRITING : TG_STREAM_READING);
            return false;
        }
        s->handshaking = false;
        s->hs_wants_write = false;
        *connected = true; /* accepting too: the owner records the session's facts */
    }
    if (*connected)
        s->deadline_ms = 0;
    return true;
}

/* Runs a callback; false when the stream was freed meanwhile. */
#define CALL(s, expr)       \
    do {                    \
        (s)->in_cb = true;  \
        expr;               \
        (s)->in_cb = false; \
        if ((s)->dead) {    \
            destroy(s);     \
            return;         \
        }                   \
    } while (0)

static void drive(tg_stream_t *s, bool readable, bool writable, bool triggered)
{
    short ev = 0;
    bool connected = false, got = false, wrote = false;
    bool was_setup = !established(s);
    if (s->error_pending) {
        s->error_pending = false;
        ev = TG_STREAM_ERROR | TG_STREAM_WRITING;
        goto out;
    }
    if (!established(s) && !progress(s, writable || readable, &ev, &connected))
        goto out;
    if (was_setup) /* just established: read what came along, write what waits */
        readable = writable = true;
    if ((readable && s->write_wants_read) || (writable && !s->read_wants_write)) {
        if (s->out != NULL && (evbuffer_get_length(s->out) > 0 || s->write_blocked)) {
            size_t before = evbuffer_get_length(s->out);
            int st = write_buffer(s, s->out);
            wrote = evbuffer_get_length(s->out) < before;
            if (st == IO_ERROR) {
                s->error = (int16_t)errno;
                ev = TG_STREAM_ERROR | TG_STREAM_WRITING;
            }
        }
    }
    if (ev == 0 && s->reading && !s->eof &&
        ((readable && !s->write_wants_read) || (writable && s->read_wants_write))) {
        int st = do_read(s, &got);
        if (st == IO_EOF) {
            s->eof = true;
            ev = TG_STREAM_EOF | TG_STREAM_READING;
        } else if (st == IO_ERROR) {
            s->failed = true;
            s->error = (int16_t)errno;
            ev = TG_STREAM_ERROR | TG_STREAM_READING;
        }
    }
    if (triggered && s->in != NULL && evbuffer_get_length(s->in) > 0)
        got = true;
    if (s->wrote_sync) {
        s->wrote_sync = false;
        wrote = true;
    }
out:
    update_read(s);
    update_write(s);
    if (connected && s->cb->event)
        CALL(s, s->cb->event(s, TG_STREAM_CONNECTED, s->arg));
    if (got && s->cb->read)
        CALL(s, s->cb->read(s, s->arg));
    if (wrote && s->cb->write && s->out && evbuffer_get_length(s->out) <= s->write_low)
        CALL(s, s->cb->write(s, s->arg));
    if (ev && s->cb->event)
        CALL(s, s->cb->event(s, ev, s->arg));
}

/* A timeout on rev (on_read) or wev: which direction it bounds depends on
 * what that event was waiting for. */
static void timed_out(tg_stream_t *s, bool on_read)
{
    short ev;
    if (!established(s))
        ev = TG_STREAM_TIMEOUT | (s->connect_side ? TG_STREAM_WRITING : TG_STREAM_READING);
    else if (on_read ? s->write_wants_read : !s->read_wants_write)
        ev = TG_STREAM_TIMEOUT | TG_STREAM_WRITING;
    else
        ev = TG_STREAM_TIMEOUT | TG_STREAM_READING;
    if (ev & TG_STREAM_READING)
        s->reading = false;
    update_read(s);
    if (s->cb->event)
        CALL(s, s->cb->event(s, ev, s->arg));
}

static void rev_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    tg_stream_t *s = arg;
    if (what & EV_TIMEOUT) {
        timed_out(s, true);
        return;
    }
    drive(s, true, false, false);
}

static void wev_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    tg_stream_t *s = arg;
    bool armed = s->wev_on, triggered = s->sched_read, pending = s->sched_pending;
    s->wev_on = false; /* not persistent: gone once fired */
    s->sched_write = s->sched_read = s->sched_pending = false;
    if ((what & EV_TIMEOUT) && armed) {
        timed_out(s, false);
        return;
    }
    drive(s, pending, true, triggered);
}

/* ---- owner's controls -------------------------------------------------- */

/* TCP's handshake already done: toward a loopback (or same-host) upstream
 * the kernel completes it inside connect(2), which still says EINPROGRESS. */
static bool established_now(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
           ti.tcpi_state == TCP_ESTABLISHED;
}

void tg_stream_connect(tg_stream_t *s, const struct sockaddr *sa, socklen_t salen)
{
    s->connect_side = true;
    s->connecting = true;
    int r = connect(s->fd, sa, salen);
    if (r < 0 && errno != EINPROGRESS) {
        s->connect_error = (int16_t)(errno ? errno : ECONNREFUSED);
        activate(s);
    } else if (r == 0 || established_now(s->fd)) {
        /* Connected from this loop pass, not after a poll for EV_WRITE: a
         * pass of latency and an epoll_ctl less per new connection (a pool
         * growing under a burst; with keepalive_trim: 0 at c256 over
         * keepalive: 64, one every few requests). */
        s->connect_done = true;
        activate(s);
    }
    update_write(s);
}

void tg_stream_setcb(tg_stream_t *s, const tg_stream_cbs_t *cbs, void *arg)
{
    s->cb = cbs != NULL ? cbs : &none;
    s->arg = arg;
}

void tg_stream_read_enable(tg_stream_t *s, bool on)
{
    s->reading = on;
    update_read(s);
}

void tg_stream_set_timeouts(tg_stream_t *s, uint64_t read_ms_in, uint64_t write_ms_in)
{
    uint32_t read_ms = clamp32(read_ms_in), write_ms = clamp32(write_ms_in);
    s->read_ms = read_ms;
    if (s->write_ms != write_ms && s->wev_on) {
        event_del(s->wev);
        s->wev_on = false;
    }
    s->write_ms = write_ms;
    /* A connecting stream's write timeout bounds connect plus handshake. */
    if (s->connect_side && !established(s) && s->deadline_ms == 0 && write_ms)
        s->deadline_ms = tg_now_ms() + write_ms;
    update_read(s);
    update_write(s);
}

void tg_stream_set_watermarks(tg_stream_t *s, size_t read_high, size_t write_low)
{
    s->read_high = clamp32(read_high);
    s->write_low = clamp32(write_low);
    update_read(s);
}

struct evbuffer *tg_stream_input(tg_stream_t *s)
{
    if (s->in == NULL && make_buffers(s) < 0)
        return NULL;
    return s->in;
}

struct evbuffer *tg_stream_output(tg_stream_t *s)
{
    if (s->out == NULL && make_buffers(s) < 0)
        return NULL;
    return s->out;
}

size_t tg_stream_input_length(const tg_stream_t *s)
{
    return s->in ? evbuffer_get_length(s->in) : 0;
}

size_t tg_stream_output_length(const tg_stream_t *s)
{
    return s->out ? evbuffer_get_length(s->out) : 0;
}

void tg_stream_trigger_read(tg_stream_t *s)
{
    if (s->sched_read)
        return;
    s->sched_read = true;
    activate(s);
}

void tg_stream_keep_buffers(tg_stream_t *s)
{
    if (s->ssl == NULL || s->keep_buffers)
        return;
    SSL_clear_mode(s->ssl, SSL_MODE_RELEASE_BUFFERS);
    s->keep_buffers = true;
}

/* OpenSSL's record buffers back, and release mode on again (the next
 * exchange may be the last for a long while). SSL_free_buffers refuses while
 * a record is partly read or written: then the stream does not park. */
static int release_tls_buffers(tg_stream_t *s)
{
    if (s->ssl == NULL || !s->keep_buffers)
        return 0;
    if (SSL_free_buffers(s->ssl) != 1)
        return -1;
    SSL_set_mode(s->ssl, SSL_MODE_RELEASE_BUFFERS);
    s->keep_buffers = false;
    return 0;
}

int tg_stream_park(tg_stream_t *s)
{
    if (s->in == NULL)
        return release_tls_buffers(s);
    if (evbuffer_get_length(s->in) > 0 || evbuffer_get_length(s->out) > 0 || s->wev_on ||
        s->sched_write || s->sched_read || s->sched_pending || s->error_pending || s->wrote_sync)
        return -1;
    if (release_tls_buffers(s) < 0)
        return -1;
    free_buffers(s);
    return 0;
}

bool tg_stream_parked(const tg_stream_t *s)
{
    return s->in == NULL;
}

SSL *tg_stream_ssl(const tg_stream_t *s)
{
    return s->ssl;
}

bool tg_stream_established(const tg_stream_t *s)
{
    return established(s);
}

int tg_stream_error(const tg_stream_t *s)
{
    return s->error;
}

/* ---- in-memory streams ------------------------------------------------- */

/* No socket: `rev` and `wev` are pure timers (fd -1, no I/O interest), so the
 * read and write timeouts work as for a socket; wev also carries the
 * deferred work (event_active) as usual. */
tg_stream_t *tg_stream_new_pipe(struct event_base *base, const tg_stream_pipe_t *pipe, void *arg)
{
    pipe_ext_t *ext;
    tg_stream_t *s = tg_pool_alloc(OWNER_OFFSET + sizeof(*ext));
    if (s == NULL)
        return NULL;
    s->alloc_size = (uint16_t)(OWNER_OFFSET + sizeof(*ext));
    s->cb = &none;
    ext = (pipe_ext_t *)((char *)s + OWNER_OFFSET);
    ext->ops = pipe;
    ext->arg = arg;
    s->is_pipe = true;
    s->fd = -1;
    if (event_assign(&s->rev, base, -1, 0, rev_cb, s) < 0 || make_buffers(s) < 0) {
        free_buffers(s);
        destroy(s);
        return NULL;
    }
    return s;
}

void tg_stream_pipe_input(tg_stream_t *s)
{
    if (s->rev_on) { /* new input restarts the read timeout */
        event_del(&s->rev);
        s->rev_on = false;
    }
    update_read(s);
    tg_stream_trigger_read(s);
}

void tg_stream_pipe_writable(tg_stream_t *s)
{
    if (!s->write_blocked)
        return;
    s->write_blocked = false;
    update_write(s);
    if (s->out != NULL && evbuffer_get_length(s->out) > 0)
        schedule_write(s);
}
