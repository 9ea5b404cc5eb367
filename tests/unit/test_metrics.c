/* Unit tests for src/metrics.c: the registry, per-worker counters and the
 * text exposition (src/admin.c has its own suite, test_admin.c). */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "metrics.h"
#include "tg_build_config.h"
#include "worker.h"

/* ---- fixtures: a hand-made config, two workers -------------------------- */

static tg_upstream_conf_t ups[1];
static tg_route_t routes[2];
static tg_config_t cfg;
static tg_worker_t workers[2];
static tg_metrics_t *reg;

static void setup(void)
{
    tg_metrics_registry_reset();
    reg = tg_metrics_registry();
    memset(ups, 0, sizeof(ups));
    memset(routes, 0, sizeof(routes));
    memset(&cfg, 0, sizeof(cfg));
    ups[0].name = "users";
    routes[0].name = "users";
    routes[0].index = 0;
    cfg.upstreams = ups;
    cfg.nupstreams = 1;
    cfg.routes = routes;
    cfg.nroutes = 1;
    for (unsigned i = 0; i < 2; i++) {
        memset(&workers[i], 0, sizeof(workers[i]));
        workers[i].id = i;
        workers[i].cfg = &cfg;
        workers[i].metrics = tg_worker_metrics_new(&cfg);
        workers[i].gen = calloc(1, sizeof(tg_gen_t));
        workers[i].gen->cfg = &cfg;
        workers[i].gen->pools = calloc(1, sizeof(tg_upool_t));
        ck_assert_ptr_nonnull(workers[i].metrics);
        ck_assert_ptr_nonnull(workers[i].gen->pools);
    }
}

static void teardown(void)
{
    tg_metrics_set_workers(NULL, 0);
    for (unsigned i = 0; i < 2; i++) {
        tg_worker_metrics_free(workers[i].metrics);
        free(workers[i].gen->pools);
        free(workers[i].gen);
    }
    tg_metrics_registry_reset();
}

/* The whole exposition as a NUL-terminated string (caller frees). */
static char *render(unsigned nworkers)
{
    struct evbuffer *b = evbuffer_new();
    tg_metrics_render(b, &cfg, workers, nworkers);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
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

static size_t count_of(const char *text, const char *needle)
{
    size_t k = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        k++;
    return k;
}

/* ---- registry ----------------------------------------------------------- */

START_TEST(test_names_validated)
{
    static const char *const v[] = {"a", "b"};
    ck_assert_int_eq(tg_metrics_counter(reg, "a", NULL, NULL, NULL, 0), 0);
    ck_assert_int_eq(tg_metrics_counter(reg, "_x", "", NULL, NULL, 0), 1);
    ck_assert_int_eq(tg_metrics_counter(reg, ":x:y_9", "h", NULL, NULL, 0), 2);
    ck_assert_int_eq(tg_metrics_counter(reg, "Ab_c", "h", "le", v, 2), 3);
    ck_assert_int_eq(tg_metrics_counter(reg, "", "h", NULL, NULL, 0), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, NULL, "h", NULL, NULL, 0), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "1a", "h", NULL, NULL, 0), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "a-b", "h", NULL, NULL, 0), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "a b", "h", NULL, NULL, 0), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "caf\xc3\xa9", "h", NULL, NULL, 0), -1);
    /* label names: no colon, no leading digit, "__" reserved */
    ck_assert_int_eq(tg_metrics_counter(reg, "l1", "h", "a:b", v, 2), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "l2", "h", "1a", v, 2), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "l3", "h", "__name", v, 2), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "l4", "h", "", v, 2), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "l5", "h", NULL, v, 2), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "l6", "h", "reason", NULL, 0), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "l7", "h", "reason", NULL, 2), -1);
    static const char *const dup[] = {"a", "b", "a"};
    ck_assert_int_eq(tg_metrics_counter(reg, "l8", "h", "reason", dup, 3), -1);
    static const char *const hole[] = {"a", NULL};
    ck_assert_int_eq(tg_metrics_counter(reg, "l9", "h", "reason", hole, 2), -1);
    ck_assert_int_eq(tg_metrics_counter(NULL, "ok", "h", NULL, NULL, 0), -1);
    /* the core's own families, with or without _total */
    ck_assert_int_eq(tg_metrics_counter(reg, "tollgate_requests_total", "h", NULL, NULL, 0), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "tollgate_requests", "h", NULL, NULL, 0), -1);
    ck_assert_int_eq(
        tg_metrics_counter(reg, "tollgate_request_duration_seconds_count", "h", NULL, NULL, 0), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "tollgate_info", "h", NULL, NULL, 0), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "tollgate_websocket_connections", "h", NULL, NULL, 0),
                     -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "tollgate_jwt_failures_total", "h", NULL, NULL, 0), 4);
}
END_TEST

START_TEST(test_registration_idempotent)
{
    static const char *const v[] = {"expired", "bad_signature"};
    static const char *const v2[] = {"expired", "other"};
    int id = tg_metrics_counter(reg, "jwt_failures_total", "JWT failures.", "reason", v, 2);
    ck_assert_int_eq(id, 0);
    /* Same shape (help may differ): same id, no new slots. */
    ck_assert_int_eq(tg_metrics_counter(reg, "jwt_failures_total", "other help", "reason", v, 2),
                     0);
    ck_assert_int_eq(tg_metrics_counter(reg, "jwt_failures_total", "h", "kind", v, 2), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "jwt_failures_total", "h", "reason", v2, 2), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "jwt_failures_total", "h", "reason", v, 1), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "jwt_failures_total", "h", NULL, NULL, 0), -1);
    /* "x" and "x_total" are one family to Prometheus. */
    ck_assert_int_eq(tg_metrics_counter(reg, "jwt_failures", "h", "reason", v, 2), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "plain", "h", NULL, NULL, 0), 1);
    ck_assert_int_eq(tg_metrics_counter(reg, "plain", "h2", NULL, NULL, 0), 1);
    ck_assert_int_eq(tg_metrics_counter(reg, "plain_total", "h", NULL, NULL, 0), -1);
    char *out = render(2);
    ck_assert_uint_eq(count_of(out, "# TYPE jwt_failures_total counter\n"), 1);
    ck_assert_uint_eq(count_of(out, "# HELP jwt_failures_total JWT failures.\n"), 1);
    ck_assert_uint_eq(count_of(out, "# TYPE plain counter\n"), 1);
    free(out);
}
END_TEST

START_TEST(test_slots_exhausted)
{
    size_t n = TG_METRICS_MAX_SLOTS - 3;
    const char **v = calloc(n + 4, sizeof(char *));
    char(*names)[16] = calloc(n + 4, 16);
    for (size_t i = 0; i < n + 4; i++) {
        snprintf(names[i], 16, "v%zu", i);
        v[i] = names[i];
    }
    ck_assert_int_eq(tg_metrics_counter(reg, "one", "h", NULL, NULL, 0), 0);
    ck_assert_int_eq(tg_metrics_counter(reg, "big", "h", "i", v, n), 1);
    /* 2 slots left */
    ck_assert_int_eq(tg_metrics_counter(reg, "three", "h", "i", v, 3), -1);
    ck_assert_int_eq(tg_metrics_counter(reg, "two", "h", "i", v, 2), 2);
    ck_assert_int_eq(tg_metrics_counter(reg, "none", "h", NULL, NULL, 0), -1);
    /* Counting in the last slot of the last family lands in its own slot. */
    tg_metrics_set_workers(workers, 2);
    tg_metrics_add_worker(reg, 1, 2, 1, 9);
    tg_metrics_add_worker(reg, 1, 1, n - 1, 4);
    char *out = render(2);
    ck_line(out, "two{i=\"v1\"} 9");
    ck_line(out, "two{i=\"v0\"} 0");
    char line[64];
    snprintf(line, sizeof(line), "big{i=\"v%zu\"} 4", n - 1);
    ck_line(out, line);
    free(out);
    /* A reset empties the registry. */
    tg_metrics_registry_reset();
    ck_assert_int_eq(tg_metrics_counter(reg, "three", "h", "i", v, 3), 0);
    free(v);
    free(names);
}
END_TEST

/* ---- per-worker counters and the exposition ----------------------------- */

static void fill_scenario(void)
{
    static const char *const reasons[] = {"expired", "bad \"sig\"\\\n"};
    ck_assert_int_eq(tg_metrics_counter(reg, "test_auth_failures_total",
                                        "Auth failures.\nSecond \\ line", "reason", reasons, 2),
                     0);
    ck_assert_int_eq(tg_metrics_counter(reg, "test_plain_total", NULL, NULL, NULL, 0), 1);
    tg_metrics_request_done(&workers[0], &routes[0], 200, 1500);
    tg_metrics_request_done(&workers[0], &routes[0], 404, 1000);
    tg_metrics_request_done(&workers[0], NULL, 404, 20000000);
    tg_metrics_request_done(&workers[1], &routes[0], 503, 300000);
    tg_metrics_request_done(&workers[1], NULL, 0, 10);
    /* Pools count into their worker's metrics (upstream_pool.h). */
    *tg_worker_metrics_upstream(workers[0].metrics, 0) = (tg_upool_stats_t){.created = 5,
                                                                            .reused = 7,
                                                                            .connect_errors = 1,
                                                                            .timeouts = 2,
                                                                            .resets = 3,
                                                                            .idle = 2,
                                                                            .active = 1};
    *tg_worker_metrics_upstream(workers[1].metrics, 0) =
        (tg_upool_stats_t){.created = 1, .resets = 1, .idle = 1};
    tg_metrics_websocket_opened(&workers[0]);
    tg_metrics_websocket_opened(&workers[1]);
    tg_metrics_websocket_opened(&workers[1]);
    tg_metrics_websocket_opened(NULL);
    tg_metrics_connection_parked(&workers[0]);
    tg_metrics_connection_parked(&workers[1]);
    tg_metrics_connection_parked(NULL);
    tg_metrics_set_workers(workers, 2);
    tg_metrics_add_worker(reg, 0, 0, 0, 2);
    tg_metrics_add_worker(reg, 1, 0, 0, 3);
    tg_metrics_add_worker(reg, 1, 0, 1, 1);
    tg_metrics_add_worker(reg, 0, 1, 0, 40);
}

#define BUCKETS(route, a, b, c, d, e, f, g, h, i, j, k, l, m, n)                          \
    "tollgate_request_duration_seconds_bucket{route=\"" route "\",le=\"0.001\"} " a "\n"  \
    "tollgate_request_duration_seconds_bucket{route=\"" route "\",le=\"0.0025\"} " b "\n" \
    "tollgate_request_duration_seconds_bucket{route=\"" route "\",le=\"0.005\"} " c "\n"  \
    "tollgate_request_duration_seconds_bucket{route=\"" route "\",le=\"0.01\"} " d "\n"   \
    "tollgate_request_duration_seconds_bucket{route=\"" route "\",le=\"0.025\"} " e "\n"  \
    "tollgate_request_duration_seconds_bucket{route=\"" route "\",le=\"0.05\"} " f "\n"   \
    "tollgate_request_duration_seconds_bucket{route=\"" route "\",le=\"0.1\"} " g "\n"    \
    "tollgate_request_duration_seconds_bucket{route=\"" route "\",le=\"0.25\"} " h "\n"   \
    "tollgate_request_duration_seconds_bucket{route=\"" route "\",le=\"0.5\"} " i "\n"    \
    "tollgate_request_duration_seconds_bucket{route=\"" route "\",le=\"1\"} " j "\n"      \
    "tollgate_request_duration_seconds_bucket{route=\"" route "\",le=\"2.5\"} " k "\n"    \
    "tollgate_request_duration_seconds_bucket{route=\"" route "\",le=\"5\"} " l "\n"      \
    "tollgate_request_duration_seconds_bucket{route=\"" route "\",le=\"10\"} " m "\n"     \
    "tollgate_request_duration_seconds_bucket{route=\"" route "\",le=\"+Inf\"} " n "\n"

static const char golden[] =
    "# HELP tollgate_requests_total Requests handled, by route and response status class (0: no "
    "response).\n"
    "# TYPE tollgate_requests_total counter\n"
    "tollgate_requests_total{route=\"users\",status=\"0\"} 0\n"
    "tollgate_requests_total{route=\"users\",status=\"1xx\"} 0\n"
    "tollgate_requests_total{route=\"users\",status=\"2xx\"} 1\n"
    "tollgate_requests_total{route=\"users\",status=\"3xx\"} 0\n"
    "tollgate_requests_total{route=\"users\",status=\"4xx\"} 1\n"
    "tollgate_requests_total{route=\"users\",status=\"5xx\"} 1\n"
    "tollgate_requests_total{route=\"\",status=\"0\"} 1\n"
    "tollgate_requests_total{route=\"\",status=\"1xx\"} 0\n"
    "tollgate_requests_total{route=\"\",status=\"2xx\"} 0\n"
    "tollgate_requests_total{route=\"\",status=\"3xx\"} 0\n"
    "tollgate_requests_total{route=\"\",status=\"4xx\"} 1\n"
    "tollgate_requests_total{route=\"\",status=\"5xx\"} 0\n"
    "# HELP tollgate_request_duration_seconds Time from the request's first byte to the end of its "
    "response.\n"
    "# TYPE tollgate_request_duration_seconds histogram\n" BUCKETS(
        "users", "1", "2", "2", "2", "2", "2", "2", "2", "3", "3", "3", "3", "3",
        "3") "tollgate_request_duration_seconds_sum{route=\"users\"} 0.302500\n"
             "tollgate_request_duration_seconds_count{route=\"users\"} 3\n" BUCKETS(
                 "", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1",
                 "2") "tollgate_request_duration_seconds_sum{route=\"\"} 20.000010\n"
                      "tollgate_request_duration_seconds_count{route=\"\"} 2\n"
                      "# HELP tollgate_upstream_connections Upstream connections now open, idle in "
                      "the pool or "
                      "carrying a request.\n"
                      "# TYPE tollgate_upstream_connections gauge\n"
                      "tollgate_upstream_connections{upstream=\"users\",state=\"idle\"} 3\n"
                      "tollgate_upstream_connections{upstream=\"users\",state=\"active\"} 1\n"
                      "# HELP tollgate_upstream_connections_created_total Upstream connections "
                      "opened.\n"
                      "# TYPE tollgate_upstream_connections_created_total counter\n"
                      "tollgate_upstream_connections_created_total{upstream=\"users\"} 6\n"
                      "# HELP tollgate_upstream_connections_reused_total Requests sent on a pooled "
                      "keep-alive "
                      "upstream connection.\n"
                      "# TYPE tollgate_upstream_connections_reused_total counter\n"
                      "tollgate_upstream_connections_reused_total{upstream=\"users\"} 7\n"
                      "# HELP tollgate_upstream_errors_total Upstream failures, by kind.\n"
                      "# TYPE tollgate_upstream_errors_total counter\n"
                      "tollgate_upstream_errors_total{upstream=\"users\",kind=\"connect\"} 1\n"
                      "tollgate_upstream_errors_total{upstream=\"users\",kind=\"timeout\"} 2\n"
                      "tollgate_upstream_errors_total{upstream=\"users\",kind=\"reset\"} 4\n"
                      "# HELP tollgate_websocket_connections_total WebSocket connections upgraded "
                      "(101) and "
                      "tunnelled.\n"
                      "# TYPE tollgate_websocket_connections_total counter\n"
                      "tollgate_websocket_connections_total 3\n"
                      "# HELP tollgate_connections_parked_total Idle keep-alive client connections "
                      "(plain or TLS) that gave back their buffers.\n"
                      "# TYPE tollgate_connections_parked_total counter\n"
                      "tollgate_connections_parked_total 2\n"
                      "# HELP tollgate_workers Worker threads.\n"
                      "# TYPE tollgate_workers gauge\n"
                      "tollgate_workers 2\n"
                      "# HELP tollgate_info Build information.\n"
                      "# TYPE tollgate_info gauge\n"
                      "tollgate_info{version=\"" TG_VERSION "\"} 1\n"
                      "# HELP test_auth_failures_total Auth failures.\\nSecond \\\\ line\n"
                      "# TYPE test_auth_failures_total counter\n"
                      "test_auth_failures_total{reason=\"expired\"} 5\n"
                      "test_auth_failures_total{reason=\"bad \\\"sig\\\"\\\\\\n\"} 1\n"
                      "# HELP test_plain_total \n"
                      "# TYPE test_plain_total counter\n"
                      "test_plain_total 40\n";

START_TEST(test_render_golden)
{
    fill_scenario();
    char *out = render(2);
    /* The traffic, process and tracing families follow (traffic_metrics.c,
     * process_metrics.c, otlp_export.c; the integration tests parse them). */
    char *rest = strstr(out, "# HELP tollgate_requests_in_flight ");
    ck_assert_ptr_nonnull(rest);
    *rest = '\0';
    ck_assert_str_eq(out, golden);
    free(out);
}
END_TEST

START_TEST(test_render_openmetrics)
{
    fill_scenario();
    ck_assert_int_ge(tg_metrics_counter(reg, "no_suffix", "N.", NULL, NULL, 0), 0);
    struct evbuffer *b = evbuffer_new();
    tg_metrics_render_format(b, &cfg, workers, 2, true);
    size_t n = evbuffer_get_length(b);
    char *out = malloc(n + 1);
    evbuffer_remove(b, out, n);
    out[n] = '\0';
    evbuffer_free(b);
    /* counter families are named without _total, their samples with it */
    ck_line(out, "# TYPE tollgate_requests counter");
    ck_line(out, "# TYPE test_plain counter");
    ck_line(out, "test_plain_total 40");
    ck_line(out, "# TYPE no_suffix counter");
    ck_line(out, "no_suffix_total 0");
    ck_line(out, "# TYPE tollgate_workers gauge");
    ck_assert_uint_eq(count_of(out, "# EOF\n"), 1);
    ck_assert_str_eq(out + n - 6, "# EOF\n");
    free(out);
    /* the text format is unchanged */
    out = render(2);
    ck_line(out, "# TYPE tollgate_requests_total counter");
    ck_assert_ptr_null(strstr(out, "# EOF"));
    free(out);
}
END_TEST

START_TEST(test_render_empty_families_once)
{
    /* No upstream, no route, no worker: every family still has HELP/TYPE once. */
    cfg.nupstreams = 0;
    cfg.nroutes = 0;
    ck_assert_int_eq(tg_metrics_counter(reg, "p_total", "P.", NULL, NULL, 0), 0);
    char *out = render(0);
    static const char *const fams[] = {"tollgate_requests_total",
                                       "tollgate_request_duration_seconds",
                                       "tollgate_upstream_connections",
                                       "tollgate_upstream_connections_created_total",
                                       "tollgate_upstream_connections_reused_total",
                                       "tollgate_upstream_errors_total",
                                       "tollgate_workers",
                                       "tollgate_info",
                                       "p_total"};
    for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
        char help[128], type[128];
        snprintf(help, sizeof(help), "# HELP %s ", fams[i]);
        snprintf(type, sizeof(type), "# TYPE %s ", fams[i]);
        ck_assert_uint_eq(count_of(out, help), 1);
        ck_assert_uint_eq(count_of(out, type), 1);
    }
    ck_line(out, "tollgate_requests_total{route=\"\",status=\"2xx\"} 0");
    ck_line(out, "tollgate_request_duration_seconds_count{route=\"\"} 0");
    ck_line(out, "tollgate_request_duration_seconds_sum{route=\"\"} 0.000000");
    ck_line(out, "tollgate_workers 0");
    ck_line(out, "p_total 0");
    ck_assert_ptr_null(strstr(out, "upstream=\""));
    free(out);
}
END_TEST

START_TEST(test_bucket_bounds)
{
    /* Buckets are "less than or equal": 1 ms exactly is in le="0.001". */
    static const struct {
        uint64_t us;
        const char *first_le; /* smallest bucket that counts it */
    } cases[] = {
        {0, "0.001"},
        {1000, "0.001"},
        {1001, "0.0025"},
        {2500, "0.0025"},
        {5000, "0.005"},
        {5001, "0.01"},
        {100000, "0.1"},
        {999999, "1"},
        {1000000, "1"},
        {2500001, "5"},
        {10000000, "10"},
        {10000001, "+Inf"},
        {UINT64_MAX / 2, "+Inf"},
    };
    static const char *const les[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                                      "0.25",  "0.5",    "1",     "2.5",  "5",     "10",   "+Inf"};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        tg_worker_metrics_free(workers[0].metrics);
        workers[0].metrics = tg_worker_metrics_new(&cfg);
        tg_metrics_request_done(&workers[0], &routes[0], 200, cases[c].us);
        char *out = render(1);
        bool in = false;
        for (size_t b = 0; b < sizeof(les) / sizeof(les[0]); b++) {
            in = in || strcmp(les[b], cases[c].first_le) == 0;
            char line[160];
            snprintf(line, sizeof(line),
                     "tollgate_request_duration_seconds_bucket{route=\"users\",le=\"%s\"} %d",
                     les[b], in ? 1 : 0);
            ck_line(out, line);
        }
        free(out);
    }
}
END_TEST

START_TEST(test_status_classes)
{
    /* RFC 9110 section 15: 600..999 is invalid and treated as 5xx. */
    static const int statuses[] = {0,   100, 101, 199, 200, 204, 299, 301, 304,
                                   400, 404, 499, 500, 599, 600, 999, 42,  -1};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        tg_metrics_request_done(&workers[i % 2], &routes[0], statuses[i], 5);
    char *out = render(2);
    ck_line(out, "tollgate_requests_total{route=\"users\",status=\"0\"} 2");
    ck_line(out, "tollgate_requests_total{route=\"users\",status=\"1xx\"} 3");
    ck_line(out, "tollgate_requests_total{route=\"users\",status=\"2xx\"} 3");
    ck_line(out, "tollgate_requests_total{route=\"users\",status=\"3xx\"} 2");
    ck_line(out, "tollgate_requests_total{route=\"users\",status=\"4xx\"} 3");
    ck_line(out, "tollgate_requests_total{route=\"users\",status=\"5xx\"} 5");
    ck_line(out, "tollgate_request_duration_seconds_count{route=\"users\"} 18");
    ck_line(out, "tollgate_request_duration_seconds_sum{route=\"users\"} 0.000090");
    free(out);
}
END_TEST

START_TEST(test_route_out_of_range_is_unrouted)
{
    /* A route of another config (more routes than this worker was sized for)
     * counts under route="" instead of writing out of bounds. */
    tg_route_t other = {.name = "other", .index = 5};
    tg_metrics_request_done(&workers[0], &other, 200, 5);
    tg_metrics_request_done(NULL, &routes[0], 200, 5);
    tg_worker_t bare = {.id = 9};
    tg_metrics_request_done(&bare, &routes[0], 200, 5);
    char *out = render(2);
    ck_line(out, "tollgate_requests_total{route=\"\",status=\"2xx\"} 1");
    ck_line(out, "tollgate_requests_total{route=\"users\",status=\"2xx\"} 0");
    free(out);
}
END_TEST

START_TEST(test_label_values_escaped)
{
    routes[0].name = "a\"b\\c\nd";
    ups[0].name = "u\\\"\n";
    char *out = render(2);
    ck_line(out, "tollgate_requests_total{route=\"a\\\"b\\\\c\\nd\",status=\"2xx\"} 0");
    ck_line(out, "tollgate_request_duration_seconds_sum{route=\"a\\\"b\\\\c\\nd\"} 0.000000");
    ck_line(out, "tollgate_upstream_connections{upstream=\"u\\\\\\\"\\n\",state=\"idle\"} 0");
    ck_line(out, "tollgate_upstream_errors_total{upstream=\"u\\\\\\\"\\n\",kind=\"reset\"} 0");
    free(out);
}
END_TEST

START_TEST(test_add_through_request)
{
    static const char *const v[] = {"x", "y"};
    ck_assert_int_eq(tg_metrics_counter(reg, "req_total", "h", "k", v, 2), 0);
    tg_conn_t conn;
    memset(&conn, 0, sizeof(conn));
    conn.worker = &workers[1];
    tg_request_t req;
    memset(&req, 0, sizeof(req));
    req.conn = &conn;
    tg_metrics_add(&req, 0, 1, 7);
    tg_metrics_add(&req, 0, 1, 3);
    tg_metrics_add(&req, 0, 0, 1);
    /* out of range: ignored */
    tg_metrics_add(&req, 0, 2, 100);
    tg_metrics_add(&req, 1, 0, 100);
    tg_metrics_add(&req, -1, 0, 100);
    tg_metrics_add(NULL, 0, 0, 100);
    conn.worker = &workers[0];
    tg_metrics_add(&req, 0, 1, 1000);
    char *out = render(2);
    ck_line(out, "req_total{k=\"x\"} 1");
    ck_line(out, "req_total{k=\"y\"} 1010");
    free(out);
    /* Only the scraped workers count. */
    out = render(1);
    ck_line(out, "req_total{k=\"y\"} 1000");
    free(out);
}
END_TEST

START_TEST(test_add_worker_needs_workers)
{
    ck_assert_int_eq(tg_metrics_counter(reg, "w_total", "h", NULL, NULL, 0), 0);
    tg_metrics_add_worker(reg, 0, 0, 0, 5); /* no workers set yet: ignored */
    tg_metrics_set_workers(workers, 2);
    tg_metrics_add_worker(reg, 0, 0, 0, 1);
    tg_metrics_add_worker(reg, 1, 0, 0, 2);
    tg_metrics_add_worker(reg, 2, 0, 0, 100); /* no such worker */
    tg_metrics_add_worker(reg, 1, 0, 1, 100); /* no such value */
    tg_metrics_add_worker(reg, 1, 3, 0, 100); /* no such id */
    tg_metrics_set_workers(NULL, 0);
    tg_metrics_add_worker(reg, 0, 0, 0, 100);
    char *out = render(2);
    ck_line(out, "w_total 3");
    free(out);
}
END_TEST

static volatile bool stop_writer;

static void *writer(void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < 200000; i++) {
        tg_metrics_request_done(&workers[0], &routes[0], 200, 100);
        tg_metrics_add_worker(reg, 0, 0, 0, 1);
    }
    return NULL;
}

START_TEST(test_scrape_while_counting)
{
    /* One writer (the worker), one reader (the admin thread): values only grow
     * and end exact. */
    ck_assert_int_eq(tg_metrics_counter(reg, "c_total", "h", NULL, NULL, 0), 0);
    tg_metrics_set_workers(workers, 2);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, writer, NULL), 0);
    unsigned long long last = 0;
    for (int i = 0; i < 50; i++) {
        char *out = render(2);
        const char *p = strstr(out, "\nc_total ");
        ck_assert_ptr_nonnull(p);
        unsigned long long v = strtoull(p + 9, NULL, 10);
        ck_assert_uint_ge(v, last);
        last = v;
        free(out);
    }
    pthread_join(t, NULL);
    char *out = render(2);
    ck_line(out, "c_total 200000");
    ck_line(out, "tollgate_requests_total{route=\"users\",status=\"2xx\"} 200000");
    ck_line(out, "tollgate_request_duration_seconds_sum{route=\"users\"} 20.000000");
    free(out);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *t = tcase_create("registry");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_names_validated);
    tcase_add_test(t, test_registration_idempotent);
    tcase_add_test(t, test_slots_exhausted);
    suite_add_tcase(s, t);
    t = tcase_create("render");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_render_golden);
    tcase_add_test(t, test_render_empty_families_once);
    tcase_add_test(t, test_render_openmetrics);
    tcase_add_test(t, test_bucket_bounds);
    tcase_add_test(t, test_status_classes);
    tcase_add_test(t, test_route_out_of_range_is_unrouted);
    tcase_add_test(t, test_label_values_escaped);
    tcase_add_test(t, test_add_through_request);
    tcase_add_test(t, test_add_worker_needs_workers);
    tcase_add_test(t, test_scrape_while_counting);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
