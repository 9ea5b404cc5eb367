/* Unit tests for src/log.c (include/tollgate/log.h): the line format, levels,
 * escaping, the length cap, and the request tail of tg_request_log(). stderr
 * is redirected to a temporary file in each test (Check forks per test). */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "request.h"
#include "worker.h"

static FILE *err_file;

static void capture_stderr(void)
{
    err_file = tmpfile();
    ck_assert_ptr_nonnull(err_file);
    ck_assert_int_ge(dup2(fileno(err_file), STDERR_FILENO), 0);
}

/* Everything written to stderr since capture_stderr(), NUL-terminated. */
static char *captured(size_t *len)
{
    static char buf[4 * TG_LOG_LINE_MAX];
    fflush(stderr);
    ssize_t n = pread(fileno(err_file), buf, sizeof(buf) - 1, 0);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

static size_t count_of(const char *text, const char *needle)
{
    size_t k = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        k++;
    return k;
}

static void assert_matches(const char *s, const char *pattern)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, s, 0, NULL, 0);
    regfree(&re);
    ck_assert_msg(rc == 0, "'%s' does not match %s", s, pattern);
}

START_TEST(line_format)
{
    capture_stderr();
    tg_log(TG_LOG_WARN, "plugin x: %s %d", "hello", 42);
    tg_log(TG_LOG_ERROR, "second");
    assert_matches(captured(NULL),
                   "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                   "\\[warn\\] plugin x: hello 42\n"
                   "[0-9-]{10}T[0-9:.]{12}Z \\[error\\] second\n$");
}
END_TEST

START_TEST(levels)
{
    capture_stderr();
    tg_log_level = TG_LOG_NOTICE; /* the default */
    ck_assert(tg_log_enabled(TG_LOG_ERROR));
    ck_assert(tg_log_enabled(TG_LOG_NOTICE));
    ck_assert(!tg_log_enabled(TG_LOG_INFO));
    ck_assert(!tg_log_enabled((tg_log_level_t)-1));
    ck_assert(!tg_log_enabled((tg_log_level_t)99));
    tg_log(TG_LOG_INFO, "dropped");
    tg_log(TG_LOG_DEBUG, "dropped");
    tg_log((tg_log_level_t)99, "dropped");
    tg_log((tg_log_level_t)-1, "dropped");
    tg_log(TG_LOG_NOTICE, "kept");
    char *out = captured(NULL);
    ck_assert_ptr_null(strstr(out, "dropped"));
    ck_assert_ptr_nonnull(strstr(out, "[notice] kept\n"));
    tg_log_level = TG_LOG_DEBUG;
    ck_assert(tg_log_enabled(TG_LOG_DEBUG));
    tg_log(TG_LOG_DEBUG, "now kept");
    ck_assert_ptr_nonnull(strstr(captured(NULL), "[debug] now kept\n"));
}
END_TEST

/* A message quoting request bytes stays one line: controls become \xNN. */
START_TEST(escapes_controls)
{
    capture_stderr();
    tg_log(TG_LOG_WARN,
           "a\r\nb%cc\td\x7f\x1b"
           "e\xc3\xa9",
           0);
    size_t len;
    char *out = captured(&len);
    ck_assert_uint_eq(strlen(out), len); /* the NUL was escaped too */
    ck_assert_ptr_nonnull(strstr(out, "[warn] a\\x0d\\x0ab\\x00c\td\\x7f\\x1be\xc3\xa9\n"));
    ck_assert_ptr_eq(strchr(out, '\n'), out + len - 1);
}
END_TEST

START_TEST(long_message_is_cut)
{
    capture_stderr();
    static char big[3 * TG_LOG_LINE_MAX];
    memset(big, 'x', sizeof(big) - 1);
    tg_log(TG_LOG_ERROR, "%s", big);
    size_t len;
    char *out = captured(&len);
    ck_assert_uint_eq(len, TG_LOG_LINE_MAX);
    ck_assert_int_eq(out[len - 1], '\n');
    ck_assert_int_eq(out[len - 2], 'x');
    /* An escape that does not fit whole is left out, never cut in half. */
    capture_stderr();
    memset(big, '\n', sizeof(big) - 1);
    tg_log(TG_LOG_ERROR, "%s", big);
    out = captured(&len);
    ck_assert_uint_le(len, TG_LOG_LINE_MAX);
    ck_assert(len >= 5 && memcmp(out + len - 5, "\\x0a\n", 5) == 0);
}
END_TEST

/* ---- tg_request_log: a hand-made request on worker 3 ---- */

static tg_worker_t worker;
static tg_conn_t conn;
static tg_route_t route;
static tg_request_t req;

static void make_request(const char *route_name, const char *id)
{
    memset(&req, 0, sizeof(req));
    worker.id = 3;
    conn.worker = &worker;
    req.conn = &conn;
    route.name = (char *)route_name;
    req.route = route_name != NULL ? &route : NULL;
    req.request_id_len = strlen(id);
    memcpy(req.request_id, id, req.request_id_len);
}

START_TEST(request_tail)
{
    capture_stderr();
    make_request("api", "5f0c1d");
    tg_request_log(&req, TG_LOG_WARN, "jwt: %s", "unknown kid");
    assert_matches(captured(NULL), "^[0-9-]{10}T[0-9:.]{12}Z \\[warn\\] jwt: unknown kid "
                                   "\\(worker 3, route api, request 5f0c1d\\)\n$");
}
END_TEST

START_TEST(request_tail_without_route)
{
    capture_stderr();
    make_request(NULL, "abc");
    tg_request_log(&req, TG_LOG_NOTICE, "m");
    ck_assert_ptr_nonnull(strstr(captured(NULL), "[notice] m (worker 3, route -, request abc)\n"));
    tg_request_log(&req, TG_LOG_INFO, "below the level");
    ck_assert_ptr_null(strstr(captured(NULL), "below the level"));
}
END_TEST

/* The tail survives a message that fills the line, and is escaped too. */
START_TEST(request_tail_kept_when_cut)
{
    capture_stderr();
    make_request("r\nx", "id-9");
    static char big[2 * TG_LOG_LINE_MAX];
    memset(big, 'y', sizeof(big) - 1);
    tg_request_log(&req, TG_LOG_ERROR, "%s", big);
    size_t len;
    char *out = captured(&len);
    ck_assert_uint_eq(len, TG_LOG_LINE_MAX);
    const char *tail = "y (worker 3, route r\\x0ax, request id-9)\n";
    ck_assert_str_eq(out + len - strlen(tail), tail);
}
END_TEST

/* ---- repeats, JSON, destination ---- */

START_TEST(repeats_held_back_and_counted)
{
    capture_stderr();
    tg_log_repeat_window_ms = 200;
    for (int i = 0; i < 5; i++)
        tg_log(TG_LOG_ERROR, "backend down");
    tg_log(TG_LOG_ERROR, "another");
    tg_log(TG_LOG_NOTICE, "notice");
    tg_log(TG_LOG_NOTICE, "notice"); /* below warn: never held back */
    make_request("api", "r1");
    tg_request_log(&req, TG_LOG_WARN, "same text");
    make_request("api", "r2");
    tg_request_log(&req, TG_LOG_WARN, "same text"); /* another request, the same error */
    char *out = captured(NULL);
    ck_assert_uint_eq(count_of(out, "backend down"), 1);
    ck_assert_uint_eq(count_of(out, "another"), 1);
    ck_assert_uint_eq(count_of(out, "] notice\n"), 2);
    ck_assert_uint_eq(count_of(out, "same text"), 1);
    usleep(250 * 1000);
    tg_log(TG_LOG_ERROR, "backend down");
    ck_assert_ptr_nonnull(strstr(captured(NULL), "[error] backend down (repeated 4 times)\n"));
    tg_log_repeat_window_ms = 10000;
}
END_TEST

START_TEST(json_lines)
{
    capture_stderr();
    char err[256];
    ck_assert_int_eq(tg_log_set_output(NULL, true, err, sizeof(err)), 0);
    tg_log(TG_LOG_WARN, "a \"quoted\" \\ and\nnew\tline");
    make_request("r\"1", "id-7");
    tg_request_log(&req, TG_LOG_ERROR, "m");
    make_request(NULL, "id-8");
    tg_request_log(&req, TG_LOG_ERROR, "n");
    ck_assert_int_eq(tg_log_set_output(NULL, false, err, sizeof(err)), 0);
    assert_matches(captured(NULL),
                   "^\\{\"time\":\"[0-9-]{10}T[0-9:.]{12}Z\",\"level\":\"warn\","
                   "\"msg\":\"a \\\\\"quoted\\\\\" \\\\\\\\ and\\\\u000anew\\\\u0009line\"\\}\n"
                   "\\{\"time\":\"[^\"]+\",\"level\":\"error\",\"msg\":\"m\",\"worker\":3,"
                   "\"route\":\"r\\\\\"1\",\"request_id\":\"id-7\"\\}\n"
                   "\\{\"time\":\"[^\"]+\",\"level\":\"error\",\"msg\":\"n\",\"worker\":3,"
                   "\"route\":null,\"request_id\":\"id-8\"\\}\n$");
}
END_TEST

START_TEST(file_output_and_reopen)
{
    char dir[] = "/tmp/tg-log-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256], moved[256], err[256];
    snprintf(path, sizeof(path), "%s/error.log", dir);
    snprintf(moved, sizeof(moved), "%s/error.log.1", dir);
    ck_assert_int_eq(tg_log_set_output(path, false, err, sizeof(err)), 0);
    tg_log(TG_LOG_ERROR, "first");
    ck_assert_int_eq(rename(path, moved), 0);
    tg_log(TG_LOG_ERROR, "second"); /* still the moved file, as after logrotate */
    ck_assert_int_eq(tg_log_set_output(path, false, err, sizeof(err)), 0); /* SIGUSR1 */
    tg_log(TG_LOG_ERROR, "third");
    ck_assert_int_eq(tg_log_set_output(NULL, false, err, sizeof(err)), 0);
    char buf[1024];
    FILE *f = fopen(moved, "r");
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "first"));
    ck_assert_ptr_nonnull(strstr(buf, "second"));
    ck_assert_ptr_null(strstr(buf, "third"));
    f = fopen(path, "r");
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "third"));
    ck_assert_int_lt(tg_log_set_output("/nonexistent/dir/x.log", false, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, "cannot open /nonexistent/dir/x.log"));
    unlink(path);
    unlink(moved);
    rmdir(dir);
}
END_TEST

/* Tests share the process under CK_FORK=no (the valgrind stage): each starts
 * at the default level, whatever the one before it set. */
static void default_level(void)
{
    tg_log_level = TG_LOG_NOTICE;
    tg_log_forget_repeats();
}

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, default_level, NULL);
    tcase_add_test(tc, line_format);
    tcase_add_test(tc, levels);
    tcase_add_test(tc, escapes_controls);
    tcase_add_test(tc, long_message_is_cut);
    tcase_add_test(tc, request_tail);
    tcase_add_test(tc, request_tail_without_route);
    tcase_add_test(tc, request_tail_kept_when_cut);
    /* before the others: stderr must work again after a file (CK_FORK=no) */
    tcase_add_test(tc, file_output_and_reopen);
    tcase_add_test(tc, repeats_held_back_and_counted);
    tcase_add_test(tc, json_lines);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(log_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
