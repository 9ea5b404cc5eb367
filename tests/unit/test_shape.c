/* Unit tests for plugins/response-shape/shape.c: the JSON shaping engine. */
#include "shape.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t len;
    int fail_after; /* writes allowed before failing; < 0: never fail */
} sink_t;

static int sink_write(const char *p, size_t n, void *data)
{
    sink_t *s = data;
    if (s->fail_after == 0)
        return -1;
    if (s->fail_after > 0)
        s->fail_after--;
    s->buf = realloc(s->buf, s->len + n + 1);
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return 0;
}

/* rules: '|'-separated, "+path" include, "-path" exclude, "path>name" rename. */
static tg_shape_t *compile(const char *rules)
{
    tg_shape_t *s = tg_shape_new();
    ck_assert_ptr_nonnull(s);
    char *copy = strdup(rules), *save = NULL, err[256];
    for (char *r = strtok_r(copy, "|", &save); r != NULL; r = strtok_r(NULL, "|", &save)) {
        int rc;
        if (r[0] == '+')
            rc = tg_shape_add(s, TG_SHAPE_INCLUDE, r + 1, NULL, err, sizeof(err));
        else if (r[0] == '-')
            rc = tg_shape_add(s, TG_SHAPE_EXCLUDE, r + 1, NULL, err, sizeof(err));
        else {
            char *gt = strrchr(r, '>');
            ck_assert_ptr_nonnull(gt);
            *gt = '\0';
            rc = tg_shape_add(s, TG_SHAPE_RENAME, r, gt + 1, err, sizeof(err));
        }
        ck_assert_msg(rc == 0, "rule '%s': %s", r, err);
    }
    free(copy);
    return s;
}

/* Shapes in (of length len) with rules; returns the output, "INVALID" or "SCALAR". */
static char *shape_n(const char *rules, const char *in, size_t len)
{
    tg_shape_t *s = compile(rules);
    sink_t out = {NULL, 0, -1};
    tg_shape_result_t r = tg_shape_body(s, in, len, sink_write, &out);
    tg_shape_free(s);
    if (r == TG_SHAPE_INVALID || r == TG_SHAPE_SCALAR) {
        ck_assert_ptr_null(out.buf);
        return strdup(r == TG_SHAPE_INVALID ? "INVALID" : "SCALAR");
    }
    ck_assert_int_eq(r, TG_SHAPE_SHAPED);
    return out.buf;
}

#define CHECK_SHAPE(rules, in, want)                 \
    do {                                             \
        char *got_ = shape_n(rules, in, strlen(in)); \
        ck_assert_str_eq(got_, want);                \
        free(got_);                                  \
    } while (0)

static const char *user =
    "{\"id\":7,\"name\":\"Ann\",\"avatar_url\":\"http://x/a.png\",\"internal_notes\":\"vip\","
    "\"orders\":[{\"id\":1,\"total\":10.5,\"cost_price\":4,\"lines\":[{\"sku\":\"a\",\"qty\":1,"
    "\"cost\":2},{\"sku\":\"b\",\"qty\":2,\"cost\":3}]},{\"id\":2,\"total\":3,\"cost_price\":1,"
    "\"lines\":[]}]}";

START_TEST(include_top_level_keeps_input_order)
{
    CHECK_SHAPE("+name|+id", user, "{\"id\":7,\"name\":\"Ann\"}");
}
END_TEST

START_TEST(include_subtree_and_array_fields)
{
    CHECK_SHAPE("+id|+orders[].id|+orders[].total", user,
                "{\"id\":7,\"orders\":[{\"id\":1,\"total\":10.5},{\"id\":2,\"total\":3}]}");
    CHECK_SHAPE("+orders[]", "{\"a\":1,\"orders\":[1,{\"b\":2}]}", "{\"orders\":[1,{\"b\":2}]}");
    CHECK_SHAPE("+user", "{\"user\":{\"a\":{\"b\":1}},\"x\":2}", "{\"user\":{\"a\":{\"b\":1}}}");
    CHECK_SHAPE("+user.name", "{\"user\":{\"name\":\"n\",\"pw\":\"p\"},\"x\":2}",
                "{\"user\":{\"name\":\"n\"}}");
}
END_TEST

START_TEST(include_nested_arrays)
{
    CHECK_SHAPE("+orders[].lines[].sku", user,
                "{\"orders\":[{\"lines\":[{\"sku\":\"a\"},{\"sku\":\"b\"}]},{\"lines\":[]}]}");
    CHECK_SHAPE("+m[][].x", "{\"m\":[[{\"x\":1,\"y\":2}],[],[{\"y\":3}]],\"n\":1}",
                "{\"m\":[[{\"x\":1}],[],[{}]]}");
}
END_TEST

START_TEST(include_ancestor_of_the_wrong_type)
{
    /* Not the container the path goes through: removed; null: kept. */
    CHECK_SHAPE("+user.name", "{\"user\":\"secret\"}", "{}");
    CHECK_SHAPE("+user.name", "{\"user\":null}", "{\"user\":null}");
    CHECK_SHAPE("+user.name", "{\"user\":[{\"name\":1}]}", "{}");
    CHECK_SHAPE("+orders[].id", "{\"orders\":{\"id\":1}}", "{}");
    CHECK_SHAPE("+orders[].id", "{\"orders\":[1,null,{\"id\":2,\"x\":3},\"s\",[4]]}",
                "{\"orders\":[null,{\"id\":2}]}");
    /* An exclude below does not make a mismatched ancestor acceptable. */
    CHECK_SHAPE("+a[].b|-a.c", "{\"a\":{\"b\":1,\"c\":2}}", "{}");
}
END_TEST

START_TEST(missing_paths_are_ignored)
{
    CHECK_SHAPE("+nope", user, "{}");
    CHECK_SHAPE("-nope|-nope.deeper|-orders[].nope|-id.x", "{\"id\":1,\"orders\":[{\"a\":1}]}",
                "{\"id\":1,\"orders\":[{\"a\":1}]}");
    CHECK_SHAPE("nope>x|orders[].nope>y", "{\"id\":1,\"orders\":[{\"a\":1}]}",
                "{\"id\":1,\"orders\":[{\"a\":1}]}");
    CHECK_SHAPE("-orders[].id", "{\"orders\":5}", "{\"orders\":5}");
    CHECK_SHAPE("-a.b", "{\"a\":[{\"b\":1}]}", "{\"a\":[{\"b\":1}]}");
}
END_TEST

START_TEST(exclude_rules)
{
    CHECK_SHAPE("-internal_notes|-orders[].cost_price|-orders[].lines[].cost", user,
                "{\"id\":7,\"name\":\"Ann\",\"avatar_url\":\"http://x/a.png\","
                "\"orders\":[{\"id\":1,\"total\":10.5,\"lines\":[{\"sku\":\"a\",\"qty\":1},"
                "{\"sku\":\"b\",\"qty\":2}]},{\"id\":2,\"total\":3,\"lines\":[]}]}");
    CHECK_SHAPE("-orders", user,
                "{\"id\":7,\"name\":\"Ann\",\"avatar_url\":\"http://x/a.png\","
                "\"internal_notes\":\"vip\"}");
    CHECK_SHAPE("-a.b.c", "{\"a\":{\"b\":{\"c\":1,\"d\":2}}}", "{\"a\":{\"b\":{\"d\":2}}}");
    /* Elements that are not objects are left alone. */
    CHECK_SHAPE("-a[].x", "{\"a\":[1,{\"x\":1,\"y\":2},null]}", "{\"a\":[1,{\"y\":2},null]}");
}
END_TEST

START_TEST(include_then_exclude)
{
    CHECK_SHAPE("+id|+orders|-orders[].cost_price|-orders[].lines", user,
                "{\"id\":7,\"orders\":[{\"id\":1,\"total\":10.5},{\"id\":2,\"total\":3}]}");
    CHECK_SHAPE("+id|+name|-name", user, "{\"id\":7}");
    CHECK_SHAPE("+a.b|-a", "{\"a\":{\"b\":1},\"c\":1}", "{}");
}
END_TEST

START_TEST(rename_keeps_position)
{
    CHECK_SHAPE("avatar_url>avatar", "{\"a\":1,\"avatar_url\":\"x\",\"z\":2}",
                "{\"a\":1,\"avatar\":\"x\",\"z\":2}");
    CHECK_SHAPE("orders[].total>sum", "{\"orders\":[{\"id\":1,\"total\":2,\"n\":0},{\"x\":1}]}",
                "{\"orders\":[{\"id\":1,\"sum\":2,\"n\":0},{\"x\":1}]}");
    CHECK_SHAPE("a[].b[].c>d", "{\"a\":[{\"b\":[{\"c\":1},{\"e\":2}]}]}",
                "{\"a\":[{\"b\":[{\"d\":1},{\"e\":2}]}]}");
    CHECK_SHAPE("user>u|user.name>n", "{\"user\":{\"name\":\"a\",\"k\":1}}",
                "{\"u\":{\"n\":\"a\",\"k\":1}}");
    CHECK_SHAPE("orders[]>o", "{\"orders\":[1]}", "{\"o\":[1]}");
}
END_TEST

START_TEST(rename_onto_an_existing_key)
{
    /* The renamed value wins, at the first of the two positions. */
    CHECK_SHAPE("a>b", "{\"a\":1,\"b\":2,\"c\":3}", "{\"b\":1,\"c\":3}");
    CHECK_SHAPE("a>b", "{\"b\":2,\"c\":3,\"a\":1}", "{\"b\":1,\"c\":3}");
    CHECK_SHAPE("a>b|b>a", "{\"a\":1,\"b\":2}", "{\"b\":1,\"a\":2}");
}
END_TEST

START_TEST(rename_with_include_and_exclude)
{
    CHECK_SHAPE("+id|+avatar_url|avatar_url>avatar|id>user_id", user,
                "{\"user_id\":7,\"avatar\":\"http://x/a.png\"}");
    CHECK_SHAPE("+orders[].id|+orders[].total|orders[].total>sum|orders>o", user,
                "{\"o\":[{\"id\":1,\"sum\":10.5},{\"id\":2,\"sum\":3}]}");
    /* Paths name the input: an excluded key is not renamed back in. */
    CHECK_SHAPE("-a|a>b", "{\"a\":1,\"c\":2}", "{\"c\":2}");
    CHECK_SHAPE("+user|-user.secret|user.name>n",
                "{\"user\":{\"name\":\"a\",\"secret\":1,\"k\":2},\"x\":1}",
                "{\"user\":{\"n\":\"a\",\"k\":2}}");
}
END_TEST

START_TEST(root_arrays)
{
    CHECK_SHAPE("+id", "[{\"id\":1,\"x\":2},{\"id\":3},{}]", "[{\"id\":1},{\"id\":3},{}]");
    CHECK_SHAPE("+id", "[1,{\"id\":1},null,\"s\",[{\"id\":2}]]", "[{\"id\":1},null]");
    CHECK_SHAPE("-x|id>key", "[1,{\"id\":1,\"x\":2},[{\"x\":1}]]", "[1,{\"key\":1},[{\"x\":1}]]");
    CHECK_SHAPE("+a[].b", "[{\"a\":[{\"b\":1,\"c\":2}]}]", "[{\"a\":[{\"b\":1}]}]");
    CHECK_SHAPE("+id", "[]", "[]");
    CHECK_SHAPE("+id", "{}", "{}");
}
END_TEST

START_TEST(scalar_and_invalid_bodies)
{
    CHECK_SHAPE("+id", "5", "SCALAR");
    CHECK_SHAPE("+id", " \"str\" ", "SCALAR");
    CHECK_SHAPE("+id", "null", "SCALAR");
    CHECK_SHAPE("+id", "", "INVALID");
    CHECK_SHAPE("+id", "{", "INVALID");
    CHECK_SHAPE("+id", "{\"id\":1} x", "INVALID");
    CHECK_SHAPE("+id", "{\"id\":1}{}", "INVALID");
    CHECK_SHAPE("+id", "{'id':1}", "INVALID");
    CHECK_SHAPE("+id", "{\"a\":\"\xff\"}", "INVALID");       /* not UTF-8 */
    CHECK_SHAPE("+id", "[\"\\ud800\"]", "INVALID");          /* lone surrogate */
    CHECK_SHAPE("+id", "{\"a\\u0000b\":1}", "INVALID");      /* jansson: no NUL in keys */
    CHECK_SHAPE("+id", "[18446744073709551616]", "INVALID"); /* > int64: jansson cannot hold it */
    /* A NUL in the middle of the body is not the end of it. */
    char *got = shape_n("+id", "{\"id\":1}\0{", 10);
    ck_assert_str_eq(got, "INVALID");
    free(got);
}
END_TEST

START_TEST(whitespace_is_compacted_and_duplicates_keep_the_last)
{
    CHECK_SHAPE("-x", " {\n \"a\" : [ 1 , 2 ] ,\t\"x\":0 }\r\n", "{\"a\":[1,2]}");
    CHECK_SHAPE("-x", "{\"a\":1,\"a\":2}", "{\"a\":2}");
}
END_TEST

START_TEST(unicode)
{
    CHECK_SHAPE("+名前|+emoji", "{\"名前\":\"テスト\",\"emoji\":\"\\ud83d\\ude00\",\"x\":\"é\"}",
                "{\"名前\":\"テスト\",\"emoji\":\"\xf0\x9f\x98\x80\"}");
    CHECK_SHAPE("-x", "{\"s\":\"\\u00e9\\/\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\"}",
                "{\"s\":\"é/\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\"}");
    /* A NUL inside a string value survives (JSON_ALLOW_NUL, lengths). */
    CHECK_SHAPE("-x", "{\"s\":\"a\\u0000b\"}", "{\"s\":\"a\\u0000b\"}");
    CHECK_SHAPE("ключ>key", "{\"ключ\":\"значение\"}", "{\"key\":\"значение\"}");
}
END_TEST

START_TEST(numbers_round_trip)
{
    CHECK_SHAPE("-x", "[0,-1,9223372036854775807,-9223372036854775808,1e2,100]",
                "[0,-1,9223372036854775807,-9223372036854775808,100.0,100]");
    CHECK_SHAPE("-x", "[0.1,2.5,-0.0,1.0,1.5e300,1e-7,3.141592653589793,0.30000000000000004]",
                "[0.1,2.5,-0.0,1.0,1.5e+300,1e-07,3.141592653589793,0.30000000000000004]");
    CHECK_SHAPE("-x", "[4.9406564584124654e-324,1.7976931348623157e308,123456789012345678]",
                "[4.94065645841247e-324,1.7976931348623157e+308,123456789012345678]");
}
END_TEST

/* Every double written reads back as itself (shortest of 15..17 digits). */
START_TEST(reals_read_back_exactly)
{
    srand(42);
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = 0;
        for (int k = 0; k < 4; k++)
            bits = bits << 16 | (uint64_t)(rand() & 0xffff);
        double d;
        memcpy(&d, &bits, sizeof(d));
        if (!isfinite(d))
            continue;
        json_t *v = json_real(d);
        sink_t out = {NULL, 0, -1};
        ck_assert_int_eq(tg_shape_dump(v, sink_write, &out), 0);
        json_decref(v);
        json_error_t e;
        json_t *back = json_loads(out.buf, JSON_DECODE_ANY, &e);
        ck_assert_msg(back != NULL && json_is_real(back), "%s does not parse", out.buf);
        ck_assert_msg(memcmp(&(double){json_real_value(back)}, &d, sizeof(d)) == 0,
                      "%s is not %.17g", out.buf, d);
        json_decref(back);
        free(out.buf);
    }
}
END_TEST

START_TEST(path_syntax)
{
    CHECK_SHAPE("+a\\.b", "{\"a.b\":1,\"a\":{\"b\":2}}", "{\"a.b\":1}");
    CHECK_SHAPE("+a\\[\\]|+c\\\\d", "{\"a[]\":1,\"a\":[2],\"c\\\\d\":3}",
                "{\"a[]\":1,\"c\\\\d\":3}");
    CHECK_SHAPE("-a\\.b.c", "{\"a.b\":{\"c\":1,\"d\":2}}", "{\"a.b\":{\"d\":2}}");
    const char *bad[] = {"",     ".a", "a.",   "a..b", "a[",  "a[x]", "a[]b",
                         "a[].", "[]", "[].a", "a\\x", "a\\", "a.[]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tg_shape_t *s = tg_shape_new();
        char err[256] = "";
        ck_assert_msg(tg_shape_add(s, TG_SHAPE_EXCLUDE, bad[i], NULL, err, sizeof(err)) == -1,
                      "'%s' accepted", bad[i]);
        ck_assert_msg(strstr(err, "bad path") != NULL, "'%s': %s", bad[i], err);
        tg_shape_free(s);
    }
}
END_TEST

START_TEST(rename_errors)
{
    tg_shape_t *s = tg_shape_new();
    char err[256];
    ck_assert_int_eq(tg_shape_add(s, TG_SHAPE_RENAME, "a", "", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "empty new name for 'a'");
    ck_assert_int_eq(tg_shape_add(s, TG_SHAPE_RENAME, "a", NULL, err, sizeof(err)), -1);
    ck_assert_int_eq(tg_shape_add(s, TG_SHAPE_RENAME, "a.b", "c", err, sizeof(err)), 0);
    ck_assert_int_eq(tg_shape_add(s, TG_SHAPE_RENAME, "a.b", "c", err, sizeof(err)), 0);
    ck_assert_int_eq(tg_shape_add(s, TG_SHAPE_RENAME, "a.b[]", "d", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "'a.b[]' renamed twice");
    tg_shape_free(s);
}
END_TEST

START_TEST(empty_shape)
{
    tg_shape_t *s = tg_shape_new();
    ck_assert(tg_shape_is_empty(s));
    char err[64];
    ck_assert_int_eq(tg_shape_add(s, TG_SHAPE_EXCLUDE, "x", NULL, err, sizeof(err)), 0);
    ck_assert(!tg_shape_is_empty(s));
    tg_shape_free(s);
    tg_shape_free(NULL);
    CHECK_SHAPE("", user, user); /* already compact: comes back byte for byte */
}
END_TEST

START_TEST(write_errors_are_reported)
{
    tg_shape_t *s = compile("-x");
    size_t n = 100000;
    char *big = malloc(n + 16);
    strcpy(big, "[\"");
    memset(big + 2, 'a', n);
    strcpy(big + 2 + n, "\",1]");
    for (int allowed = 0; allowed < 3; allowed++) {
        sink_t out = {NULL, 0, allowed};
        ck_assert_int_eq(tg_shape_body(s, big, strlen(big), sink_write, &out),
                         TG_SHAPE_WRITE_ERROR);
        free(out.buf);
    }
    /* A string longer than the output buffer goes through whole. */
    sink_t out = {NULL, 0, -1};
    ck_assert_int_eq(tg_shape_body(s, big, strlen(big), sink_write, &out), TG_SHAPE_SHAPED);
    ck_assert_uint_eq(out.len, strlen(big));
    ck_assert_mem_eq(out.buf, big, out.len);
    free(out.buf);
    free(big);
    tg_shape_free(s);
}
END_TEST

/* Dropping most elements of a large array stays linear. */
START_TEST(large_array_filtering_is_linear)
{
    size_t n = 400000;
    char *in = malloc(n * 2 + 64), *p = in;
    p += sprintf(p, "{\"a\":[");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s1", i ? "," : "");
    p += sprintf(p, ",{\"id\":5,\"x\":1}]}");
    char *got = shape_n("+a[].id", in, strlen(in));
    ck_assert_str_eq(got, "{\"a\":[{\"id\":5}]}");
    free(got);
    free(in);
}
END_TEST

/* Deep documents (jansson's own depth limit) do not break the walk. */
START_TEST(deep_nesting)
{
    size_t depth = 2000;
    char *in = malloc(depth * 6 + 16), *p = in;
    for (size_t i = 0; i < depth; i++)
        p += sprintf(p, "{\"a\":");
    p += sprintf(p, "1");
    for (size_t i = 0; i < depth; i++)
        *p++ = '}';
    *p = '\0';
    char *got = shape_n("-b|a.a.a>z", in, strlen(in));
    ck_assert_uint_eq(strlen(got), strlen(in));
    ck_assert_mem_eq(got, "{\"a\":{\"a\":{\"z\":{\"a\":", 20);
    free(got);
    free(in);
}
END_TEST

static Suite *shape_suite(void)
{
    Suite *s = suite_create("shape");
    TCase *t = tcase_create("rules");
    tcase_add_test(t, include_top_level_keeps_input_order);
    tcase_add_test(t, include_subtree_and_array_fields);
    tcase_add_test(t, include_nested_arrays);
    tcase_add_test(t, include_ancestor_of_the_wrong_type);
    tcase_add_test(t, missing_paths_are_ignored);
    tcase_add_test(t, exclude_rules);
    tcase_add_test(t, include_then_exclude);
    tcase_add_test(t, rename_keeps_position);
    tcase_add_test(t, rename_onto_an_existing_key);
    tcase_add_test(t, rename_with_include_and_exclude);
    tcase_add_test(t, root_arrays);
    suite_add_tcase(s, t);
    t = tcase_create("documents");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, scalar_and_invalid_bodies);
    tcase_add_test(t, whitespace_is_compacted_and_duplicates_keep_the_last);
    tcase_add_test(t, unicode);
    tcase_add_test(t, numbers_round_trip);
    tcase_add_test(t, reals_read_back_exactly);
    tcase_add_test(t, write_errors_are_reported);
    tcase_add_test(t, large_array_filtering_is_linear);
    tcase_add_test(t, deep_nesting);
    suite_add_tcase(s, t);
    t = tcase_create("config");
    tcase_add_test(t, path_syntax);
    tcase_add_test(t, rename_errors);
    tcase_add_test(t, empty_shape);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(shape_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
