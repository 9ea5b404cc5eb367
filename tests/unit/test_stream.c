/* Unit tests for src/stream.c (included: the tests look at its events).
 *
 * TLS record buffers: a TLS stream in steady use (tg_stream_keep_buffers)
 * allocates OpenSSL's ~16 KiB buffers once, not at every exchange; parking
 * gives them back and turns release mode on again; a parked TLS stream
 * answers its next request; a stream whose OpenSSL holds part of a record
 * does not park. OpenSSL's allocations are watched through
 * CRYPTO_set_mem_functions, set in main before OpenSSL allocates anything.
 * The peer is a plain OpenSSL client on the other end of a socketpair.
 *
 * Connecting: toward a loopback listener the connection is reported from the
 * first loop pass with no EV_WRITE interest ever added; a refused one still
 * reports ERROR|WRITING with ECONNREFUSED. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.c"

/* A record buffer: SSL3_RT_MAX_PLAIN_LENGTH plus headers and padding. */
#define BIG 16384
#define MAX_BIG 64

static void *bigs[MAX_BIG];
static size_t nbig, big_allocs;

static void track(void *p)
{
    if (nbig == MAX_BIG)
        abort(); /* more live buffers than any test here makes */
    bigs[nbig++] = p;
    big_allocs++;
}

static void untrack(void *p)
{
    for (size_t i = 0; i < nbig; i++) {
        if (bigs[i] == p) {
            bigs[i] = bigs[--nbig];
            return;
        }
    }
}

static void *t_malloc(size_t n, const char *file, int line)
{
    (void)file, (void)line;
    void *p = malloc(n);
    if (p != NULL && n >= BIG)
        track(p);
    return p;
}

static void *t_realloc(void *q, size_t n, const char *file, int line)
{
    (void)file, (void)line;
    if (q != NULL)
        untrack(q); /* none fails here: a failure would only lose track of q */
    void *p = realloc(q, n);
    if (p != NULL && n >= BIG)
        track(p);
    return p;
}

static void t_free(void *p, const char *file, int line)
{
    (void)file, (void)line;
    if (p != NULL)
        untrack(p);
    free(p);
}

/* ---- a server stream and a client SSL over a socketpair ---- */

typedef struct {
    struct event_base *base;
    SSL_CTX *sctx, *cctx;
    SSL *client;
    tg_stream_t *s;
    int cfd;
} pair_t;

static SSL_CTX *server_ctx(void)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ck_assert(pk != NULL && x != NULL);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    ck_assert_int_gt(X509_sign(x, pk, EVP_sha256()), 0);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(SSL_CTX_use_certificate(ctx, x), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, pk), 1);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* as tls.c sets it */
    X509_free(x);
    EVP_PKEY_free(pk);
    return ctx;
}

static void echo_read(tg_stream_t *s, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(tg_stream_output(s), tg_stream_input(s));
}

static const tg_stream_cbs_t echo = {.read = echo_read};

/* Runs the server's loop once and the client step; until step says done. */
#define PUMP(p, step)                                    \
    do {                                                 \
        int n_ = 0;                                      \
        while (!(step)) {                                \
            event_base_loop((p)->base, EVLOOP_NONBLOCK); \
            ck_assert_msg(++n_ < 100000, "no progress"); \
        }                                                \
    } while (0)

static bool client_handshake(pair_t *p)
{
    int r = SSL_do_handshake(p->client);
    return r == 1 && tg_stream_established(p->s);
}

static void pair_open(pair_t *p)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    p->base = event_base_new();
    p->sctx = server_ctx();
    p->cctx = SSL_CTX_new(TLS_client_method());
    ck_assert(p->base != NULL && p->cctx != NULL);
    p->s = tg_stream_new(p->base, sv[0], SSL_new(p->sctx));
    ck_assert_ptr_nonnull(p->s);
    tg_stream_setcb(p->s, &echo, NULL);
    tg_stream_read_enable(p->s, true);
    p->cfd = sv[1];
    p->client = SSL_new(p->cctx);
    SSL_set_fd(p->client, sv[1]);
    SSL_set_connect_state(p->client);
    PUMP(p, client_handshake(p));
}

static void pair_close(pair_t *p)
{
    tg_stream_free(p->s);
    SSL_free(p->client);
    close(p->cfd);
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
    event_base_free(p->base);
}

static bool client_wrote(pair_t *p, const char *msg)
{
    size_t w;
    return SSL_write_ex(p->client, msg, strlen(msg), &w) == 1;
}

/* Reads until len bytes came back. */
static bool client_got(pair_t *p, char *buf, size_t len, size_t *have)
{
    size_t n;
    if (SSL_read_ex(p->client, buf + *have, len - *have, &n) == 1)
        *have += n;
    return *have == len;
}

/* One request and its echo. */
static void exchange(pair_t *p, const char *msg)
{
    char buf[64];
    size_t have = 0, len = strlen(msg);
    ck_assert_uint_lt(len, sizeof(buf));
    PUMP(p, client_wrote(p, msg));
    PUMP(p, client_got(p, buf, len, &have));
    ck_assert(memcmp(buf, msg, len) == 0);
}

START_TEST(kept_buffers_are_allocated_once)
{
    pair_t p;
    pair_open(&p);
    exchange(&p, "first");
    tg_stream_keep_buffers(p.s);
    exchange(&p, "second"); /* the kept buffers are allocated here */
    size_t allocs = big_allocs;
    for (int i = 0; i < 20; i++)
        exchange(&p, "again");
    ck_assert_uint_eq(big_allocs, allocs);
    pair_close(&p);
}
END_TEST

START_TEST(park_frees_them_and_the_stream_comes_back)
{
    pair_t p;
    pair_open(&p);
    exchange(&p, "first");
    tg_stream_keep_buffers(p.s);
    exchange(&p, "second");
    size_t live = nbig; /* the client's and the server's two */
    ck_assert_int_eq(tg_stream_park(p.s), 0);
    ck_assert(tg_stream_parked(p.s));
    ck_assert_uint_eq(nbig, live - 2); /* the server's read and write buffers */
    exchange(&p, "after parking");
    ck_assert(!tg_stream_parked(p.s));
    /* Release mode again: what the exchange needed was given back. */
    ck_assert_uint_eq(nbig, live - 2);
    pair_close(&p);
}
END_TEST

START_TEST(no_park_while_a_record_is_partly_read)
{
    pair_t p;
    pair_open(&p);
    exchange(&p, "first");
    tg_stream_keep_buffers(p.s);
    exchange(&p, "second");
    /* A record header announcing 64 bytes and 3 of them: OpenSSL reads them
     * ahead and waits for the rest. */
    static const char part[] = "\x17\x03\x03\x00\x40xyz";
    ck_assert_int_eq(write(p.cfd, part, sizeof(part) - 1), (ssize_t)(sizeof(part) - 1));
    for (int i = 0; i < 100; i++)
        event_base_loop(p.base, EVLOOP_NONBLOCK);
    ck_assert_uint_eq(tg_stream_input_length(p.s), 0);
    ck_assert_int_eq(tg_stream_park(p.s), -1);
    ck_assert(!tg_stream_parked(p.s));
    pair_close(&p);
}
END_TEST

/* ---- connecting ---- */

static short seen;

static void record_event(tg_stream_t *s, short what, void *arg)
{
    (void)s, (void)arg;
    seen |= what;
}

static const tg_stream_cbs_t watch = {.event = record_event};

/* A listening socket on 127.0.0.1 (its port in *sin); closed at once when
 * close_it, for a port that refuses. */
static int loopback_listener(struct sockaddr_in *sin, bool close_it)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t len = sizeof(*sin);
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(l, (struct sockaddr *)sin, sizeof(*sin)), 0);
    ck_assert_int_eq(listen(l, 8), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)sin, &len), 0);
    if (close_it) {
        close(l);
        return -1;
    }
    return l;
}

START_TEST(loopback_connect_waits_for_no_write_poll)
{
    struct sockaddr_in sin;
    int l = loopback_listener(&sin, false);
    struct event_base *base = event_base_new();
    tg_stream_t *s = tg_stream_new(base, socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), NULL);
    tg_stream_setcb(s, &watch, NULL);
    seen = 0;
    tg_stream_connect(s, (struct sockaddr *)&sin, sizeof(sin));
    ck_assert(!s->wev_on); /* no EV_WRITE interest (wev is only activated by hand) */
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    ck_assert_int_eq(seen, TG_STREAM_CONNECTED);
    /* Output goes out on the same pass as any other. */
    evbuffer_add(tg_stream_output(s), "hi", 2);
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    int a = accept(l, NULL, NULL);
    char buf[4];
    ck_assert_int_eq(read(a, buf, sizeof(buf)), 2);
    ck_assert(memcmp(buf, "hi", 2) == 0);
    close(a);
    close(l);
    tg_stream_free(s);
    event_base_free(base);
}
END_TEST

START_TEST(refused_connect_is_an_error)
{
    struct sockaddr_in sin;
    loopback_listener(&sin, true);
    struct event_base *base = event_base_new();
    tg_stream_t *s = tg_stream_new(base, socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), NULL);
    tg_stream_setcb(s, &watch, NULL);
    seen = 0;
    tg_stream_connect(s, (struct sockaddr *)&sin, sizeof(sin));
    for (int i = 0; i < 1000 && seen == 0; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    ck_assert_int_eq(seen, TG_STREAM_ERROR | TG_STREAM_WRITING);
    ck_assert_int_eq(tg_stream_error(s), ECONNREFUSED);
    tg_stream_free(s);
    event_base_free(base);
}
END_TEST

int main(void)
{
    /* Before OpenSSL allocates anything, or it refuses. */
    if (CRYPTO_set_mem_functions(t_malloc, t_realloc, t_free) != 1)
        return 1;
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("tls_buffers");
    tcase_add_test(tc, kept_buffers_are_allocated_once);
    tcase_add_test(tc, park_frees_them_and_the_stream_comes_back);
    tcase_add_test(tc, no_park_while_a_record_is_partly_read);
    suite_add_tcase(s, tc);
    TCase *tc2 = tcase_create("connect");
    tcase_add_test(tc2, loopback_connect_waits_for_no_write_poll);
    tcase_add_test(tc2, refused_connect_is_an_error);
    suite_add_tcase(s, tc2);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
