/* Unit tests for src/conf_include.c, through the config loader that uses it:
 * routes, upstreams and plugins merged from conf.d/, errors in the right
 * file, x- keys for anchors. Also every error of a file at once
 * (src/conf_errors.h) as the loader reports them. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static char dir[] = "/tmp/tg_test_include_XXXXXX";
static char olddir[PATH_MAX];
static tg_config_t *cfg;
static tg_conf_err_t err;
static tg_conf_errors_t errs;

#define LISTEN "listen:\n  - address: \":18080\"\n"

static void setup(void)
{
    strcpy(dir, "/tmp/tg_test_include_XXXXXX");
    ck_assert_ptr_nonnull(getcwd(olddir, sizeof(olddir)));
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(chdir(dir), 0);
    ck_assert_int_eq(mkdir("conf.d", 0755), 0);
}

static void teardown(void)
{
    tg_config_unref(cfg);
    cfg = NULL;
    ck_assert_int_eq(chdir(olddir), 0);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(name, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static int load(const char *main_text)
{
    tg_config_unref(cfg);
    cfg = NULL;
    write_file("t.yaml", main_text);
    tg_config_opts_t o = {.errors = &errs};
    return tg_config_load_opts("t.yaml", &o, &cfg, &err);
}

static void ck_errors(size_t n, const char *const *want)
{
    ck_assert_msg(errs.total == n, "%zu errors, want %zu; first: %s", errs.total, n, err.msg);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(errs.msgs[i], want[i]);
}

START_TEST(merges_sections)
{
    write_file("conf.d/10-orders.yaml",
               "upstreams:\n  orders:\n    targets: [\"127.0.0.1:9002\"]\n"
               "routes:\n  - name: orders\n    match: {path: /o}\n    upstream: orders\n");
    write_file("conf.d/20-users.yaml",
               "routes:\n  - name: users\n    match: {path: /u}\n    upstream: users\n");
    write_file("conf.d/ignored.txt", "not yaml: [\n");
    int rc = load(LISTEN "include: [\"conf.d/*.yaml\"]\n"
                         "upstreams:\n  users:\n    targets: [\"127.0.0.1:9001\"]\n"
                         "routes:\n  - name: main\n    upstream: users\n");
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_uint_eq(cfg->nupstreams, 2);
    ck_assert_str_eq(cfg->upstreams[0].name, "users");
    ck_assert_str_eq(cfg->upstreams[1].name, "orders");
    ck_assert_uint_eq(cfg->nroutes, 3);
    ck_assert_str_eq(cfg->routes[0].name, "main"); /* the main file's first, then by file name */
    ck_assert_str_eq(cfg->routes[1].name, "orders");
    ck_assert_str_eq(cfg->routes[2].name, "users");
    ck_assert_ptr_eq(cfg->routes[2].upstream, &cfg->upstreams[0]);
}
END_TEST

START_TEST(sections_only_in_included_files)
{
    /* The main file has no routes: they come from conf.d only. */
    write_file("conf.d/a.yaml",
               "upstreams:\n  u:\n    targets: [\"127.0.0.1:9001\"]\nroutes:\n  - upstream: u\n");
    ck_assert_int_eq(load(LISTEN "include: conf.d/a.yaml\n"), 0);
    ck_assert_uint_eq(cfg->nroutes, 1);
    /* An empty conf.d is fine; an empty included file too. */
    ck_assert_int_eq(load(LISTEN "include: [\"conf.d/*.none\"]\n"), 0);
    ck_assert_int_eq(load(LISTEN "include: [\"absent.d/*.yaml\"]\n"), 0); /* no such dir */
    write_file("conf.d/empty.yaml", "");
    ck_assert_int_eq(load(LISTEN "include: conf.d/empty.yaml\n"), 0);
}
END_TEST

START_TEST(errors_point_into_their_file)
{
    write_file("conf.d/a.yaml", "upstreams:\n  users:\n    targets: [\"127.0.0.1:9003\"]\n"
                                "    timeuot: 1s\n"
                                "routes:\n  - upstream: user\n"
                                "listen: []\n");
    ck_assert_int_eq(load(LISTEN "include: [\"conf.d/*.yaml\"]\n"
                                 "upstreams:\n  users:\n    targets: [\"127.0.0.1:9001\"]\n"),
                     -1);
    static const char *const want[] = {
        "conf.d/a.yaml:7:1: unknown key 'listen' in an included file (known: routes, upstreams, "
        "plugins)",
        "conf.d/a.yaml:2:3: upstream 'users' is defined twice (first at t.yaml:5:3)",
        "conf.d/a.yaml:6:15: unknown upstream 'user' (did you mean 'users'?)",
    };
    ck_errors(3, want);
    ck_assert_str_eq(err.msg, "conf.d/a.yaml:7:1: unknown key 'listen' in an included file "
                              "(known: routes, upstreams, plugins) (and 2 more errors)");
}
END_TEST

START_TEST(include_errors)
{
    ck_assert_int_eq(load(LISTEN "include: conf.d/missing.yaml\n"), -1);
    ck_assert_str_eq(err.msg, "t.yaml:3:10: include conf.d/missing.yaml: No such file or "
                              "directory");
    ck_assert_int_eq(load(LISTEN "include: {a: 1}\n"), -1);
    ck_assert_str_eq(err.msg, "t.yaml:3:10: include: expected a path or a list of paths");
    write_file("conf.d/a.yaml", "routes: []\n");
    ck_assert_int_eq(load(LISTEN "include: [conf.d/a.yaml, \"conf.d/*.yaml\"]\n"), -1);
    ck_assert_str_eq(err.msg, "t.yaml:3:26: include conf.d/a.yaml: the file is included twice");
    /* The main file never includes itself. */
    ck_assert_int_eq(load(LISTEN "include: [\"*.yaml\"]\n"), -1);
    ck_assert_str_eq(err.msg, "t.yaml:3:11: include t.yaml: the file is included twice");
    write_file("conf.d/a.yaml", "routes: {a: 1}\n");
    ck_assert_int_eq(load(LISTEN "include: conf.d/a.yaml\nroutes: []\n"), -1);
    ck_assert_str_eq(err.msg, "conf.d/a.yaml:1:9: expected a sequence");
}
END_TEST

START_TEST(extension_keys_hold_anchors)
{
    write_file("conf.d/a.yaml",
               "x-fast: &fast {timeout: 1.5s, retries: 0}\n"
               "upstreams:\n  b:\n    <<: *fast\n    targets: [\"127.0.0.1:9002\"]\n");
    int rc = load(LISTEN "include: conf.d/a.yaml\n"
                         "x-slow: &slow\n  timeout: 0.25s\n  keepalive: 4\n"
                         "upstreams:\n  a:\n    <<: *slow\n    targets: [\"127.0.0.1:9001\"]\n");
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_uint_eq(cfg->upstreams[0].timeout_ms, 250);
    ck_assert_uint_eq(cfg->upstreams[0].keepalive, 4);
    ck_assert_uint_eq(cfg->upstreams[1].timeout_ms, 1500);
    ck_assert_uint_eq(cfg->upstreams[1].retries, 0);
    /* Without include too. */
    rc = load(LISTEN "x-t: &t 2.5s\nlimits:\n  idle_timeout: *t\n");
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_uint_eq(cfg->limits.idle_timeout_ms, 2500);
}
END_TEST

START_TEST(all_errors_at_once)
{
    int rc = load("listen:\n  - address: \":18080\"\n    backlog: 0\n"
                  "limits:\n  idle_timeut: 10s\n  body_timeout: 10x\n"
                  "upstreams:\n  u:\n    targets: [\"127.0.0.1:9001\"]\n    retires: 2\n"
                  "routes:\n"
                  "  - match: {path_regex: \"(\", hots: x}\n    upstream: v\n"
                  "  - name: b\n    upstream: u\n    bogus: 1\n"
                  "trusted_proxies: [\"10.0.0.0/33\", \"10.0.0.0/8\"]\n");
    ck_assert_int_eq(rc, -1);
    static const char *const want[] = {
        "t.yaml:3:14: backlog must be between 1 and 65535",
        "t.yaml:17:19: invalid IP address or CIDR '10.0.0.0/33'",
        "t.yaml:5:3: unknown key 'idle_timeut' in limits (did you mean 'idle_timeout'?)",
        "t.yaml:6:17: expected a duration like 10s, got '10x'",
        "t.yaml:10:5: unknown key 'retires' in upstream 'u' (did you mean 'retries'?)",
        "t.yaml:12:30: unknown key 'hots' in match (did you mean 'host'?)",
        "t.yaml:12:25: invalid path_regex: missing closing parenthesis at offset 1",
        "t.yaml:13:15: unknown upstream 'v' (did you mean 'u'?)",
        "t.yaml:16:5: unknown key 'bogus' in routes (known: name, match, strip_prefix, upstream, "
        "plugins, aggregate, redirect, respond, rewrite, websocket, host_header, timeout, "
        "max_body_size, retry, split, split_override, sticky)",
    };
    ck_errors(sizeof(want) / sizeof(want[0]), want);
}
END_TEST

START_TEST(error_after_recorded_ones_is_reported)
{
    /* The route's plugins fail after the global ones already recorded errors
     * in the same step: still its own message. */
    int rc = load(LISTEN "upstreams:\n  u:\n    targets: [\"127.0.0.1:9001\"]\n"
                         "plugins: [7, 8]\n"
                         "routes:\n  - upstream: u\n    plugins: {a: b}\n");
    ck_assert_int_eq(rc, -1);
    static const char *const want[] = {
        "t.yaml:6:11: expected a plugin entry (a map with name:)",
        "t.yaml:6:14: expected a plugin entry (a map with name:)",
        "t.yaml:9:14: expected a list of plugins",
    };
    ck_errors(3, want);
}
END_TEST

START_TEST(errors_bounded)
{
    char yaml[8192] = LISTEN "limits:\n";
    for (int i = 0; i < 30; i++) {
        char line[64];
        snprintf(line, sizeof(line), "  bogus_%d: 1\n", i);
        strcat(yaml, line);
    }
    ck_assert_int_eq(load(yaml), -1);
    ck_assert_uint_eq(errs.total, 30);
    ck_assert_uint_eq(errs.n, TG_CONF_MAX_ERRORS);
    ck_assert(strstr(err.msg, "(and 29 more errors)") != NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conf_include");
    TCase *tc = tcase_create("include");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, merges_sections);
    tcase_add_test(tc, sections_only_in_included_files);
    tcase_add_test(tc, errors_point_into_their_file);
    tcase_add_test(tc, include_errors);
    tcase_add_test(tc, extension_keys_hold_anchors);
    tcase_add_test(tc, all_errors_at_once);
    tcase_add_test(tc, error_after_recorded_ones_is_reported);
    tcase_add_test(tc, errors_bounded);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
