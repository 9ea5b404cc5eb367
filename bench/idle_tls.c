/*
 * The TLS twin of idle_conns.c: opens N TLS keep-alive connections to
 * HOST:PORT one after the other (blocking: connect, handshake without
 * verification or session reuse, one GET, the whole response read with
 * Content-Length framing), then holds every connection open and idle. Prints
 * "READY idle=<n> failed=<n> seconds=<s>" once all are open, then waits for
 * SIGTERM/SIGINT and prints "DONE idle=<n> closed_by_server=<n>" (a
 * connection the server closed meanwhile reads EOF or an alert).
 *
 * bench/tls uses it to measure a proxy's memory per idle TLS connection.
 *
 *   cc -O2 -o idle_tls bench/idle_tls.c -lssl -lcrypto
 *   ./idle_tls 127.0.0.1 18182 4000
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static const char request[] = "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: idle_tls\r\n\r\n";

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads one response (2xx, Content-Length framed, not "Connection: close"). */
static int read_response(SSL *ssl)
{
    char buf[4096];
    size_t have = 0;
    char *end = NULL;
    while (end == NULL) {
        if (have == sizeof(buf) - 1)
            return -1;
        int n = SSL_read(ssl, buf + have, (int)(sizeof(buf) - 1 - have));
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (strncmp(buf, "HTTP/1.", 7) != 0 || buf[9] != '2')
        return -1;
    long cl = -1;
    for (char *p = strchr(buf, '\n'); p != NULL && p < end; p = strchr(p, '\n')) {
        p++;
        if (strncasecmp(p, "content-length:", 15) == 0)
            cl = strtol(p + 15, NULL, 10);
        else if (strncasecmp(p, "connection:", 11) == 0 && strstr(p, "close") != NULL &&
                 strstr(p, "close") < strchr(p, '\n'))
            return -1;
    }
    long left = cl - (long)(have - (size_t)(end + 4 - buf));
    while (cl >= 0 && left > 0) {
        int n = SSL_read(ssl, buf, (int)(left < (long)sizeof(buf) ? left : (long)sizeof(buf)));
        if (n <= 0)
            return -1;
        left -= n;
    }
    return cl < 0 || left < 0 ? -1 : 0;
}

static SSL *open_conn(SSL_CTX *ctx, const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 ||
        SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1 ||
        SSL_write(ssl, request, (int)sizeof(request) - 1) != (int)sizeof(request) - 1 ||
        read_response(ssl) != 0) {
        ERR_clear_error();
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    return ssl;
}

/* The server closed it: EOF, an alert or an error on a non-blocking peek. */
static int closed(SSL *ssl)
{
    char c;
    ssize_t n = recv(SSL_get_fd(ssl), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || n > 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s HOST PORT N\n", argv[0]);
        return 2;
    }
    size_t total = strtoul(argv[3], NULL, 10);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (total == 0 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
        fprintf(stderr, "idle_tls: bad HOST or N\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL **conns = calloc(total, sizeof(*conns));
    if (ctx == NULL || conns == NULL) {
        fprintf(stderr, "idle_tls: out of memory\n");
        return 1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    size_t idle = 0, failed = 0;
    double t0 = now();
    for (size_t i = 0; i < total && !stop; i++) {
        conns[i] = open_conn(ctx, &sa);
        if (conns[i] != NULL)
            idle++;
        else
            failed++;
    }
    printf("READY idle=%zu failed=%zu seconds=%.1f\n", idle, failed, now() - t0);
    fflush(stdout);
    while (!stop)
        pause();
    size_t gone = 0;
    for (size_t i = 0; i < total; i++) {
        if (conns[i] == NULL)
            continue;
        gone += (size_t)closed(conns[i]);
        close(SSL_get_fd(conns[i]));
        SSL_free(conns[i]);
    }
    printf("DONE idle=%zu closed_by_server=%zu\n", idle - gone, gone);
    SSL_CTX_free(ctx);
    free(conns);
    return failed == 0 && gone == 0 ? 0 : 1;
}
