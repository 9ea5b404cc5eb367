/* Unit tests for plugins/request-log: JSON escaping, RFC 3339 time, number
 * formats, line layout and field selection, config errors, the writer
 * thread (order, drops when it falls behind, reopen) and the worker flush. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_node.h"

#include "plugins/request-log/log_writer.c"
#include "plugins/request-log/request_log.c"

static char dir[64];
static tg_conf_doc_t *doc;
static tg_conf_err_t err;

static void setup(void)
{
    strcpy(dir, "/tmp/tg_test_reqlog_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    tg_conf_doc_free(doc);
    doc = NULL;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* The whole content of a file, NUL-terminated (caller frees). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char *s = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 4096) {
            cap = cap ? cap * 2 : 8192;
            s = realloc(s, cap);
            ck_assert_ptr_nonnull(s);
        }
        size_t k = fread(s + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0)
            break;
    }
    fclose(f);
    s[n] = '\0';
    return s;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- JSON escaping ------------------------------------------------------- */

static void ck_escape(const char *in, size_t n, const char *want)
{
    char out[512];
    ck_assert_uint_lt(6 * n, sizeof(out));
    size_t len = json_escape(out, in, n);
    ck_assert_uint_le(len, 6 * n); /* the room put_string reserves */
    ck_assert_uint_eq(escaped_len(in, n), len);
    out[len] = '\0';
    ck_assert_str_eq(out, want);
    ck_assert_uint_eq(len, strlen(want));
}

#define ESC(lit, want) ck_escape(lit, sizeof(lit) - 1, want)

START_TEST(escape_ascii_and_specials)
{
    ESC("", "");
    ESC("/api/v1/users?x=1", "/api/v1/users?x=1");
    ESC("a\"b\\c", "a\\\"b\\\\c");
    ESC("\x00\x01\x1f", "\\u0000\\u0001\\u001f");
    ESC("\t\r\n", "\\u0009\\u000d\\u000a");
    ESC("\x7f~ ", "\\u007f~ ");
    ESC("</script>", "</script>");
}
END_TEST

START_TEST(escape_utf8_kept)
{
    ESC("caf\xc3\xa9", "caf\xc3\xa9");           /* U+00E9 */
    ESC("\xe2\x82\xac", "\xe2\x82\xac");         /* U+20AC */
    ESC("\xed\x9f\xbf", "\xed\x9f\xbf");         /* U+D7FF, last before surrogates */
    ESC("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"); /* U+1F600 */
    ESC("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
    ESC("\xc2\x80\xdf\xbf", "\xc2\x80\xdf\xbf");
}
END_TEST

START_TEST(escape_invalid_utf8)
{
    ESC("\x80", "\\ufffd"); /* lone continuation */
    ESC("\xff\xfe", "\\ufffd\\ufffd");
    ESC("\xc0\xaf", "\\ufffd\\ufffd"); /* overlong "/" */
    ESC("\xc1\xbf", "\\ufffd\\ufffd");
    ESC("\xe0\x80\xaf", "\\ufffd\\ufffd\\ufffd");            /* overlong 3 bytes */
    ESC("\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd");            /* surrogate U+D800 */
    ESC("\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"); /* > U+10FFFF */
    ESC("\xf5\x80", "\\ufffd\\ufffd");
    ESC("a\xe2\x82", "a\\ufffd\\ufffd");     /* truncated at the end */
    ESC("\xe2\x82\"", "\\ufffd\\ufffd\\\""); /* truncated before a quote */
    ESC("\xc3\xc3\xa9", "\\ufffd\xc3\xa9");
}
END_TEST

/* ---- time and numbers ---------------------------------------------------- */

START_TEST(rfc3339_time)
{
    char out[32];
    ck_assert_uint_eq(format_time(out, 0), 24);
    ck_assert_str_eq(out, "1970-01-01T00:00:00.000Z");
    format_time(out, 1795441075123456ull);
    ck_assert_str_eq(out, "2026-11-23T13:37:55.123Z");
    format_time(out, 1709251199999999ull); /* truncated, not rounded into March */
    ck_assert_str_eq(out, "2024-02-29T23:59:59.999Z");
}
END_TEST

START_TEST(milliseconds_three_decimals)
{
    char out[32];
    static const struct {
        uint64_t us;
        const char *want;
    } cases[] = {{0, "0.000"},
                 {1, "0.001"},
                 {999, "0.999"},
                 {1000, "1.000"},
                 {1234567, "1234.567"},
                 {60000010, "60000.010"},
                 {UINT64_MAX, "18446744073709551.615"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = format_ms(out, cases[i].us);
        ck_assert_str_eq(out, cases[i].want);
        ck_assert_uint_eq(n, strlen(cases[i].want));
    }
}
END_TEST

/* ---- lines --------------------------------------------------------------- */

static record_t sample_record(void)
{
    record_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.st.start_us = 1795441075123456ull;
    rec.st.duration_us = 12345;
    rec.st.upstream_us = 10001;
    rec.st.bytes_in = 78;
    rec.st.bytes_out = 1234;
    rec.status = 200;
    rec.v[F_REQUEST_ID] = cstr_value("0123abcd");
    rec.v[F_CLIENT_IP] = cstr_value("127.0.0.1");
    rec.v[F_METHOD] = str_value("GETX", 3); /* lengths, not NULs, delimit */
    rec.v[F_PATH] = cstr_value("/a\"b");
    rec.v[F_UPSTREAM_ADDR] = cstr_value("127.0.0.1:9001");
    rec.v[F_RETRIES] = (value_t){.is_int = true, .i = 1};
    rec.v[F_ROUTE] = cstr_value("users");
    rec.v[F_SUBJECT] = cstr_value("alice");
    rec.v[F_TRACE_ID] = cstr_value("0af7651916cd43dd8448eb211c80319c");
    rec.v[F_SPAN_ID] = cstr_value("b7ad6b7169203331");
    return rec;
}

static char *line_of(const reqlog_t *rl, const record_t *rec)
{
    tg_reqlog_buf_t *b = tg_reqlog_buf_new(8); /* small: growth is exercised */
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(format_line(b, rl, rec), 0);
    ck_assert_uint_eq(b->lines, 1);
    char *s = strndup(b->data, b->len);
    tg_reqlog_buf_free(b);
    return s;
}

START_TEST(line_default_fields)
{
    reqlog_t rl = {0};
    default_fields(&rl);
    record_t rec = sample_record();
    char *s = line_of(&rl, &rec);
    ck_assert_str_eq(s, "{\"time\":\"2026-11-23T13:37:55.123Z\",\"request_id\":\"0123abcd\","
                        "\"client_ip\":\"127.0.0.1\",\"method\":\"GET\",\"path\":\"/a\\\"b\","
                        "\"status\":200,\"bytes_in\":78,\"bytes_out\":1234,"
                        "\"duration_ms\":12.345,\"upstream_ms\":10.001,"
                        "\"upstream_addr\":\"127.0.0.1:9001\",\"retries\":1,"
                        "\"route\":\"users\",\"subject\":\"alice\","
                        "\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\","
                        "\"span_id\":\"b7ad6b7169203331\"}\n");
    free(s);
}
END_TEST

START_TEST(line_nulls_without_upstream_or_response)
{
    reqlog_t rl = {0};
    default_fields(&rl);
    record_t rec = sample_record();
    rec.status = 0;
    rec.st.upstream_us = -1;
    rec.v[F_UPSTREAM_ADDR] = (value_t){0};
    rec.v[F_RETRIES] = (value_t){0};
    rec.v[F_ROUTE] = (value_t){0};
    rec.v[F_SUBJECT] = (value_t){0};
    rec.v[F_TRACE_ID] = (value_t){0};
    rec.v[F_SPAN_ID] = (value_t){0};
    char *s = line_of(&rl, &rec);
    ck_assert_ptr_nonnull(strstr(s, "\"status\":0,"));
    ck_assert_ptr_nonnull(
        strstr(s, "\"upstream_ms\":null,\"upstream_addr\":null,\"retries\":null,\"route\":null,"
                  "\"subject\":null,\"trace_id\":null,\"span_id\":null}\n"));
    free(s);
}
END_TEST

START_TEST(line_optional_fields_and_int_var)
{
    reqlog_t rl = {0};
    rl.fields[rl.nfields++] = F_RATE_LIMIT;
    rl.fields[rl.nfields++] = F_QUERY;
    rl.fields[rl.nfields++] = F_USER_AGENT;
    rl.fields[rl.nfields++] = F_PROFILE;
    record_t rec = sample_record();
    rec.v[F_RATE_LIMIT] = (value_t){.is_int = true, .i = -42};
    rec.v[F_QUERY] = str_value("", 0); /* "?" with nothing after it: empty, not null */
    rec.v[F_USER_AGENT] = cstr_value("x\x01\xff");
    char *s = line_of(&rl, &rec);
    ck_assert_str_eq(s, "{\"rate_limit\":-42,\"query\":\"\",\"user_agent\":\"x\\u0001\\ufffd\","
                        "\"profile\":null}\n");
    free(s);
}
END_TEST

/* ---- config -------------------------------------------------------------- */

static int create_from(const char *yaml, reqlog_t **out)
{
    tg_conf_doc_free(doc);
    doc = NULL;
    ck_assert_int_eq(tg_conf_doc_parse("t.yaml", yaml, strlen(yaml), &doc, &err), 0);
    const tg_conf_node_t *node = tg_conf_map_get(tg_conf_doc_root(doc), "config");
    ck_assert_ptr_nonnull(node);
    tg_plugin_env_t env = {.config_dir = dir};
    memset(&err, 0, sizeof(err));
    void *inst = NULL;
    int rc = tg_plugin.create(node, &env, &inst, &err);
    *out = inst;
    return rc;
}

START_TEST(config_fields_subset_in_order)
{
    reqlog_t *rl;
    ck_assert_int_eq(create_from("config:\n  path: a.log\n  fields: [status, method, time]\n", &rl),
                     0);
    ck_assert_uint_eq(rl->nfields, 3);
    record_t rec = sample_record();
    char *s = line_of(rl, &rec);
    ck_assert_str_eq(s,
                     "{\"status\":200,\"method\":\"GET\",\"time\":\"2026-11-23T13:37:55.123Z\"}\n");
    free(s);
    tg_plugin.destroy(rl);
    /* relative to the config's directory, created 0644 */
    char path[128];
    snprintf(path, sizeof(path), "%s/a.log", dir);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
}
END_TEST

START_TEST(config_default_fields)
{
    reqlog_t *rl;
    ck_assert_int_eq(create_from("config:\n  path: a.log\n", &rl), 0);
    ck_assert_uint_eq(rl->nfields, 16);
    ck_assert_str_eq(field_keys[rl->fields[0]].key, ",\"time\":");
    ck_assert_str_eq(field_keys[rl->fields[13]].key, ",\"subject\":");
    ck_assert_str_eq(field_keys[rl->fields[15]].key, ",\"span_id\":");
    tg_plugin.destroy(rl);
}
END_TEST

START_TEST(config_errors)
{
    reqlog_t *rl;
    ck_assert_int_eq(create_from("config:\n  path: a.log\n  fields: [time, nope]\n", &rl), -1);
    ck_assert_str_eq(err.msg, "t.yaml:3:18: unknown request-log field 'nope'");
    ck_assert_int_eq(
        create_from("config:\n  path: a.log\n  fields:\n    - time\n    - time\n", &rl), -1);
    ck_assert_str_eq(err.msg, "t.yaml:5:7: field 'time' listed twice");
    ck_assert_int_eq(create_from("config:\n  path: a.log\n  fields: []\n", &rl), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "t.yaml:3:11: fields:"));
    ck_assert_int_eq(create_from("config:\n  path: a.log\n  format: json\n", &rl), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "t.yaml:3:3: "));
    ck_assert_ptr_nonnull(strstr(err.msg, "'format'"));
    ck_assert_int_eq(create_from("config:\n  fields: [time]\n", &rl), -1);
    ck_assert_ptr_nonnull(
        strstr(err.msg, "t.yaml:2:3: missing required key 'path' (a file or \"stdout\")"));
    ck_assert_int_eq(create_from("config:\n  path: no/such/dir/a.log\n", &rl), -1);
    char want[256];
    snprintf(want, sizeof(want), "t.yaml:2:9: cannot open log file %s/no/such/dir/a.log: %s", dir,
             strerror(ENOENT));
    ck_assert_str_eq(err.msg, want);
}
END_TEST

/* ---- writer -------------------------------------------------------------- */

static tg_reqlog_buf_t *buf_with(tg_reqlog_buf_t *b, const char *text)
{
    if (b == NULL)
        b = tg_reqlog_buf_new(16);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(put(b, text, strlen(text)), 0);
    b->lines += count_lines(text);
    return b;
}

typedef struct {
    tg_reqlog_writer_t *w;
    char tag;
} pusher_t;

static void *push_many(void *arg)
{
    pusher_t *p = arg;
    tg_reqlog_buf_t *b = NULL;
    uint64_t dropped = 0;
    for (int i = 0; i < 2000; i++) {
        char line[32];
        snprintf(line, sizeof(line), "%c%d\n", p->tag, i);
        b = buf_with(b, line);
        if (i % 7 == 6)
            b = tg_reqlog_writer_push(p->w, b, &dropped);
    }
    b = tg_reqlog_writer_push(p->w, b, &dropped);
    tg_reqlog_buf_free(b);
    ck_assert_uint_eq(dropped, 0);
    return NULL;
}

START_TEST(writer_keeps_every_line_in_order)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/w.log", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    tg_reqlog_writer_t *w = tg_reqlog_writer_start(fd, path, MAX_QUEUED);
    ck_assert_ptr_nonnull(w);
    pusher_t a = {w, 'a'}, b = {w, 'b'};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, push_many, &a);
    pthread_create(&tb, NULL, push_many, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    tg_reqlog_writer_destroy(w);
    char *s = slurp(path);
    ck_assert_uint_eq(count_lines(s), 4000);
    int next[2] = {0, 0};
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        int k = line[0] == 'a' ? 0 : 1;
        ck_assert_int_eq(atoi(line + 1), next[k]);
        next[k]++;
    }
    ck_assert_int_eq(next[0], 2000);
    ck_assert_int_eq(next[1], 2000);
    free(s);
}
END_TEST

static void *drain_pipe(void *arg)
{
    int fd = *(int *)arg;
    char buf[4096];
    size_t total = 0;
    ssize_t k;
    while ((k = read(fd, buf, sizeof(buf))) > 0)
        total += (size_t)k;
    return (void *)(uintptr_t)total;
}

START_TEST(writer_drops_beyond_the_bound)
{
    /* A pipe nobody reads yet: the writer blocks in write(), as on a stuck
     * disk, and the queue fills up. */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 0, 1);
    tg_reqlog_writer_t *w = tg_reqlog_writer_start(p[1], NULL, 64 * 1024);
    char line[1001];
    memset(line, 'x', 999);
    line[999] = '\n';
    line[1000] = '\0';
    uint64_t dropped = 0, pushed = 0;
    tg_reqlog_buf_t *b = NULL;
    for (int i = 0; i < 200; i++) {
        b = buf_with(b, line);
        pushed++;
        b = tg_reqlog_writer_push(w, b, &dropped);
    }
    /* at most 64 KiB queued + what sits in the pipe and in write() */
    ck_assert_uint_ge(dropped, 200 - 64 - 16);
    pthread_t t;
    pthread_create(&t, NULL, drain_pipe, &p[0]);
    tg_reqlog_writer_destroy(w);
    close(p[1]);
    void *total;
    pthread_join(t, &total);
    close(p[0]);
    ck_assert_uint_eq((uintptr_t)total, (pushed - dropped) * 1000);
    tg_reqlog_buf_free(b);
}
END_TEST

static void wait_size(const char *path, off_t size)
{
    struct stat st;
    for (int i = 0; i < 500; i++) {
        if (stat(path, &st) == 0 && st.st_size == size)
            return;
        usleep(10000);
    }
    ck_abort_msg("%s never reached %lld bytes", path, (long long)size);
}

START_TEST(writer_reopen)
{
    char path[128], old[128];
    snprintf(path, sizeof(path), "%s/r.log", dir);
    snprintf(old, sizeof(old), "%s/r.log.1", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    tg_reqlog_writer_t *w = tg_reqlog_writer_start(fd, path, MAX_QUEUED);
    uint64_t dropped = 0;
    tg_reqlog_buf_t *b = tg_reqlog_writer_push(w, buf_with(NULL, "one\n"), &dropped);
    wait_size(path, 4);
    ck_assert_int_eq(rename(path, old), 0);
    tg_reqlog_writer_reopen(w);
    b = tg_reqlog_writer_push(w, buf_with(b, "two\n"), &dropped);
    tg_reqlog_writer_destroy(w);
    tg_reqlog_buf_free(b);
    char *s = slurp(old);
    ck_assert_str_eq(s, "one\n");
    free(s);
    s = slurp(path);
    ck_assert_str_eq(s, "two\n");
    free(s);
    ck_assert_uint_eq(dropped, 0);
}
END_TEST

/* ---- per worker: timer flush and fini ------------------------------------ */

START_TEST(worker_flushes_on_timer_and_at_fini)
{
    reqlog_t *rl;
    ck_assert_int_eq(create_from("config:\n  path: k.log\n  fields: [status]\n", &rl), 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/k.log", dir);
    struct event_base *base = event_base_new();
    reqlog_worker_t *w = tg_plugin.worker_init(rl, base, 0);
    ck_assert_ptr_nonnull(w);
    record_t rec = sample_record();
    ck_assert(!w->armed); /* idle: no wake-ups */
    ck_assert_int_eq(format_line(w->buf, rl, &rec), 0);
    line_added(w);
    ck_assert(w->armed);
    struct timeval tv = {0, 300 * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base); /* the 200 ms tick hands the line over */
    wait_size(path, 15);
    ck_assert(!w->armed);
    rec.status = 404;
    ck_assert_int_eq(format_line(w->buf, rl, &rec), 0);
    line_added(w);
    tg_plugin.worker_fini(rl, w);
    tg_plugin.destroy(rl);
    event_base_free(base);
    char *s = slurp(path);
    ck_assert_str_eq(s, "{\"status\":200}\n{\"status\":404}\n");
    free(s);
}
END_TEST

START_TEST(worker_hands_over_full_buffers)
{
    reqlog_t *rl;
    ck_assert_int_eq(create_from("config:\n  path: f.log\n  fields: [path]\n", &rl), 0);
    struct event_base *base = event_base_new();
    reqlog_worker_t *w = tg_plugin.worker_init(rl, base, 0);
    record_t rec = sample_record();
    char big[1000];
    memset(big, 'p', sizeof(big));
    rec.v[F_PATH] = str_value(big, sizeof(big));
    size_t handed = 0;
    for (int i = 0; i < 300; i++) {
        ck_assert_int_eq(format_line(w->buf, rl, &rec), 0);
        tg_reqlog_buf_t *before = w->buf;
        line_added(w);
        handed += w->buf != before;
        ck_assert_uint_le(w->buf->cap, TG_REQLOG_BUF_SIZE); /* never grown */
    }
    ck_assert_uint_ge(handed, 4);
    tg_plugin.worker_fini(rl, w);
    tg_plugin.destroy(rl);
    event_base_free(base);
    char path[128];
    snprintf(path, sizeof(path), "%s/f.log", dir);
    char *s = slurp(path);
    ck_assert_uint_eq(count_lines(s), 300);
    ck_assert_uint_eq(strlen(s), 300 * (sizeof("{\"path\":\"\"}\n") - 1 + sizeof(big)));
    free(s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("request_log");
    TCase *t = tcase_create("format");
    tcase_add_test(t, escape_ascii_and_specials);
    tcase_add_test(t, escape_utf8_kept);
    tcase_add_test(t, escape_invalid_utf8);
    tcase_add_test(t, rfc3339_time);
    tcase_add_test(t, milliseconds_three_decimals);
    tcase_add_test(t, line_default_fields);
    tcase_add_test(t, line_nulls_without_upstream_or_response);
    tcase_add_test(t, line_optional_fields_and_int_var);
    suite_add_tcase(s, t);
    t = tcase_create("config");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, config_fields_subset_in_order);
    tcase_add_test(t, config_default_fields);
    tcase_add_test(t, config_errors);
    suite_add_tcase(s, t);
    t = tcase_create("writer");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 30);
    tcase_add_test(t, writer_keeps_every_line_in_order);
    tcase_add_test(t, writer_drops_beyond_the_bound);
    tcase_add_test(t, writer_reopen);
    tcase_add_test(t, worker_flushes_on_timer_and_at_fini);
    tcase_add_test(t, worker_hands_over_full_buffers);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
