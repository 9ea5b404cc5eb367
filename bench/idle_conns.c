/*
 * Opens N keep-alive connections to HOST:PORT, sends one GET on each, reads
 * the whole response (Content-Length framing), then holds every connection
 * open and idle. Prints "READY idle=<n> failed=<n>" once every connection is
 * idle or has failed, then waits for SIGTERM/SIGINT (or --hold seconds) while
 * watching for connections the server closes, and prints
 * "DONE idle=<n> closed_by_server=<n>" on the way out.
 *
 * bench/run uses it to measure a proxy's memory per idle connection.
 *
 *   cc -O2 -o idle_conns bench/idle_conns.c
 *   ./idle_conns 127.0.0.1 18082 10000 [--batch 256] [--hold SECONDS]
 *
 * Exit status: 0 when every connection got a 2xx answer and stayed open, 1
 * otherwise, 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ST_FREE = 0, ST_CONNECTING, ST_SENDING, ST_READING, ST_IDLE, ST_DEAD };

#define HEAD_MAX 2048

typedef struct {
    int fd;
    int state;
    size_t sent;
    size_t head_len; /* bytes of head buffered so far */
    int head_done;   /* the head was parsed: body_left is valid */
    long body_left;  /* body bytes still expected */
    char head[HEAD_MAX];
} conn_t;

static volatile sig_atomic_t stop;
static const char request[] = "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: idle_conns\r\n\r\n";

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

static void raise_nofile(size_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want)
        fprintf(stderr, "idle_conns: RLIMIT_NOFILE is %lu, %zu connections will not all fit\n",
                (unsigned long)rl.rlim_cur, want);
}

static int open_conn(conn_t *c, const struct sockaddr_in *sa, int ep, int idx)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->state = ST_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)idx};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return -1;
    }
    return 0;
}

/* Parses the buffered head once it is complete: status must be 2xx and the
 * body framed by Content-Length (the origin's fixed answer is). */
static int parse_head(conn_t *c, size_t end)
{
    if (c->head_len < 12 || strncmp(c->head, "HTTP/1.", 7) != 0 || c->head[9] != '2')
        return -1;
    long cl = -1;
    char *p = c->head;
    char *stop_at = c->head + end;
    while ((p = memchr(p, '\n', (size_t)(stop_at - p))) != NULL && p < stop_at) {
        p++;
        if (strncasecmp(p, "content-length:", 15) == 0)
            cl = strtol(p + 15, NULL, 10);
        else if (strncasecmp(p, "connection:", 11) == 0 && strstr(p, "close") != NULL &&
                 strstr(p, "close") < strchr(p, '\n'))
            return -1; /* the server will not keep it open */
    }
    if (cl < 0)
        return -1;
    c->head_done = 1;
    c->body_left = cl - (long)(c->head_len - end);
    return c->body_left < 0 ? -1 : 0;
}

static int on_readable(conn_t *c)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n == 0)
            return -1;
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        if (c->state == ST_IDLE)
            return -1; /* nothing more was asked for */
        if (c->head_done) {
            c->body_left -= n;
            if (c->body_left < 0)
                return -1; /* more than Content-Length */
        } else {
            size_t take = (size_t)n;
            if (take > HEAD_MAX - 1 - c->head_len)
                return -1;
            memcpy(c->head + c->head_len, buf, take);
            c->head_len += take;
            c->head[c->head_len] = '\0';
            char *e = strstr(c->head, "\r\n\r\n");
            if (e != NULL && parse_head(c, (size_t)(e + 4 - c->head)) < 0)
                return -1;
        }
        if (c->head_done && c->body_left == 0)
            c->state = ST_IDLE;
    }
}

static int on_writable(conn_t *c)
{
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
            return -1;
        c->state = ST_SENDING;
    }
    while (c->state == ST_SENDING) {
        ssize_t n = write(c->fd, request + c->sent, sizeof(request) - 1 - c->sent);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->sent += (size_t)n;
        if (c->sent == sizeof(request) - 1)
            c->state = ST_READING;
    }
    return 0;
}

static void kill_conn(conn_t *c, int ep)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = ST_DEAD;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s HOST PORT N [--batch N] [--hold SECONDS]\n", argv[0]);
        return 2;
    }
    size_t total = strtoul(argv[3], NULL, 10), batch = 256;
    double hold = -1, deadline_s = 120;
    for (int i = 4; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--batch") == 0)
            batch = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--hold") == 0)
            hold = atof(argv[i + 1]);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (total == 0 || batch == 0 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
        fprintf(stderr, "idle_conns: bad HOST, N or --batch\n");
        return 2;
    }
    raise_nofile(total + 16);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    conn_t *conns = calloc(total, sizeof(*conns));
    struct epoll_event *evs = calloc(1024, sizeof(*evs));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || evs == NULL || ep < 0) {
        perror("idle_conns");
        return 1;
    }

    size_t next = 0, idle = 0, failed = 0, in_flight = 0, closed = 0;
    double t0 = now();
    int ready = 0;
    while (!stop) {
        /* Ramp up: keep at most `batch` connections between connect and idle
         * so that the listen backlog never overflows. */
        while (!ready && next < total && in_flight < batch) {
            if (open_conn(&conns[next], &sa, ep, (int)next) != 0) {
                conns[next].state = ST_DEAD;
                failed++;
            } else {
                in_flight++;
            }
            next++;
        }
        if (!ready && (idle + failed == total || now() - t0 > deadline_s)) {
            printf("READY idle=%zu failed=%zu seconds=%.1f\n", idle, failed, now() - t0);
            fflush(stdout);
            ready = 1;
            t0 = now();
        }
        if (ready && hold >= 0 && now() - t0 >= hold)
            break;
        int n = epoll_wait(ep, evs, 1024, 200);
        for (int i = 0; i < n; i++) {
            conn_t *c = &conns[evs[i].data.u32];
            int was = c->state, rc = 0;
            if (c->state == ST_DEAD)
                continue;
            if (evs[i].events & (EPOLLOUT | EPOLLERR))
                rc = on_writable(c);
            if (rc == 0 && (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                rc = on_readable(c);
            if (rc != 0) {
                kill_conn(c, ep);
                if (was == ST_IDLE) {
                    idle--;
                    closed++;
                } else {
                    in_flight--;
                    failed++;
                }
            } else if (was != ST_IDLE && c->state == ST_IDLE) {
                in_flight--;
                idle++;
                struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data = evs[i].data};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev); /* from now on only a close matters */
            } else if (was == ST_SENDING || was == ST_CONNECTING) {
                if (c->state == ST_READING) {
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data = evs[i].data};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
        }
    }
    printf("DONE idle=%zu failed=%zu closed_by_server=%zu\n", idle, failed, closed);
    fflush(stdout);
    for (size_t i = 0; i < total; i++)
        if (conns[i].state != ST_FREE && conns[i].state != ST_DEAD)
            close(conns[i].fd);
    free(conns);
    free(evs);
    close(ep);
    return failed == 0 && closed == 0 ? 0 : 1;
}
