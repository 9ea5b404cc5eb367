/* Unit tests for the parts of src/admin.c that need no gateway: secret
 * masking, the /config document, and the admin HTTP server in-process (with
 * one hand-made worker whose metrics it renders). The request guard is
 * test_admin_guard.c. */
#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"
#include "conn.h"
#include "metrics.h"
#include "worker.h"

static tg_worker_t workers[1];

static void setup(void)
{
    tg_metrics_registry_reset();
    memset(workers, 0, sizeof(workers));
}

static void teardown(void)
{
    tg_metrics_set_workers(NULL, 0);
    if (workers[0].gen != NULL) {
        tg_worker_metrics_free(workers[0].metrics);
        free(workers[0].gen->pools);
        free(workers[0].gen);
    }
    tg_metrics_registry_reset();
}

/* Worker 0 serves c. */
static void worker_for(tg_config_t *c)
{
    workers[0].id = 0;
    workers[0].cfg = c;
    workers[0].metrics = tg_worker_metrics_new(c);
    workers[0].gen = calloc(1, sizeof(tg_gen_t));
    ck_assert_ptr_nonnull(workers[0].gen);
    workers[0].gen->cfg = c;
    workers[0].gen->pools = calloc(c->nupstreams ? c->nupstreams : 1, sizeof(tg_upool_t));
    ck_assert_ptr_nonnull(workers[0].metrics);
    ck_assert_ptr_nonnull(workers[0].gen->pools);
}

/* Asserts that text holds line as a whole line. */
static void ck_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
    ck_abort_msg("line not found: %s\n--- in ---\n%s", line, text);
}

/* ---- admin: masking and /config ----------------------------------------- */

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

START_TEST(test_mask_secrets)
{
    json_error_t e;
    json_t *j = json_loads(
        "{\"password\":\"p\",\"name\":\"secret\",\"max_tokens\":5,\"burst_tokens\":\"7\","
        "\"nested\":{\"API_KEY\":\"k\",\"Authorization\":\"Bearer x\",\"keys\":[\"a\"],"
        "\"key_file\":\"/k\",\"client_secret\":null},"
        "\"list\":[{\"refresh_Token\":\"t\",\"ok\":\"v\"},\"plain\"],"
        "\"private_keys\":[\"a\",{\"x\":\"y\",\"n\":1}],\"secretive\":true,"
        "\"jwt\":{\"key\":{\"pem\":\"-----BEGIN\"}}}",
        0, &e);
    ck_assert_msg(j != NULL, "%s", e.text);
    tg_admin_mask_secrets(j);
    char *s = dump(j);
    ck_assert_str_eq(s, "{\"burst_tokens\":\"***\",\"jwt\":{\"key\":{\"pem\":\"***\"}},"
                        "\"list\":[{\"ok\":\"v\",\"refresh_Token\":\"***\"},\"plain\"],"
                        "\"max_tokens\":5,\"name\":\"secret\","
                        "\"nested\":{\"API_KEY\":\"***\",\"Authorization\":\"***\","
                        "\"client_secret\":null,\"key_file\":\"/k\",\"keys\":[\"a\"]},"
                        "\"password\":\"***\",\"private_keys\":[\"***\",{\"n\":1,\"x\":\"***\"}],"
                        "\"secretive\":true}");
    free(s);
    json_decref(j);
    /* Not an object or array: nothing to do. */
    json_t *str = json_string("password");
    tg_admin_mask_secrets(str);
    ck_assert_str_eq(json_string_value(str), "password");
    json_decref(str);
    tg_admin_mask_secrets(NULL);
}
END_TEST

static char tmpdir[] = "/tmp/tg_test_admin_XXXXXX";

static tg_config_t *load(const char *yaml)
{
    strcpy(tmpdir, "/tmp/tg_test_admin_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/t.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(yaml, f);
    fclose(f);
    tg_config_t *c = NULL;
    tg_conf_err_t err;
    int rc = tg_config_load(path, &c, &err);
    unlink(path);
    rmdir(tmpdir);
    ck_assert_msg(rc == 0, "load failed: %s", err.msg);
    return c;
}

static void ck_json(const json_t *root, const char *key, const char *expected)
{
    char *s = dump(json_object_get(root, key));
    ck_assert_msg(s != NULL, "no key %s", key);
    ck_assert_str_eq(s, expected);
    free(s);
}

START_TEST(test_config_json)
{
    tg_config_t *c = load("workers: 2\n"
                          "listen:\n  - address: \"127.0.0.1:18080\"\n"
                          "admin:\n  address: \"127.0.0.1:19901\"\n"
                          "trusted_proxies: [\"10.0.0.0/8\", \"::1\"]\n"
                          "limits:\n  max_headers: 64\n"
                          "upstreams:\n"
                          "  users:\n    targets: [\"127.0.0.1:9001\"]\n    balance: least_conn\n"
                          "  orders:\n    targets: [\"127.0.0.1:9101\", \"127.0.0.1:9102\"]\n"
                          "routes:\n"
                          "  - name: users\n    match:\n      host: \"*.Example.com\"\n"
                          "      path_prefix: /api/users\n      methods: [get, post, purge]\n"
                          "      headers: { X-Env: canary, Authorization: \"Bearer abc\" }\n"
                          "    strip_prefix: /api\n    upstream: users\n"
                          "  - match:\n      path: /exact\n    upstream: orders\n");
    json_t *j = tg_admin_config_json(c);
    ck_assert_ptr_nonnull(j);
    ck_json(j, "workers", "2");
    ck_json(j, "listen", "[{\"address\":\"127.0.0.1:18080\"}]");
    ck_json(j, "admin", "{\"address\":\"127.0.0.1:19901\",\"token\":null}");
    ck_json(j, "trusted_proxies", "[\"10.0.0.0/8\",\"::1/128\"]");
    ck_json(j, "limits",
            "{\"body_timeout_ms\":60000,\"drain_timeout_ms\":30000,\"encoded_slashes\":\"reject\","
            "\"header_timeout_ms\":10000,"
            "\"headers_with_underscores\":\"drop\",\"idle_timeout_ms\":60000,\"max_body_size\":"
            "10485760,\"max_header_size\":16384,"
            "\"max_headers\":64,\"send_timeout_ms\":60000}");
    ck_json(j, "upstreams",
            "[{\"balance\":\"least_conn\",\"connect_timeout_ms\":1000,\"fail_timeout_ms\":10000,"
            "\"keepalive\":32,\"keepalive_trim_ms\":1000,\"max_fails\":3,\"name\":\"users\","
            "\"retries\":1,"
            "\"targets\":[\"127.0.0.1:9001\"],\"timeout_ms\":30000},"
            "{\"balance\":\"round_robin\",\"connect_timeout_ms\":1000,\"fail_timeout_ms\":10000,"
            "\"keepalive\":32,\"keepalive_trim_ms\":1000,\"max_fails\":3,\"name\":\"orders\","
            "\"retries\":1,"
            "\"targets\":[\"127.0.0.1:9101\",\"127.0.0.1:9102\"],\"timeout_ms\":30000}]");
    /* Every header match value is masked: operators route on shared secrets. */
    ck_json(j, "routes",
            "[{\"match\":{\"headers\":{\"authorization\":\"***\",\"x-env\":\"***\"},"
            "\"host\":\"*.example.com\",\"methods\":[\"GET\",\"POST\",\"PURGE\"],"
            "\"path_prefix\":\"/api/users\"},\"name\":\"users\",\"plugins\":[],"
            "\"strip_prefix\":\"/api\",\"upstream\":\"users\"},"
            "{\"match\":{\"path\":\"/exact\"},\"name\":\"route-1\",\"plugins\":[],"
            "\"strip_prefix\":null,\"upstream\":\"orders\"}]");
    ck_json(j, "plugins", "[]");
    ck_json(j, "redis", "null");
    json_decref(j);
    tg_config_unref(c);
}
END_TEST

START_TEST(test_config_json_secrets)
{
    tg_config_t *c = load("listen:\n  - address: \"127.0.0.1:18080\"\n"
                          "admin:\n  address: \"127.0.0.1:19901\"\n"
                          "  token: \"planted-admin-token-0123\"\n"
                          "redis:\n  address: \"127.0.0.1:6379\"\n"
                          "  password: \"planted-redis-password\"\n"
                          "upstreams:\n  users:\n    targets: [\"127.0.0.1:9001\"]\n"
                          "routes:\n  - match:\n      headers: { X-Internal: planted-header }\n"
                          "    upstream: users\n");
    ck_assert(c->has_admin_token);
    json_t *j = tg_admin_config_json(c);
    char *s = dump(j);
    ck_assert_ptr_null(strstr(s, "planted"));
    free(s);
    ck_json(j, "admin", "{\"address\":\"127.0.0.1:19901\",\"token\":\"***\"}");
    ck_json(json_object_get(j, "redis"), "password", "\"***\"");
    json_decref(j);
    tg_config_unref(c);
}
END_TEST

/* ---- admin: the HTTP server in-process ---------------------------------- */

static unsigned short free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

/* Sends raw, reads until the server closes (Connection: close); caller frees. */
static char *http(unsigned short port, const char *raw)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(write(fd, raw, strlen(raw)), (ssize_t)strlen(raw));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    ssize_t k;
    while ((k = read(fd, buf + n, cap - n - 1)) > 0) {
        n += (size_t)k;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    close(fd);
    return buf;
}

static char *get(unsigned short port, const char *method, const char *path)
{
    char raw[256];
    snprintf(raw, sizeof(raw), "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n\r\n",
             method, path, port);
    return http(port, raw);
}

static const char *body_of(const char *resp)
{
    const char *p = strstr(resp, "\r\n\r\n");
    ck_assert_ptr_nonnull(p);
    return p + 4;
}

static void ck_status(const char *resp, const char *status_line)
{
    ck_assert_msg(strncmp(resp, status_line, strlen(status_line)) == 0 &&
                      resp[strlen(status_line)] == '\r',
                  "expected %s, got %.200s", status_line, resp);
}

static void ck_header(const char *resp, const char *header_line)
{
    char needle[256];
    snprintf(needle, sizeof(needle), "\r\n%s\r\n", header_line);
    const char *end = strstr(resp, "\r\n\r\n");
    const char *p = strstr(resp, needle);
    ck_assert_msg(p != NULL && p < end, "header %s missing in %.400s", header_line, resp);
}

START_TEST(test_admin_server)
{
    unsigned short port = free_port();
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "listen:\n  - address: \"127.0.0.1:18080\"\n"
             "admin:\n  address: \"127.0.0.1:%u\"\n"
             "upstreams:\n  users:\n    targets: [\"127.0.0.1:9001\"]\n"
             "routes:\n  - name: users\n    upstream: users\n",
             port);
    tg_config_t *c = load(yaml);
    worker_for(c);
    tg_metrics_request_done(&workers[0], &c->routes[0], 201, 3000);
    char err[256] = "";
    int fd = tg_admin_listen(c, err, sizeof(err));
    ck_assert_msg(fd >= 0, "%s", err);
    tg_admin_t *a = tg_admin_start(c, fd, workers, 1, err, sizeof(err));
    ck_assert_msg(a != NULL, "%s", err);

    char *r = get(port, "GET", "/healthz");
    ck_status(r, "HTTP/1.1 200 OK");
    ck_header(r, "Content-Type: text/plain; charset=utf-8");
    ck_header(r, "Content-Length: 3");
    ck_assert_str_eq(body_of(r), "ok\n");
    free(r);

    r = get(port, "GET", "/readyz");
    ck_status(r, "HTTP/1.1 503 Service Unavailable");
    ck_assert_str_eq(body_of(r), "not ready\n");
    free(r);
    tg_admin_set_ready(a, true);
    r = get(port, "GET", "/readyz?verbose=1");
    ck_status(r, "HTTP/1.1 200 OK");
    ck_assert_str_eq(body_of(r), "ready\n");
    free(r);
    tg_admin_set_ready(a, false);
    r = get(port, "GET", "/readyz");
    ck_status(r, "HTTP/1.1 503 Service Unavailable");
    free(r);

    r = get(port, "GET", "/metrics");
    ck_status(r, "HTTP/1.1 200 OK");
    ck_header(r, "Content-Type: text/plain; version=0.0.4; charset=utf-8");
    ck_line(body_of(r), "tollgate_requests_total{route=\"users\",status=\"2xx\"} 1");
    ck_line(body_of(r), "tollgate_request_duration_seconds_sum{route=\"users\"} 0.003000");
    ck_line(body_of(r), "tollgate_workers 1");
    free(r);

    r = get(port, "GET", "/config");
    ck_status(r, "HTTP/1.1 200 OK");
    ck_header(r, "Content-Type: application/json");
    json_error_t e;
    json_t *j = json_loads(body_of(r), 0, &e);
    ck_assert_msg(j != NULL, "bad JSON: %s", e.text);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "workers")), c->workers);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "routes")), 1);
    json_decref(j);
    free(r);

    r = get(port, "HEAD", "/healthz");
    ck_status(r, "HTTP/1.1 200 OK");
    ck_header(r, "Content-Length: 3");
    ck_assert_str_eq(body_of(r), "");
    free(r);

    r = get(port, "POST", "/metrics");
    ck_status(r, "HTTP/1.1 405 Method Not Allowed");
    ck_header(r, "Allow: GET, HEAD");
    free(r);
    r = get(port, "DELETE", "/config");
    ck_status(r, "HTTP/1.1 405 Method Not Allowed");
    free(r);

    /* Cross-site: a rebinding page's Host, a browser's Origin. */
    r = http(port, "GET /config HTTP/1.1\r\nHost: evil.example\r\n\r\n");
    ck_status(r, "HTTP/1.1 403 Forbidden");
    ck_header(r, "Connection: close");
    free(r);
    r = http(port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nOrigin: null\r\n\r\n");
    ck_status(r, "HTTP/1.1 403 Forbidden");
    free(r);

    r = get(port, "GET", "/metrics/");
    ck_status(r, "HTTP/1.1 404 Not Found");
    ck_assert_str_eq(body_of(r), "not found\n");
    free(r);
    r = get(port, "GET", "/");
    ck_status(r, "HTTP/1.1 404 Not Found");
    free(r);

    /* The port is taken: a second admin fails with a message. */
    char err2[256] = "";
    ck_assert_int_eq(tg_admin_listen(c, err2, sizeof(err2)), -1);
    char want[128];
    snprintf(want, sizeof(want), "cannot listen on 127.0.0.1:%u: Address already in use", port);
    ck_assert_str_eq(err2, want);

    tg_admin_stop(a);
    tg_admin_stop(NULL);
    tg_config_unref(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("admin");
    TCase *t = tcase_create("admin");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_mask_secrets);
    tcase_add_test(t, test_config_json);
    tcase_add_test(t, test_config_json_secrets);
    tcase_add_test(t, test_admin_server);
    tcase_set_timeout(t, 30);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
