/*
 * Unit tests for src/redis.c against a real redis-server, started by each test
 * on a free port as a child process; SIGSTOP provokes timeouts, SIGKILL and a
 * restart on the same port provoke loss and reconnection.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf_node.h"
#include "config.h"
#include "conn.h"
#include "redis.h"
#include "redis_cluster.h"

/* ---- the redis-server child ---------------------------------------------- */

static pid_t server_pid = -1;
static int server_port;
static char sock_path[64];

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static bool can_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    close(fd);
    return ok;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Starts redis-server on server_port with extra arguments (NULL-terminated). */
static void server_start_args(const char *const *extra)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", server_port);
    const char *argv[24] = {"redis-server", "--port",      port, "--bind",
                            "127.0.0.1",    "--save",      "",   "--appendonly",
                            "no",           "--daemonize", "no"};
    size_t n = 11;
    for (; extra != NULL && *extra != NULL && n < 23; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    server_pid = fork();
    ck_assert_int_ge(server_pid, 0);
    if (server_pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 500 && !can_connect(server_port); i++)
        sleep_ms(10);
    ck_assert_msg(can_connect(server_port), "redis-server did not start on %d", server_port);
}

static void server_start(void)
{
    server_start_args(NULL);
}

static void server_kill(void)
{
    if (server_pid <= 0)
        return;
    kill(server_pid, SIGCONT);
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
    server_pid = -1;
}

/* ---- the gateway side ---------------------------------------------------- */

static struct event_base *base;
static tg_config_t fake_cfg;
static tg_redis_conf_t *conf;
static tg_redis_t *rc;
static tg_conf_err_t err;
static char log_path[] = "/tmp/tg_test_redis_log_XXXXXX";
static int saved_stderr = -1;

/* What a callback saw. */
typedef struct {
    int calls;
    char error[64];
    int type;
    long long integer;
    char str[64];
    struct timespec at;
} seen_t;

static void record_cb(void *data, const struct redisReply *reply, const char *error)
{
    seen_t *s = data;
    s->calls++;
    clock_gettime(CLOCK_MONOTONIC, &s->at);
    snprintf(s->error, sizeof(s->error), "%s", error ? error : "");
    s->type = reply ? reply->type : -1;
    s->integer = reply ? reply->integer : 0;
    if (reply != NULL && reply->str != NULL)
        snprintf(s->str, sizeof(s->str), "%.*s", (int)reply->len, reply->str);
}

static long elapsed_ms(const struct timespec *a, const struct timespec *b)
{
    return (b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

static void break_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

/* Runs the loop until *cond turns non-zero or ms pass; returns *cond. */
static int run_until(const int *cond, long ms)
{
    bool expired = false;
    struct event *t = evtimer_new(base, break_cb, &expired);
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(t, &tv);
    while (!expired && (cond == NULL || *cond == 0))
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return cond ? *cond : 0;
}

static void run_ms(long ms)
{
    run_until(NULL, ms);
}

static bool wait_ready(long ms)
{
    for (long t = 0; t < ms && !tg_redis_ready(rc); t += 10)
        run_ms(10);
    return tg_redis_ready(rc);
}

static int parse_conf(const char *yaml)
{
    tg_conf_doc_t *doc;
    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(tg_conf_doc_parse("t.yaml", yaml, strlen(yaml), &doc, &err), 0);
    fake_cfg.redis = NULL;
    fake_cfg.dir = "/etc/tg";
    const tg_conf_node_t *n = tg_conf_map_get(tg_conf_doc_root(doc), "redis");
    int r = tg_redis_conf_parse(&fake_cfg, n, &err);
    tg_conf_doc_free(doc);
    conf = fake_cfg.redis;
    return r;
}

/* Connects with the default conf plus extra YAML lines (indented 2). */
static void connect_with(const char *extra)
{
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "redis:\n  address: \"127.0.0.1:%d\"\n%s", server_port,
             extra ? extra : "");
    ck_assert_msg(parse_conf(yaml) == 0, "%s", err.msg);
    rc = tg_redis_new(conf, base, 0);
    ck_assert_ptr_nonnull(rc);
}

static void send_cmd(seen_t *s, const char *a0, const char *a1, const char *a2)
{
    const char *argv[3] = {a0, a1, a2};
    tg_redis_send(rc, record_cb, s, a2 ? 3 : a1 ? 2 : 1, argv, NULL);
}

static char *read_log(void)
{
    static char buf[8192];
    fflush(stderr);
    FILE *f = fopen(log_path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    return buf;
}

static int occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    server_port = free_port();
    base = event_base_new();
    strcpy(log_path, "/tmp/tg_test_redis_log_XXXXXX");
    int fd = mkstemp(log_path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}

static void teardown(void)
{
    tg_redis_free(rc);
    rc = NULL;
    tg_redis_conf_free(conf);
    conf = NULL;
    event_base_free(base);
    server_kill();
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    unlink(log_path);
    if (sock_path[0])
        unlink(sock_path);
}

/* ---- config ---------------------------------------------------------------- */

START_TEST(conf_defaults_and_fields)
{
    ck_assert_int_eq(parse_conf("redis:\n  address: \"127.0.0.1:6390\"\n"), 0);
    ck_assert_str_eq(conf->name, "127.0.0.1:6390");
    ck_assert_str_eq(conf->host, "127.0.0.1");
    ck_assert_int_eq(conf->port, 6390);
    ck_assert_ptr_null(conf->unix_path);
    ck_assert_ptr_null(conf->password);
    ck_assert_uint_eq(conf->database, 0);
    ck_assert_uint_eq(conf->timeout_ms, 50);
    ck_assert_uint_eq(conf->connect_timeout_ms, 1000);
    tg_redis_conf_free(conf);
    conf = NULL;

    ck_assert_int_eq(parse_conf("redis:\n  address: \"localhost:7000\"\n  password: s3cret\n"
                                "  database: 4\n  timeout: 250ms\n  connect_timeout: 2s\n"),
                     0);
    ck_assert(strcmp(conf->host, "127.0.0.1") == 0 || strcmp(conf->host, "::1") == 0);
    ck_assert_int_eq(conf->port, 7000);
    ck_assert_str_eq(conf->password, "s3cret");
    ck_assert_uint_eq(conf->database, 4);
    ck_assert_uint_eq(conf->timeout_ms, 250);
    ck_assert_uint_eq(conf->connect_timeout_ms, 2000);
    tg_redis_conf_free(conf);
    conf = NULL;

    ck_assert_int_eq(parse_conf("redis:\n  address: \"unix:/run/redis.sock\"\n  password: \"\"\n"),
                     0);
    ck_assert_str_eq(conf->unix_path, "/run/redis.sock");
    ck_assert_ptr_null(conf->host);
    ck_assert_ptr_null(conf->password); /* "${REDIS_PASSWORD}" unset: no AUTH */
    tg_redis_conf_free(conf);
    conf = NULL;

    ck_assert_int_eq(parse_conf("redis:\n  address: \"unix:redis.sock\"\n"), 0);
    ck_assert_str_eq(conf->unix_path, "/etc/tg/redis.sock");
}
END_TEST

START_TEST(conf_sentinel_and_username)
{
    ck_assert_int_eq(parse_conf("redis:\n  sentinel:\n    master: mymaster\n"
                                "    nodes: [\"127.0.0.1:26379\", \"[::1]:26380\"]\n"
                                "    password: sp\n  username: alice\n  password: pw\n"),
                     0);
    ck_assert_str_eq(conf->sentinel_master, "mymaster");
    ck_assert_str_eq(conf->name, "sentinel master 'mymaster'");
    ck_assert_uint_eq(conf->nsentinels, 2);
    ck_assert_str_eq(conf->sentinels[0].host, "127.0.0.1");
    ck_assert_int_eq(conf->sentinels[0].port, 26379);
    ck_assert_str_eq(conf->sentinels[1].host, "::1");
    ck_assert_int_eq(conf->sentinels[1].port, 26380);
    ck_assert_str_eq(conf->sentinel_password, "sp");
    ck_assert_str_eq(conf->username, "alice");
    ck_assert_str_eq(conf->password, "pw");
    ck_assert_ptr_null(conf->host);
    tg_redis_conf_free(conf);
    conf = NULL;
    /* ${VAR:-} left empty: no sentinel AUTH, no ACL user */
    ck_assert_int_eq(parse_conf("redis:\n  sentinel: {master: m, nodes: [\"127.0.0.1:1\"], "
                                "password: \"\"}\n  username: \"\"\n"),
                     0);
    ck_assert_ptr_null(conf->sentinel_password);
    ck_assert_ptr_null(conf->username);
}
END_TEST

static void conf_err(const char *yaml, const char *msg)
{
    ck_assert_int_eq(parse_conf(yaml), -1);
    ck_assert_ptr_null(conf);
    ck_assert_str_eq(err.msg, msg);
}

START_TEST(conf_errors)
{
    conf_err("redis:\n  address: \"127.0.0.1:1\"\n  timout: 5ms\n",
             "t.yaml:3:3: unknown key 'timout' in redis (did you mean 'timeout'?)");
    conf_err("redis:\n  database: 1\n",
             "t.yaml:2:3: missing required key 'address' (or 'sentinel' or 'cluster')");
    conf_err(
        "redis:\n  address: \"127.0.0.1:1\"\n  sentinel: {master: m, nodes: [\"127.0.0.1:2\"]}\n",
        "t.yaml:3:13: redis takes exactly one of address, sentinel, cluster (address given "
        "too)");
    conf_err("redis:\n  sentinel: {master: m, nodes: [\"127.0.0.1:2\"]}\n  cluster: {}\n",
             "t.yaml:3:12: redis takes exactly one of address, sentinel, cluster (sentinel given "
             "too)");
    conf_err("redis:\n  cluster: {nodes: [\"127.0.0.1:2\"]}\n  database: 2\n",
             "t.yaml:3:13: a Redis Cluster has only database 0");
    conf_err("redis:\n  cluster: {nodes: []}\n",
             "t.yaml:2:20: expected a non-empty list of \"ip:port\"");
    conf_err("redis:\n  sentinel: {nodes: [\"127.0.0.1:2\"]}\n",
             "t.yaml:2:13: missing required key 'master'");
    conf_err("redis:\n  sentinel: {master: m}\n", "t.yaml:2:13: missing required key 'nodes'");
    conf_err("redis:\n  sentinel: {master: m, nodes: []}\n",
             "t.yaml:2:32: expected a non-empty list of \"ip:port\"");
    conf_err("redis:\n  sentinel: {master: m, nodes: [\"127.0.0.1\"]}\n",
             "t.yaml:2:33: missing port in '127.0.0.1'");
    conf_err("redis:\n  sentinel: {master: m, nodes: [\"127.0.0.1:1\"], pasword: x}\n",
             "t.yaml:2:49: unknown key 'pasword' in redis.sentinel (did you mean 'password'?)");
    conf_err("redis:\n  address: \"127.0.0.1:1\"\n  tls: {ca: /etc/ssl/redis-ca.pem}\n",
             "t.yaml:3:8: redis tls is not supported: tollgate is built against hiredis 0.14, "
             "which has no TLS; reach Redis over a unix socket, a private network or a local TLS "
             "tunnel (stunnel, spiped)");
    conf_err("redis:\n  address: \"127.0.0.1:1\"\n  username: alice\n",
             "t.yaml:3:13: username needs a password (AUTH username password)");
    conf_err("redis:\n  address: \"127.0.0.1:1\"\n  timeout: 50\n",
             "t.yaml:3:12: expected a duration like 10s, got '50'");
    conf_err("redis:\n  address: \"127.0.0.1:1\"\n  timeout: 0s\n",
             "t.yaml:3:12: must be greater than 0");
    conf_err("redis:\n  address: \"127.0.0.1\"\n", "t.yaml:2:12: missing port in '127.0.0.1'");
    conf_err("redis:\n  address: \":6379\"\n", "t.yaml:2:12: redis address needs a host: ':6379'");
    conf_err("redis:\n  address: \"unix:\"\n", "t.yaml:2:12: empty unix socket path");
    conf_err("redis:\n  address: \"127.0.0.1:1\"\n  database: -1\n",
             "t.yaml:3:13: expected an integer, got '-1'");
    conf_err("redis: [1]\n", "t.yaml:1:8: expected a map");
}
END_TEST

/* ---- commands -------------------------------------------------------------- */

START_TEST(round_trip_and_pipelining)
{
    server_start();
    connect_with(NULL);
    ck_assert(!tg_redis_ready(rc)); /* connecting never blocks */
    ck_assert(wait_ready(2000));

    seen_t set = {0}, get = {0};
    send_cmd(&set, "SET", "k", "v1");
    send_cmd(&get, "GET", "k", NULL);
    ck_assert_int_eq(get.calls, 0); /* never synchronous when connected */
    run_until(&get.calls, 1000);
    ck_assert_int_eq(set.calls, 1);
    ck_assert_int_eq(set.type, REDIS_REPLY_STATUS);
    ck_assert_str_eq(set.str, "OK");
    ck_assert_int_eq(get.type, REDIS_REPLY_STRING);
    ck_assert_str_eq(get.str, "v1");
    ck_assert_str_eq(get.error, "");

    /* 200 commands in flight on the one connection: replies in order. */
    static seen_t incr[200];
    memset(incr, 0, sizeof(incr));
    for (int i = 0; i < 200; i++)
        send_cmd(&incr[i], "INCR", "n", NULL);
    run_until(&incr[199].calls, 2000);
    for (int i = 0; i < 200; i++) {
        ck_assert_int_eq(incr[i].calls, 1);
        ck_assert_int_eq(incr[i].integer, i + 1);
    }

    /* Binary-safe arguments. */
    seen_t bset = {0}, bget = {0};
    const char *argv[] = {"SET", "bin", "a\0b"};
    const size_t lens[] = {3, 3, 3};
    tg_redis_send(rc, record_cb, &bset, 3, argv, lens);
    send_cmd(&bget, "STRLEN", "bin", NULL);
    run_until(&bget.calls, 1000);
    ck_assert_int_eq(bget.integer, 3);

    tg_redis_stats_t st;
    tg_redis_get_stats(rc, &st);
    ck_assert_uint_eq(st.connects, 1);
    ck_assert_uint_eq(st.timeouts + st.disconnected + st.errors, 0);
}
END_TEST

static seen_t written;

static void send_from_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    send_cmd(&written, "SET", "flushed", "yes");
}

/* Commands are written at the end of the iteration that sent them, not an
 * iteration later when the socket's write event comes round. */
START_TEST(written_in_the_same_iteration)
{
    server_start();
    connect_with(NULL);
    ck_assert(wait_ready(2000));
    memset(&written, 0, sizeof(written));
    struct event *t = evtimer_new(base, send_from_timer, NULL);
    struct timeval zero = {0, 0};
    evtimer_add(t, &zero);
    event_base_loop(base, EVLOOP_ONCE); /* the timer's iteration, and no other */
    ck_assert_int_eq(written.calls, 0);
    redisContext *probe = redisConnect("127.0.0.1", server_port);
    ck_assert(probe != NULL && probe->err == 0);
    redisReply *r = NULL;
    for (int i = 0; i < 100; i++) { /* the server may not have read it yet */
        r = redisCommand(probe, "GET flushed");
        if (r != NULL && r->type == REDIS_REPLY_STRING)
            break;
        freeReplyObject(r);
        r = NULL;
        usleep(10000);
    }
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->str, "yes");
    freeReplyObject(r);
    redisFree(probe);
    run_until(&written.calls, 1000);
    ck_assert_str_eq(written.str, "OK");
    event_free(t);
}
END_TEST

START_TEST(error_reply_is_a_reply)
{
    server_start();
    connect_with(NULL);
    ck_assert(wait_ready(2000));
    seen_t s = {0};
    send_cmd(&s, "NOSUCHCOMMAND", NULL, NULL);
    run_until(&s.calls, 1000);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.type, REDIS_REPLY_ERROR);
    ck_assert_str_eq(s.error, "");
    ck_assert_ptr_nonnull(strstr(s.str, "unknown command"));
    tg_redis_stats_t st;
    tg_redis_get_stats(rc, &st);
    ck_assert_uint_eq(st.errors, 1);
}
END_TEST

/* A request on a connection of worker w, nothing else set: what the
 * public Redis API needs to find the worker's client. */
static void fake_request(tg_worker_t *w, tg_conn_t *c, tg_request_t *r)
{
    memset(w, 0, sizeof(*w));
    memset(c, 0, sizeof(*c));
    memset(r, 0, sizeof(*r));
    c->worker = w;
    r->conn = c;
}

START_TEST(public_api_through_request)
{
    tg_worker_t w;
    tg_conn_t c;
    tg_request_t r;
    fake_request(&w, &c, &r);
    tg_request_t *req = (tg_request_t *)&r;
    const char *argv[] = {"PING"};

    seen_t s = {0};
    ck_assert_ptr_null(tg_redis_command(req, record_cb, &s, 1, argv, NULL));
    ck_assert_int_eq(s.calls, 1);
    ck_assert_str_eq(s.error, "redis not configured");
    ck_assert(!tg_redis_connected(req));
    ck_assert_int_eq(tg_redis_key_slot(req, "foo", 3), -1);

    server_start();
    connect_with(NULL);
    w.redis = rc;
    memset(&s, 0, sizeof(s));
    ck_assert_ptr_null(tg_redis_command(req, record_cb, &s, 1, argv, NULL));
    ck_assert_str_eq(s.error, "redis not connected"); /* still connecting */
    ck_assert(wait_ready(2000));
    ck_assert(tg_redis_connected(req));
    memset(&s, 0, sizeof(s));
    ck_assert_ptr_nonnull(tg_redis_command(req, record_cb, &s, 1, argv, NULL));
    run_until(&s.calls, 1000);
    ck_assert_str_eq(s.str, "PONG");
    ck_assert_int_eq(tg_redis_key_slot(req, "foo", 3), -1); /* one server: any keys together */

    /* A cancelled call never calls back, even when its reply arrives. */
    seen_t cancelled = {0}, after = {0};
    tg_redis_call_t *call = tg_redis_command(req, record_cb, &cancelled, 1, argv, NULL);
    tg_redis_cancel(call);
    tg_redis_command(req, record_cb, &after, 1, argv, NULL);
    run_until(&after.calls, 1000);
    ck_assert_int_eq(after.calls, 1);
    ck_assert_int_eq(cancelled.calls, 0);
    tg_redis_cancel(NULL); /* allowed */
}
END_TEST

START_TEST(timeout_then_late_reply_dropped)
{
    server_start();
    connect_with("  timeout: 60ms\n");
    ck_assert(wait_ready(2000));
    kill(server_pid, SIGSTOP);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    seen_t a = {0}, b = {0};
    send_cmd(&a, "PING", NULL, NULL);
    sleep_ms(20);
    send_cmd(&b, "PING", NULL, NULL);
    run_until(&a.calls, 1000);
    ck_assert_str_eq(a.error, "timeout");
    long ta = elapsed_ms(&t0, &a.at);
    ck_assert_msg(ta >= 55 && ta < 150, "timed out after %ld ms", ta);
    run_until(&b.calls, 1000);
    ck_assert_str_eq(b.error, "timeout");
    long tb = elapsed_ms(&t0, &b.at);
    ck_assert_msg(tb >= 75 && tb < 180, "second timed out after %ld ms", tb);

    kill(server_pid, SIGCONT);
    seen_t c = {0};
    send_cmd(&c, "PING", NULL, NULL);
    run_until(&c.calls, 1000);
    ck_assert_str_eq(c.str, "PONG");
    ck_assert_int_eq(a.calls, 1); /* the late replies were dropped */
    ck_assert_int_eq(b.calls, 1);
    tg_redis_stats_t st;
    tg_redis_get_stats(rc, &st);
    ck_assert_uint_eq(st.timeouts, 2);
    ck_assert_uint_eq(st.late_replies, 2);
    ck_assert_uint_eq(st.connects, 1); /* no reconnect for a short stall */
}
END_TEST

START_TEST(stall_drops_the_connection)
{
    server_start();
    connect_with("  timeout: 50ms\n");
    ck_assert(wait_ready(2000));
    kill(server_pid, SIGSTOP);
    seen_t a = {0};
    send_cmd(&a, "PING", NULL, NULL);
    run_until(&a.calls, 1000);
    ck_assert_str_eq(a.error, "timeout");
    /* After TG_REDIS_STALL_MS without any reply the connection is given up. */
    for (int i = 0; i < 150 && tg_redis_ready(rc); i++)
        run_ms(10);
    ck_assert(!tg_redis_ready(rc));
    seen_t b = {0};
    send_cmd(&b, "PING", NULL, NULL);
    ck_assert_int_eq(b.calls, 1);
    ck_assert_str_eq(b.error, "redis not connected");
    run_ms(500); /* reconnects: TCP succeeds but PING gets no answer */
    ck_assert(!tg_redis_ready(rc));
    kill(server_pid, SIGCONT);
    ck_assert(wait_ready(3000));
    ck_assert_ptr_nonnull(strstr(read_log(), "lost: no reply for 1000 ms"));
}
END_TEST

START_TEST(loss_and_reconnect)
{
    server_start();
    connect_with(NULL);
    ck_assert(wait_ready(2000));
    kill(server_pid, SIGSTOP);
    seen_t pending = {0};
    send_cmd(&pending, "PING", NULL, NULL);
    server_kill(); /* with a call in flight */
    run_until(&pending.calls, 1000);
    ck_assert_int_eq(pending.calls, 1);
    ck_assert_str_eq(pending.error, "connection lost");
    ck_assert(!tg_redis_ready(rc));

    /* While down: immediate failure, no waiting. */
    seen_t s = {0};
    const char *argv[] = {"PING"};
    ck_assert_ptr_null(tg_redis_send(rc, record_cb, &s, 1, argv, NULL));
    ck_assert_int_eq(s.calls, 1);
    ck_assert_str_eq(s.error, "redis not connected");

    run_ms(700); /* several failed reconnects: logged once */
    server_start();
    ck_assert(wait_ready(3000));
    memset(&s, 0, sizeof(s));
    send_cmd(&s, "PING", NULL, NULL);
    run_until(&s.calls, 1000);
    ck_assert_str_eq(s.str, "PONG");

    char name[64], lost[128], back[128];
    snprintf(name, sizeof(name), "127.0.0.1:%d", server_port);
    snprintf(lost, sizeof(lost), "[warn] redis: connection to %s lost: ", name);
    snprintf(back, sizeof(back), "[notice] redis: connected to %s", name);
    const char *log = read_log();
    ck_assert_msg(occurrences(log, lost) == 1, "log: %s", log);
    ck_assert_msg(occurrences(log, back) == 1, "log: %s", log);
    ck_assert_int_eq(occurrences(log, "[warn]"), 1);

    tg_redis_stats_t st;
    tg_redis_get_stats(rc, &st);
    ck_assert_uint_eq(st.connects, 2);
    ck_assert_uint_eq(st.disconnected, 2);
}
END_TEST

START_TEST(starts_without_server)
{
    connect_with(NULL); /* nothing listens on the port yet */
    run_ms(300);
    ck_assert(!tg_redis_ready(rc));
    server_start();
    ck_assert(wait_ready(3000));
    const char *log = read_log();
    ck_assert_int_eq(occurrences(log, "redis: cannot connect to"), 1);
    ck_assert_int_eq(occurrences(log, "redis: connected to"), 1);
}
END_TEST

START_TEST(shutdown_with_calls_pending)
{
    server_start();
    connect_with("  timeout: 5s\n");
    ck_assert(wait_ready(2000));
    kill(server_pid, SIGSTOP);
    seen_t s[3] = {{0}};
    for (int i = 0; i < 3; i++)
        send_cmd(&s[i], "PING", NULL, NULL);
    run_ms(20);
    tg_redis_free(rc);
    rc = NULL;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(s[i].calls, 1);
        ck_assert_str_eq(s[i].error, "shutdown");
    }
}
END_TEST

START_TEST(auth_and_select_applied)
{
    const char *extra[] = {"--requirepass", "pw1", NULL};
    server_start_args(extra);
    connect_with("  password: pw1\n  database: 3\n");
    ck_assert(wait_ready(2000));
    seen_t set = {0}, db = {0};
    send_cmd(&set, "SET", "x", "1");
    send_cmd(&db, "EVAL", "return redis.call('SELECT', 3) and redis.call('GET', 'x')", "0");
    run_until(&db.calls, 1000);
    ck_assert_str_eq(set.str, "OK");
    ck_assert_str_eq(db.str, "1");
    seen_t db0 = {0};
    send_cmd(&db0, "EVAL", "redis.call('SELECT', 0) return redis.call('EXISTS', 'x')", "0");
    run_until(&db0.calls, 1000);
    ck_assert_int_eq(db0.integer, 0);
}
END_TEST

/* tg_redis_format writes what hiredis's own formatter writes, in buf or
 * malloc'ed memory. */
START_TEST(format_matches_hiredis)
{
    char big[5000];
    memset(big, 'x', sizeof(big));
    const char *argv[] = {"EVALSHA", "", "a\0b", big, "12345678901"};
    size_t lens[] = {7, 0, 3, sizeof(big), 11};
    for (int argc = 1; argc <= 5; argc++) {
        char *want;
        int wlen = redisFormatCommandArgv(&want, argc, argv, lens);
        char buf[64];
        size_t len;
        char *got = tg_redis_format(argc, argv, lens, buf, sizeof(buf), &len);
        ck_assert_ptr_nonnull(got);
        ck_assert_uint_eq(len, (size_t)wlen);
        ck_assert(memcmp(got, want, len) == 0);
        ck_assert(argc <= 3 ? got == buf : got != buf); /* 4 and 5 do not fit in 64 bytes */
        if (got != buf)
            free(got);
        redisFreeCommand(want);
    }
    const char *plain[] = {"SET", "k", "v"};
    char *want;
    int wlen = redisFormatCommandArgv(&want, 3, plain, NULL);
    size_t len;
    char *got = tg_redis_format(3, plain, NULL, NULL, 0, &len);
    ck_assert_uint_eq(len, (size_t)wlen);
    ck_assert(memcmp(got, want, len) == 0);
    free(got);
    redisFreeCommand(want);
}
END_TEST

/* Values from the Cluster spec and CLUSTER KEYSLOT. */
START_TEST(cluster_slot_of_keys)
{
    ck_assert_uint_eq(tg_redis_cluster_slot("123456789", 9), 0x31C3 % 16384);
    ck_assert_uint_eq(tg_redis_cluster_slot("foo", 3), 12182);
    ck_assert_uint_eq(tg_redis_cluster_slot("{user1000}.following", 20),
                      tg_redis_cluster_slot("{user1000}.followers", 20));
    ck_assert_uint_eq(tg_redis_cluster_slot("x{foo}y", 7), 12182);
    /* "{}" is no tag: the whole key; only the first "{...}" counts */
    ck_assert_uint_ne(tg_redis_cluster_slot("foo{}{bar}", 10), tg_redis_cluster_slot("bar", 3));
    ck_assert_uint_eq(tg_redis_cluster_slot("foo{{bar}}zap", 13), tg_redis_cluster_slot("{bar", 4));

    /* tg_redis_key_slot: the slot with `cluster:` (seeds need not answer). */
    tg_conf_doc_t *doc;
    const char *yaml = "redis:\n  cluster:\n    nodes: [\"127.0.0.1:1\"]\n";
    ck_assert_int_eq(tg_conf_doc_parse("t.yaml", yaml, strlen(yaml), &doc, &err), 0);
    fake_cfg.redis = NULL;
    ck_assert_int_eq(
        tg_redis_conf_parse(&fake_cfg, tg_conf_map_get(tg_conf_doc_root(doc), "redis"), &err), 0);
    tg_conf_doc_free(doc);
    conf = fake_cfg.redis;
    rc = tg_redis_new(conf, base, 0);
    ck_assert_ptr_nonnull(rc);
    tg_worker_t w;
    tg_conn_t c;
    tg_request_t r;
    fake_request(&w, &c, &r);
    w.redis = rc;
    ck_assert_int_eq(tg_redis_key_slot(&r, "x{foo}y", 7), 12182);
    ck_assert_int_eq(tg_redis_key_slot(&r, "123456789", 9), 0x31C3);
}
END_TEST

START_TEST(acl_username_auth)
{
    const char *extra[] = {"--user", "alice", "on", ">pw2", "~*", "+@all", NULL};
    server_start_args(extra);
    connect_with("  username: alice\n  password: pw2\n");
    ck_assert(wait_ready(2000));
    seen_t who = {0};
    send_cmd(&who, "ACL", "WHOAMI", NULL);
    run_until(&who.calls, 1000);
    ck_assert_str_eq(who.str, "alice");
}
END_TEST

START_TEST(wrong_password_never_ready)
{
    const char *extra[] = {"--requirepass", "pw1", NULL};
    server_start_args(extra);
    connect_with("  password: nope\n");
    ck_assert(!wait_ready(500));
    const char *log = read_log();
    ck_assert_msg(occurrences(log, "handshake failed: WRONGPASS") == 1, "log: %s", log);
}
END_TEST

START_TEST(connect_timeout_on_frozen_server)
{
    server_start();
    kill(server_pid, SIGSTOP); /* TCP connects (kernel backlog), PING never answered */
    connect_with("  connect_timeout: 150ms\n");
    run_ms(400);
    ck_assert(!tg_redis_ready(rc));
    ck_assert_ptr_nonnull(strstr(read_log(), "cannot connect to"));
    ck_assert_ptr_nonnull(strstr(read_log(), "connect timeout"));
    kill(server_pid, SIGCONT);
    ck_assert(wait_ready(3000));
}
END_TEST

START_TEST(unix_socket)
{
    snprintf(sock_path, sizeof(sock_path), "/tmp/tg_test_redis_%d.sock", (int)getpid());
    const char *extra[] = {"--unixsocket", sock_path, NULL};
    server_start_args(extra);
    char yaml[256];
    snprintf(yaml, sizeof(yaml), "redis:\n  address: \"unix:%s\"\n", sock_path);
    ck_assert_msg(parse_conf(yaml) == 0, "%s", err.msg);
    rc = tg_redis_new(conf, base, 0);
    ck_assert(wait_ready(2000));
    seen_t s = {0};
    send_cmd(&s, "PING", NULL, NULL);
    run_until(&s.calls, 1000);
    ck_assert_str_eq(s.str, "PONG");
}
END_TEST

/* A callback that sends again from inside the callback, while the connection dies. */
static void resend_cb(void *data, const struct redisReply *reply, const char *error)
{
    seen_t *s = data;
    record_cb(data, reply, error);
    if (s->calls == 1) {
        const char *argv[] = {"PING"};
        tg_redis_send(rc, record_cb, s, 1, argv, NULL);
    }
}

START_TEST(send_from_callback_while_dying)
{
    server_start();
    connect_with(NULL);
    ck_assert(wait_ready(2000));
    kill(server_pid, SIGSTOP);
    seen_t s = {0};
    const char *argv[] = {"PING"};
    tg_redis_send(rc, resend_cb, &s, 1, argv, NULL);
    server_kill();
    run_until(&s.calls, 1000);
    ck_assert_int_eq(s.calls, 2); /* the resend failed at once */
    ck_assert_str_eq(s.error, "redis not connected");
}
END_TEST

static Suite *redis_suite(void)
{
    Suite *s = suite_create("redis");
    TCase *tc = tcase_create("redis");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, conf_defaults_and_fields);
    tcase_add_test(tc, conf_errors);
    tcase_add_test(tc, conf_sentinel_and_username);
    tcase_add_test(tc, acl_username_auth);
    tcase_add_test(tc, cluster_slot_of_keys);
    tcase_add_test(tc, format_matches_hiredis);
    tcase_add_test(tc, round_trip_and_pipelining);
    tcase_add_test(tc, written_in_the_same_iteration);
    tcase_add_test(tc, error_reply_is_a_reply);
    tcase_add_test(tc, public_api_through_request);
    tcase_add_test(tc, timeout_then_late_reply_dropped);
    tcase_add_test(tc, stall_drops_the_connection);
    tcase_add_test(tc, loss_and_reconnect);
    tcase_add_test(tc, starts_without_server);
    tcase_add_test(tc, shutdown_with_calls_pending);
    tcase_add_test(tc, auth_and_select_applied);
    tcase_add_test(tc, wrong_password_never_ready);
    tcase_add_test(tc, connect_timeout_on_frozen_server);
    tcase_add_test(tc, unix_socket);
    tcase_add_test(tc, send_from_callback_while_dying);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(redis_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
