/*
 * A byte stream over a non-blocking socket, plain or TLS: the connection
 * object that client and upstream connections are built on (it replaces
 * libevent's bufferevents, whose costs were an ioctl(FIONREAD) before every
 * read, an epoll_ctl pair per response and, under TLS, extra reads and no
 * way to give back idle buffers).
 *
 * - Reads go straight into the input evbuffer (evbuffer_reserve_space +
 *   read(2) or SSL_read_ex). Above the read high watermark reading stops; it
 *   resumes by itself once the consumer drained the input below it.
 * - Writes are attempted at once: whatever is added to the output is written
 *   at the end of the current callback pass (one writev, or SSL_write_ex per
 *   chain with a small output pulled into one TLS record), never through a
 *   poll for writability. EV_WRITE interest exists only while the kernel
 *   refused part of the output, so a request/response costs no epoll_ctl.
 * - TLS: the handshake (accepting or connecting), SSL_read and SSL_write are
 *   driven by the same two events; WANT_READ / WANT_WRITE are handled in one
 *   place. close_notify is sent when a stream whose handshake completed is
 *   freed.
 * - Parking (tg_stream_park): an idle stream frees both evbuffers and
 *   OpenSSL's record buffers, and keeps only the socket, its events and the
 *   SSL; the next readable byte brings the buffers back.
 *
 * Callbacks mirror bufferevents' so the state machines above read the same:
 * `read` after new input arrived, `write` once the output fell to the write
 * low watermark after a write, `event` with TG_STREAM_* flags (EOF, ERROR,
 * TIMEOUT with READING or WRITING; CONNECTED once a connect, and its TLS
 * handshake, completed, and on an accepted TLS stream once its handshake
 * completed, before the read callback sees its first bytes). A callback may
 * free the stream. Callbacks never run
 * from inside a tg_stream_* call. Single-threaded (the worker's loop).
 */
#ifndef TG_STREAM_H
#define TG_STREAM_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct tg_stream_s tg_stream_t;

/* Output beyond this many bytes pauses whoever fills it (backpressure). */
#define TG_OUT_HIGH (256u * 1024u)

#define TG_STREAM_READING 0x01
#define TG_STREAM_WRITING 0x02
#define TG_STREAM_EOF 0x10
#define TG_STREAM_ERROR 0x20
#define TG_STREAM_TIMEOUT 0x40
#define TG_STREAM_CONNECTED 0x80

typedef void (*tg_stream_data_cb)(tg_stream_t *s, void *arg);
typedef void (*tg_stream_event_cb)(tg_stream_t *s, short what, void *arg);

/* A stream owning fd (non-blocking; closed by tg_stream_free). ssl, when not
 * NULL, is owned too: in accept state for a client connection, or in connect
 * state for tg_stream_connect. NULL on allocation failure (fd and ssl are
 * then left to the caller). Reading starts disabled. */
tg_stream_t *tg_stream_new(struct event_base *base, int fd, SSL *ssl);

/* tg_stream_new with owner_size more bytes, zeroed, for the owner's own
 * object (*owner, 8-byte aligned): one allocation instead of two for
 * an object that lives exactly as long as its stream (a client connection).
 * The area is freed with the stream, by tg_stream_free, or later when that
 * is called from inside one of the stream's callbacks: the owner may use it
 * until then, never after. Such a stream makes its buffers when first needed
 * (its first bytes), as a parked one does. At most TG_POOL_MAX bytes in all
 * (pool.h): NULL beyond. */
tg_stream_t *tg_stream_new_with(struct event_base *base, int fd, SSL *ssl, size_t owner_size,
                                void **owner);

/* Sends close_notify when a TLS handshake completed (and nothing failed),
 * closes the socket, frees everything. Pending output is dropped. */
void tg_stream_free(tg_stream_t *s);

/* Starts a non-blocking connect (and then the TLS handshake). CONNECTED or
 * ERROR|WRITING is reported through the event callback, never from here; a
 * connect plus handshake longer than the write timeout is TIMEOUT|WRITING.
 * Output added meanwhile is sent once connected. */
void tg_stream_connect(tg_stream_t *s, const struct sockaddr *sa, socklen_t salen);

/* The owner's callbacks (any may be NULL): a table with static storage,
 * shared by every stream of one kind (a pointer per stream, not three). */
typedef struct {
    tg_stream_data_cb read, write;
    tg_stream_event_cb event;
} tg_stream_cbs_t;

/* cbs NULL: no callbacks. */
void tg_stream_setcb(tg_stream_t *s, const tg_stream_cbs_t *cbs, void *arg);

/* Reading on or off (writing is always on). */
void tg_stream_read_enable(tg_stream_t *s, bool on);

/* Read and write timeouts in ms, 0 = none. The read timeout runs while
 * reading is enabled and not stopped by the watermark, restarted by every
 * read; the write timeout while output waits for the socket (and bounds a
 * connect). Either firing reports TIMEOUT|READING or TIMEOUT|WRITING and
 * turns that direction off. */
void tg_stream_set_timeouts(tg_stream_t *s, uint64_t read_ms, uint64_t write_ms);

/* read_high: input length at which reading stops (0 = unbounded);
 * write_low: output length at or below which the write callback runs. */
void tg_stream_set_watermarks(tg_stream_t *s, size_t read_high, size_t write_low);

/* The buffers. NULL while parked. Adding to the output schedules a write. */
struct evbuffer *tg_stream_input(tg_stream_t *s);
struct evbuffer *tg_stream_output(tg_stream_t *s);
/* Lengths that are 0 while parked. */
size_t tg_stream_input_length(const tg_stream_t *s);
size_t tg_stream_output_length(const tg_stream_t *s);

/* Moves all of src to the output and writes at once when nothing was queued
 * (a response head plus small body: one write, one TLS record). */
void tg_stream_send(tg_stream_t *s, struct evbuffer *src);

/* Runs the read callback from the loop (pipelined input already buffered),
 * without reading from the socket. */
void tg_stream_trigger_read(tg_stream_t *s);

/* TLS: OpenSSL's record buffers (about 16 KiB each way) stay allocated
 * between reads and writes, until the stream parks. A TLS stream starts in
 * SSL_MODE_RELEASE_BUFFERS (a new or parked connection holds none); a stream
 * in steady use (a keep-alive connection that served a request) calls this
 * so that each request does not free and allocate them again. Parking turns
 * it off. Nothing for a plain stream. */
void tg_stream_keep_buffers(tg_stream_t *s);

/* Frees the buffers of an idle stream (input and output empty; returns -1
 * otherwise, or when OpenSSL holds bytes not yet read or written) and keeps
 * reading, with the current read timeout: the next byte brings them back.
 * OpenSSL's buffers go too (tg_stream_keep_buffers). */
int tg_stream_park(tg_stream_t *s);
bool tg_stream_parked(const tg_stream_t *s); /* also: made by tg_stream_new_with, not used yet */

/* ---- in-memory streams ----
 * A stream without a socket, for a protocol that carries several exchanges
 * on one connection (HTTP/2: h2_bridge.c): each exchange runs on the same
 * connection code as an HTTP/1.1 client, over a pipe whose far end is the
 * multiplexer. The owner side works as for a socket (callbacks, timeouts,
 * watermarks); the far end adds input and calls tg_stream_pipe_input(), and
 * receives output through write(). */
typedef struct {
    /* Takes output from b (draining what it took). Returns true when it
     * stopped for lack of room: nothing more is offered until
     * tg_stream_pipe_writable(). Never frees the stream. */
    bool (*write)(struct evbuffer *b, void *arg);
    /* The stream is being freed (tg_stream_free): the far end lets go. */
    void (*closed)(void *arg);
} tg_stream_pipe_t;

tg_stream_t *tg_stream_new_pipe(struct event_base *base, const tg_stream_pipe_t *pipe, void *arg);
/* Bytes were added to tg_stream_input(): the read callback runs from the
 * loop, and the read timeout restarts. */
void tg_stream_pipe_input(tg_stream_t *s);
/* The far end has room again after write() returned true. */
void tg_stream_pipe_writable(tg_stream_t *s);

SSL *tg_stream_ssl(const tg_stream_t *s);
/* The TLS handshake completed (always true for a plain stream). */
bool tg_stream_established(const tg_stream_t *s);

/* The errno of the stream's last failure (ECONNREFUSED, ECONNRESET, EPROTO
 * for a failed TLS handshake...), 0 when none was seen (an EOF, a timeout). */
int tg_stream_error(const tg_stream_t *s);

#endif
