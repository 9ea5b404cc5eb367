/* Unit tests for src/aggregate.c: call paths compiled at load by the shared
 * template engine (parts, path or query side, errors at FILE:LINE:COL) and the
 * percent-encoding of values. The engine itself: test_template.c. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregate.h"
#include "config.h"
#include "template.h"
#include "tollgate/text.h"

static char dir[] = "/tmp/tg_test_aggregate_XXXXXX";
static char olddir[PATH_MAX];
static tg_config_t *cfg;
static tg_conf_err_t err;

/* Routes start on line 6; the call's path: value is on line 10, column 15. */
#define HEAD                                                                                  \
    "listen:\n  - address: \":18080\"\nupstreams:\n  u:\n    targets: [\"127.0.0.1:9001\"]\n" \
    "routes:\n  - name: bff\n"
#define CALL(path)                                     \
    "    aggregate:\n      calls:\n        - key: k\n" \
    "          path: \"" path "\"\n          upstream: u\n"

static void setup(void)
{
    strcpy(dir, "/tmp/tg_test_aggregate_XXXXXX");
    ck_assert_ptr_nonnull(getcwd(olddir, sizeof(olddir)));
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(chdir(dir), 0);
}

static void teardown(void)
{
    tg_config_unref(cfg);
    cfg = NULL;
    unlink("t.yaml");
    ck_assert_int_eq(chdir(olddir), 0);
    rmdir(dir);
}

static int load(const char *yaml)
{
    tg_config_unref(cfg);
    cfg = NULL;
    FILE *f = fopen("t.yaml", "w");
    ck_assert_ptr_nonnull(f);
    fputs(yaml, f);
    fclose(f);
    memset(&err, 0, sizeof(err));
    return tg_config_load("t.yaml", &cfg, &err);
}

static const tg_template_t *template_of(const char *yaml)
{
    ck_assert_msg(load(yaml) == 0, "load failed: %s", err.msg);
    const tg_aggregate_t *a = cfg->routes[0].aggregate;
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(a->ncalls, 1);
    return a->calls[0].path;
}

START_TEST(test_template_parts)
{
    const tg_template_t *t =
        template_of(HEAD CALL("/u/{jwt.sub}/x?q={query.q}&h={header.X-A}&v={var.k}"));
    static const struct {
        tg_tpl_kind_t kind;
        const char *text;
        bool in_path;
    } want[] = {
        {TG_TPL_LITERAL, "/u/", true},   {TG_TPL_JWT, "sub", true},
        {TG_TPL_LITERAL, "/x?q=", true}, {TG_TPL_QUERY, "q", false},
        {TG_TPL_LITERAL, "&h=", false},  {TG_TPL_HEADER, "X-A", false},
        {TG_TPL_LITERAL, "&v=", false},  {TG_TPL_VAR, "k", false},
    };
    ck_assert_uint_eq(t->nparts, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < t->nparts; i++) {
        ck_assert_int_eq(t->parts[i].kind, want[i].kind);
        ck_assert_str_eq(t->parts[i].text, want[i].text);
        ck_assert_uint_eq(t->parts[i].len, strlen(want[i].text));
        ck_assert_msg(t->parts[i].in_path == want[i].in_path, "part %zu", i);
    }
}
END_TEST

START_TEST(test_path_groups)
{
    const tg_template_t *t = template_of(
        HEAD "    match: { path_regex: \"^/o/(?<id>[0-9]+)$\" }\n" CALL("/orders/{path.id}"));
    ck_assert_uint_eq(t->nparts, 2);
    ck_assert_int_eq(t->parts[1].kind, TG_TPL_PATH);
    ck_assert_int_eq(load(HEAD CALL("/orders/{path.id}")), -1);
    ck_assert_str_eq(err.msg, "t.yaml:11:17: {path.id} needs a path_regex with a (?<id>...) group");
    ck_assert_int_eq(load(HEAD "    match: { path_regex: \"^/o/(?<id>[0-9]+)$\" }\n" CALL(
                         "/orders/{path.nope}")),
                     -1);
    ck_assert_str_eq(err.msg, "t.yaml:12:17: path_regex has no group named 'nope'");
}
END_TEST

START_TEST(test_template_errors)
{
    ck_assert_int_eq(load(HEAD CALL("/u/{bogus}")), -1);
    ck_assert_str_eq(err.msg,
                     "t.yaml:11:17: unknown template variable {bogus}: use jwt.<claim>, "
                     "query.<name>, header.<Name>, path.<group>, var.<key>, client_ip, "
                     "route, request_id, consumer, path_rest or a named group of the route's "
                     "path_regex");
    ck_assert_int_eq(load(HEAD CALL("/u/{jwt.sub")), -1);
    ck_assert_str_eq(err.msg, "t.yaml:11:17: unterminated '{' in template");
    ck_assert_int_eq(load(HEAD CALL("u/{jwt.sub}")), -1);
    ck_assert_str_eq(err.msg, "t.yaml:11:17: a path template must start with \"/\"");
    /* a prefix alone names nothing */
    ck_assert_int_eq(load(HEAD CALL("/u/{jwt.}")), -1);
}
END_TEST

START_TEST(test_encode_everything_but_unreserved)
{
    char out[64];
    size_t n = tg_percent_encode("aZ9-._~/?&=% \"\xc3\xa9", 16, out);
    out[n] = '\0';
    ck_assert_str_eq(out, "aZ9-._~%2F%3F%26%3D%25%20%22%C3%A9");
    ck_assert_uint_eq(tg_percent_encode("", 0, out), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("aggregate");
    TCase *tc = tcase_create("templates");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_template_parts);
    tcase_add_test(tc, test_path_groups);
    tcase_add_test(tc, test_template_errors);
    tcase_add_test(tc, test_encode_everything_but_unreserved);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
