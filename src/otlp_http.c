/* One OTLP/HTTP exchange (otlp_http.h). */
#include "otlp_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_parser.h"
#include "tollgate/clock.h"

#define RESP_HEAD_MAX 16384

void tg_otlp_link_close(tg_otlp_link_t *l)
{
    SSL_free(l->ssl); /* no close_notify: the socket goes anyway */
    if (l->fd >= 0)
        close(l->fd);
    *l = (tg_otlp_link_t)TG_OTLP_LINK_NONE;
}

static int wait_fd(int fd, short ev, uint64_t deadline_ms)
{
    uint64_t now = tg_now_ms();
    if (now >= deadline_ms) {
        errno = ETIMEDOUT;
        return -1;
    }
    struct pollfd p = {.fd = fd, .events = ev};
    int r = poll(&p, 1, (int)(deadline_ms - now));
    if (r == 0)
        errno = ETIMEDOUT;
    return r > 0 ? 0 : -1;
}

/* After an SSL call returned r <= 0: waits for what it asked, 0 to call it
 * again; -1 when it failed. */
static int ssl_wait(const tg_otlp_link_t *l, int r, uint64_t deadline)
{
    switch (SSL_get_error(l->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return wait_fd(l->fd, POLLIN, deadline);
    case SSL_ERROR_WANT_WRITE:
        return wait_fd(l->fd, POLLOUT, deadline);
    default:
        ERR_clear_error();
        errno = errno ? errno : EPROTO;
        return -1;
    }
}

/* TLS: SNI unless the host is an IP literal, and the certificate checked for
 * that name or address. */
static int handshake(tg_otlp_link_t *l, const tg_tracing_conf_t *c, uint64_t deadline)
{
    l->ssl = SSL_new(c->tls);
    if (l->ssl == NULL || SSL_set_fd(l->ssl, l->fd) != 1)
        return -1;
    unsigned char ip[16];
    bool literal =
        inet_pton(AF_INET, c->tls_name, ip) == 1 || inet_pton(AF_INET6, c->tls_name, ip) == 1;
    if (literal)
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(l->ssl), c->tls_name);
    else if (SSL_set_tlsext_host_name(l->ssl, c->tls_name) != 1 ||
             SSL_set1_host(l->ssl, c->tls_name) != 1)
        return -1;
    for (;;) {
        errno = 0;
        int r = SSL_connect(l->ssl);
        if (r == 1)
            return 0;
        if (ssl_wait(l, r, deadline) < 0)
            return -1;
    }
}

static int connect_to(tg_otlp_link_t *l, const tg_tracing_conf_t *c, uint64_t deadline)
{
    l->fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0)
        return -1;
    if (connect(l->fd, (const struct sockaddr *)&c->addr, c->addrlen) < 0 && errno != EINPROGRESS)
        goto fail;
    int err = 0;
    socklen_t el = sizeof(err);
    if (wait_fd(l->fd, POLLOUT, deadline) < 0 ||
        getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
        errno = err ? err : errno;
        goto fail;
    }
    if (c->tls != NULL && handshake(l, c, deadline) < 0)
        goto fail;
    return 0;
fail:;
    int e = errno;
    tg_otlp_link_close(l);
    errno = e;
    return -1;
}

static int send_all(tg_otlp_link_t *l, const char *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        if (l->ssl != NULL) {
            size_t w;
            errno = 0;
            int r = SSL_write_ex(l->ssl, p, n, &w);
            if (r == 1) {
                p += w;
                n -= w;
            } else if (ssl_wait(l, r, deadline) < 0) {
                return -1;
            }
            continue;
        }
        ssize_t w = send(l->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EAGAIN) {
            if (wait_fd(l->fd, POLLOUT, deadline) < 0)
                return -1;
        } else if (w < 0 && errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

/* Up to cap bytes: > 0, or -1 (closed, failed, timed out). */
static ssize_t recv_some(tg_otlp_link_t *l, char *buf, size_t cap, uint64_t deadline)
{
    for (;;) {
        if (l->ssl != NULL) {
            size_t got;
            errno = 0;
            int r = SSL_read_ex(l->ssl, buf, cap, &got);
            if (r == 1)
                return (ssize_t)got;
            if (SSL_get_error(l->ssl, r) == SSL_ERROR_ZERO_RETURN || ssl_wait(l, r, deadline) < 0)
                return -1;
            continue;
        }
        if (wait_fd(l->fd, POLLIN, deadline) < 0)
            return -1;
        ssize_t r = recv(l->fd, buf, cap, 0);
        if (r > 0)
            return r;
        if (r == 0 || errno != EINTR)
            return -1;
    }
}

/* Reads the answer's head and its Content-Length body; returns the status,
 * or -1. *keep: the connection can carry the next batch. */
static int read_answer(tg_otlp_link_t *l, uint64_t deadline, bool *keep)
{
    char buf[RESP_HEAD_MAX];
    size_t n = 0;
    tg_http_header_t hs[64];
    for (;;) {
        ssize_t r = recv_some(l, buf + n, sizeof(buf) - n, deadline);
        if (r < 0)
            return -1;
        n += (size_t)r;
        tg_http_response_t resp = {.headers = hs, .num_headers = 64};
        int h = tg_http_parse_response(buf, n, &resp);
        if (h == TG_HTTP_INCOMPLETE && n < sizeof(buf))
            continue;
        if (h < 0)
            return -1;
        if (resp.status < 200) {
            memmove(buf, buf + h, n - (size_t)h);
            n -= (size_t)h;
            continue;
        }
        tg_body_kind_t kind = tg_http_response_body(&resp, 0);
        *keep =
            tg_http_response_reusable(&resp, 0) && (kind == TG_BODY_NONE || kind == TG_BODY_LENGTH);
        uint64_t body = kind == TG_BODY_LENGTH ? resp.content_length : 0;
        size_t have = n - (size_t)h;
        if (have > body)
            *keep = false;
        uint64_t left = have >= body ? 0 : body - have;
        /* The body (a partial-success message at most) is not needed, but
         * must be read for the connection to be reused. */
        while (*keep && left > 0) {
            r = recv_some(l, buf, left < sizeof(buf) ? left : sizeof(buf), deadline);
            if (r < 0)
                return -1;
            left -= (uint64_t)r;
        }
        return resp.status;
    }
}

int tg_otlp_post(tg_otlp_link_t *l, const tg_tracing_conf_t *c, const char *req, size_t len)
{
    uint64_t deadline = tg_now_ms() + c->timeout_ms;
    for (int fresh = 0; fresh < 2; fresh++) {
        bool reused = l->fd >= 0;
        if (l->fd < 0 && connect_to(l, c, deadline) < 0)
            return -1;
        bool keep = false;
        int st = send_all(l, req, len, deadline) < 0 ? -1 : read_answer(l, deadline, &keep);
        if (st < 0 || !keep) {
            int e = errno;
            tg_otlp_link_close(l);
            errno = e;
        }
        if (st >= 0 || !reused)
            return st;
    }
    return -1;
}
