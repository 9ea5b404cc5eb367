/* Unit tests for plugins/response-shape/shape.c: the JSON shaping engine.
 * Every shaped case also goes through the old DOM engine kept as an oracle
 * (shape_dom_oracle.c): same validity, same document once parsed. */
#include "plugins/response-shape/shape.c"
#include "shape_dom_oracle.c"

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

/* The oracle with the same rules (syntax checked by compile() already). */
static dom_shape_t *compile_dom(const char *rules)
{
    dom_shape_t *s = dom_shape_new();
    char *copy = strdup(rules), *save = NULL, err[256];
    for (char *r = strtok_r(copy, "|", &save); r != NULL; r = strtok_r(NULL, "|", &save)) {
        if (r[0] == '+' || r[0] == '-') {
            dom_shape_add(s, r[0] == '+' ? TG_SHAPE_INCLUDE : TG_SHAPE_EXCLUDE, r + 1, NULL, err,
                          sizeof(err));
        } else {
            char *gt = strrchr(r, '>');
            *gt = '\0';
            dom_shape_add(s, TG_SHAPE_RENAME, r, gt + 1, err, sizeof(err));
        }
    }
    free(copy);
    return s;
}

/* The streaming output and the oracle's agree (dom_check). */
static void check_oracle(const char *rules, const char *in, size_t len, tg_shape_result_t r,
                         const sink_t *out)
{
    dom_shape_t *d = compile_dom(rules);
    const char *why = dom_check(d, in, len, r, out->buf, out->len);
    dom_shape_free(d);
    ck_assert_msg(why == NULL, "%s on %.*s with %s: got %s", why, (int)len, in, rules,
                  out->buf ? out->buf : "nothing");
}

/* Shapes in (of length len) with rules; returns the output, "INVALID" or "SCALAR". */
static char *shape_n(const char *rules, const char *in, size_t len)
{
    tg_shape_t *s = compile(rules);
    sink_t out = {NULL, 0, -1};
    /* An exact-size copy: under ASan, reading past the body is caught. */
    char *body = malloc(len + 1);
    memcpy(body, in, len);
    tg_shape_result_t r = tg_shape_body(s, body, len, sink_write, &out);
    free(body);
    tg_shape_free(s);
    check_oracle(rules, in, len, r, &out);
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
    CHECK_SHAPE("+id", "{\"a\":\"\xff\"}", "INVALID");  /* not UTF-8 */
    CHECK_SHAPE("+id", "[\"\\ud800\"]", "INVALID");     /* lone surrogate */
    CHECK_SHAPE("+id", "{\"a\\u0000b\":1}", "INVALID"); /* no NUL in keys */
    /* A NUL in the middle of the body is not the end of it. */
    char *got = shape_n("+id", "{\"id\":1}\0{", 10);
    ck_assert_str_eq(got, "INVALID");
    free(got);
    /* Nor a NUL after a number or literal, which jansson 2.14 skips. */
    static const char nul[][12] = {"[1\0]", "[true\0]", "{\"a\":null\0}", "0\0 ", "[-1e5\0]"};
    for (size_t i = 0; i < sizeof(nul) / sizeof(nul[0]); i++) {
        got = shape_n("+id", nul[i], strlen(nul[i]) + 1 + strlen(nul[i] + strlen(nul[i]) + 1));
        ck_assert_str_eq(got, "INVALID");
        free(got);
    }
}
END_TEST

START_TEST(whitespace_is_compacted_and_duplicates_kept)
{
    CHECK_SHAPE("-x", " {\n \"a\" : [ 1 , 2 ] ,\t\"x\":0 }\r\n", "{\"a\":[1,2]}");
    /* Also inside subtrees the rules do not name (copied, not walked). */
    CHECK_SHAPE("-x", "[ { \"k\" : [ ] , \"l\" : { } } , \" s p \" , -1.5e+3 ]",
                "[{\"k\":[],\"l\":{}},\" s p \",-1.5e+3]");
    CHECK_SHAPE("+a", "{ \"a\" :\n[ 1 ,\r\n2 ] }", "{\"a\":[1,2]}");
    /* Was: duplicates keep the last (the DOM). Streaming: kept as they come,
     * each shaped on its own. */
    CHECK_SHAPE("-x", "{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":2}");
    CHECK_SHAPE("-a.x", "{\"a\":{\"x\":1,\"y\":1},\"a\":{\"x\":2}}", "{\"a\":{\"y\":1},\"a\":{}}");
    CHECK_SHAPE("+a", "{\"a\":1,\"b\":0,\"a\":2}", "{\"a\":1,\"a\":2}");
}
END_TEST

START_TEST(unicode)
{
    /* Strings are copied as written: escapes are not decoded (the DOM wrote
     * "\xf0\x9f\x98\x80" and "é/" here), raw UTF-8 is not escaped. */
    CHECK_SHAPE("+名前|+emoji", "{\"名前\":\"テスト\",\"emoji\":\"\\ud83d\\ude00\",\"x\":\"é\"}",
                "{\"名前\":\"テスト\",\"emoji\":\"\\ud83d\\ude00\"}");
    CHECK_SHAPE("-x", "{\"s\":\"\\u00e9\\/\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\x7f\"}",
                "{\"s\":\"\\u00e9\\/\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\x7f\"}");
    CHECK_SHAPE(
        "-x", "[\"\xf0\x9f\x98\x80\xe2\x82\xac\xc3\xa9\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf\"]",
        "[\"\xf0\x9f\x98\x80\xe2\x82\xac\xc3\xa9\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf\"]");
    /* A NUL inside a string value survives (JSON_ALLOW_NUL, lengths). */
    CHECK_SHAPE("-x", "{\"s\":\"a\\u0000b\"}", "{\"s\":\"a\\u0000b\"}");
    CHECK_SHAPE("ключ>key", "{\"ключ\":\"значение\"}", "{\"key\":\"значение\"}");
}
END_TEST

/* Numbers are copied as written (the DOM wrote 1e2 as 100.0, 1.5e300 as
 * 1.5e+300, 4.9406564584124654e-324 as 4.94065645841247e-324). */
START_TEST(numbers_copied_as_written)
{
    CHECK_SHAPE("-x", "[0,-1,9223372036854775807,-9223372036854775808,1e2,100,-0]",
                "[0,-1,9223372036854775807,-9223372036854775808,1e2,100,-0]");
    CHECK_SHAPE("-x", "[0.1,2.5,-0.0,1.0,1.5e300,1e-7,3.141592653589793,0.30000000000000004]",
                "[0.1,2.5,-0.0,1.0,1.5e300,1e-7,3.141592653589793,0.30000000000000004]");
    CHECK_SHAPE("-x", "[4.9406564584124654e-324,1.7976931348623157e308,123456789012345678]",
                "[4.9406564584124654e-324,1.7976931348623157e308,123456789012345678]");
    CHECK_SHAPE("-x", "[1E+2,1e-2,0.10000000000000000000001,1e-400,0e99999999999999999999]",
                "[1E+2,1e-2,0.10000000000000000000001,1e-400,0e99999999999999999999]");
    CHECK_SHAPE("-x", "[1.7976931348623158e308,179769313486231570000e288,-1e308]",
                "[1.7976931348623158e308,179769313486231570000e288,-1e308]");
}
END_TEST

/* RFC 8259 sets no range: what jansson cannot hold (int64, double) is valid
 * and shaped, the digits copied as written, wherever the number stands. */
START_TEST(numbers_of_any_size)
{
    const char *big[] = {"9223372036854775808",
                         "-9223372036854775809",
                         "18446744073709551616",
                         "123456789012345678901234567890123456789012345678901234567890",
                         "1e400",
                         "-1e309",
                         "1.7976931348623159e308",
                         "0.0001e313",
                         "100000000000000000000e300",
                         "1e99999999999999999999",
                         "1E-99999999999999999999",
                         "0.00000000000000000000000000000000000000000000000000000000000001",
                         "3.14159265358979323846264338327950288419716939937510582097494459"};
    char in[256], want[256];
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        snprintf(in, sizeof(in), "{ \"x\": %s, \"n\" : [ %s ], \"k\": { \"m\": %s } }", big[i],
                 big[i], big[i]);
        snprintf(want, sizeof(want), "{\"n\":[%s],\"k\":{\"m\":%s}}", big[i], big[i]);
        CHECK_SHAPE("-x", in, want);
        snprintf(want, sizeof(want), "{\"n\":[%s]}", big[i]);
        CHECK_SHAPE("+n", in, want);
        snprintf(want, sizeof(want), "{\"x\":%s,\"z\":[%s],\"k\":{\"m\":%s}}", big[i], big[i],
                 big[i]);
        CHECK_SHAPE("n>z", in, want);
        CHECK_SHAPE("-x", big[i], "SCALAR");
    }
}
END_TEST

/* The number grammar is RFC 8259's, nothing more lenient. */
START_TEST(numbers_invalid)
{
    const char *bad[] = {"[01]",   "[-]",     "[1.]",  "[.5]",        "[1e]",  "[1e+]",  "[+1]",
                         "[0x10]", "[1.5.2]", "[NaN]", "[Infinity]",  "[-01]", "[1e5x]", "[1.e5]",
                         "[-.5]",  "[1e+-5]", "[00]",  "[-Infinity]", "[1-2]", "[2.]",   "[1E]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_SHAPE("-x", bad[i], "INVALID");
    CHECK_SHAPE("-x", "-0", "SCALAR");
}
END_TEST

/* Invalid strings (RFC 8259, and lone surrogates: json_scan.h), also in values that are skipped or
 * copied without being walked. */
START_TEST(strings_jansson_rejects)
{
    const char *bad[] = {"\xc0\x80",
                         "\xc1\xbf",
                         "\xe0\x80\x80",
                         "\xe0\x9f\xbf",
                         "\xed\xa0\x80",
                         "\xed\xbf\xbf",
                         "\xf0\x80\x80\x80",
                         "\xf4\x90\x80\x80",
                         "\xf5\x80\x80\x80",
                         "\xff",
                         "\x80",
                         "\xbf",
                         "\xe2\x82",
                         "\xf0\x9f\x98",
                         "\xc3",
                         "\xc3\x28",
                         "\x01",
                         "\x1f",
                         "\n",
                         "\t",
                         "\\x",
                         "\\U0041",
                         "\\u12",
                         "\\u12G4",
                         "\\",
                         "\\udc00",
                         "\\ud800",
                         "\\ud800x",
                         "\\ud800\\u0041",
                         "\\ud800\\ud800",
                         "\\ud800\\",
                         "\\'"};
    const char *rules[] = {"-x", "+id", "-y"};
    char in[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (size_t r = 0; r < 3; r++) {
            snprintf(in, sizeof(in), "{\"x\":[\"%s\"]}", bad[i]);
            CHECK_SHAPE(rules[r], in, "INVALID");
            snprintf(in, sizeof(in), "{\"x%s\":1}", bad[i]);
            CHECK_SHAPE(rules[r], in, "INVALID");
        }
    }
    CHECK_SHAPE("-x", "[\"\\u0000\"]", "[\"\\u0000\"]");
    CHECK_SHAPE("-x", "{\"x\":{\"\\u0000\":1}}", "INVALID"); /* no NUL in keys (json_scan.h) */
    CHECK_SHAPE("-x", "[\"\\uD83D\\uDE00\\u00E9\\uFFFF\"]", "[\"\\uD83D\\uDE00\\u00E9\\uFFFF\"]");
    const char *structure[] = {"{\"a\":1,}", "[1,]",   "[1 2]", "{\"a\" 1}",  "{1:2}",
                               "{\"a\":}",   "[",      "]",     "{\"a\":1",   "[tru]",
                               "[nul]",      "[True]", "[\"a]", "{\"a\":1}}", "\xef\xbb\xbf[1]",
                               "[1]\f"};
    for (size_t i = 0; i < sizeof(structure) / sizeof(structure[0]); i++)
        for (size_t r = 0; r < 3; r++)
            CHECK_SHAPE(rules[r], structure[i], "INVALID");
}
END_TEST

/* A key is matched by what it means, not how it is written: escapes are
 * decoded for the comparison, and the key is written as it came. */
START_TEST(escaped_keys_match_rules)
{
    CHECK_SHAPE("+id", "{\"\\u0069d\":1,\"i\\u0064x\":2}", "{\"\\u0069d\":1}");
    CHECK_SHAPE("avatar_url>avatar", "{\"\\u0061vatar\\u005furl\":1}", "{\"avatar\":1}");
    CHECK_SHAPE("-a/b|-q\"|-t\\\\", "{\"a\\/b\":1,\"q\\\"\":2,\"t\\\\\":3,\"k\":4}", "{\"k\":4}");
    CHECK_SHAPE("+\xf0\x9f\x98\x80|+\xc3\xa9", "{\"\\ud83d\\ude00\":1,\"\\u00E9\":2,\"\\u00e8\":3}",
                "{\"\\ud83d\\ude00\":1,\"\\u00E9\":2}");
    CHECK_SHAPE("-\n\t", "{\"\\n\\t\":1,\"\\n\":2}", "{\"\\n\":2}");
    CHECK_SHAPE("a>b", "{\"b\":1,\"\\u0061\":2}", "{\"b\":2}");
    CHECK_SHAPE("a>b", "{\"\\u0062\":1,\"a\":2}", "{\"\\u0062\":2}");
}
END_TEST

START_TEST(rename_collisions)
{
    /* Two keys renamed to one name: the later value wins, first position. */
    CHECK_SHAPE("a>c|b>c", "{\"a\":1,\"b\":2,\"c\":3}", "{\"c\":2}");
    CHECK_SHAPE("a>c|b>c", "{\"c\":3,\"b\":22,\"a\":1}", "{\"c\":1}");
    /* Replacements of different lengths move the names written after. */
    CHECK_SHAPE("a>c|b>c|d>x",
                "{\"c\":\"three\",\"a\":1,\"x\":[9,9],\"b\":{\"long\":\"value\"},\"y\":0,\"d\":4}",
                "{\"c\":{\"long\":\"value\"},\"x\":4,\"y\":0}");
    CHECK_SHAPE("a>b|b>a", "{\"b\":2,\"a\":1}", "{\"a\":2,\"b\":1}");
    /* Per object: the elements of an array do not see each other's names. */
    CHECK_SHAPE("a>b", "[{\"b\":1,\"a\":2},{\"a\":3},{\"b\":4},{\"a\":{\"b\":5,\"a\":6}}]",
                "[{\"b\":2},{\"b\":3},{\"b\":4},{\"b\":{\"b\":5,\"a\":6}}]");
    CHECK_SHAPE("o[].a>b|o[].x.a>b", "{\"o\":[{\"b\":1,\"x\":{\"b\":0,\"a\":7},\"a\":2}]}",
                "{\"o\":[{\"b\":2,\"x\":{\"b\":7}}]}");
    /* With include: only the kept keys collide. */
    CHECK_SHAPE("+a|a>b", "{\"b\":1,\"a\":2}", "{\"b\":2}");
    CHECK_SHAPE("+b|+a.z|a>b", "{\"b\":1,\"a\":5}", "{\"b\":1}");
    /* New names needing escapes. */
    CHECK_SHAPE("a>q\"\\\x01", "{\"a\":1}", "{\"q\\\"\\\\\\u0001\":1}");
    /* A renamed key repeated in the input: the duplicate comes as it came. */
    CHECK_SHAPE("a>b", "{\"a\":1,\"a\":2}", "{\"b\":1,\"b\":2}");
}
END_TEST

/* Renames to longer names grow the output beyond the input's size. */
START_TEST(rename_growth)
{
    char name[301];
    memset(name, 'n', 300);
    name[300] = '\0';
    char rules[320];
    snprintf(rules, sizeof(rules), "a>%s|b>\"\"\"\"", name);
    size_t n = 2000;
    char *in = malloc(n * 8 + 8), *p = in;
    *p++ = '[';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s{\"%c\":1}", i ? "," : "", i % 2 ? 'a' : 'b');
    strcpy(p, "]");
    char *got = shape_n(rules, in, strlen(in));
    /* "[" "]", n - 1 commas, {"<300 n>":1} and {"\"\"\"\"":1} */
    ck_assert_uint_eq(strlen(got), 2 + (n - 1) + n / 2 * 306 + n / 2 * 14);
    const char *start = "[{\"\\\"\\\"\\\"\\\"\":1},{\"nnn";
    ck_assert_mem_eq(got, start, strlen(start));
    free(got);
    free(in);
}
END_TEST

/* jansson's limit: a value at depth 2049 (the root is 1) is invalid,
 * whether the rules walk down to it or not. */
static char *nest(size_t depth, const char *open, const char *inner, const char *close)
{
    size_t size = depth * (strlen(open) + strlen(close)) + strlen(inner) + 1;
    ck_assert_uint_lt(size, 1u << 24); /* (and gcc -O3 then knows the malloc is sane) */
    char *in = malloc(size), *p = in;
    ck_assert_ptr_nonnull(in);
    for (size_t i = 0; i < depth; i++)
        p = stpcpy(p, open);
    p = stpcpy(p, inner);
    for (size_t i = 0; i < depth; i++)
        p = stpcpy(p, close);
    return in;
}

START_TEST(depth_limit)
{
    /* rules that copy, walk down "a.a...", or skip the nested values */
    const char *rules[] = {"-x", "+a", "-a.a.a.a.b", "a.a>b", "+x"};
    struct {
        size_t levels; /* of each kind below */
        const char *inner;
        bool ok;
    } cases[] = {{2047, "1", true}, {2048, "", true}, {2048, "1", false}, {2049, "", false}};
    for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
        for (size_t i = 0; i < 4; i++) {
            size_t d = cases[i].levels;
            char *in[3] = {
                nest(d, "[", cases[i].inner, "]"),
                cases[i].inner[0] ? nest(d, "{\"a\":", "1", "}")
                                  : nest(d - 1, "{\"a\":", "{}", "}"),
                nest(d / 2, "{\"a\":[", d % 2 ? "[1]" : cases[i].inner, "]}"),
            };
            for (size_t k = 0; k < 3; k++) {
                char *got = shape_n(rules[r], in[k], strlen(in[k]));
                ck_assert_msg((strcmp(got, "INVALID") != 0) == cases[i].ok,
                              "depth %zu kind %zu rules %s: %.20s", d, k, rules[r], got);
                free(got);
                free(in[k]);
            }
        }
    }
}
END_TEST

/* The oracle's serializer: every double it writes reads back as itself
 * (shortest of 15..17 digits), so comparing with it is exact. */
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
        ck_assert_int_eq(dom_shape_dump(v, sink_write, &out), 0);
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
    tcase_add_test(t, rename_collisions);
    tcase_add_test(t, root_arrays);
    suite_add_tcase(s, t);
    t = tcase_create("documents");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, scalar_and_invalid_bodies);
    tcase_add_test(t, whitespace_is_compacted_and_duplicates_kept);
    tcase_add_test(t, unicode);
    tcase_add_test(t, numbers_copied_as_written);
    tcase_add_test(t, numbers_of_any_size);
    tcase_add_test(t, numbers_invalid);
    tcase_add_test(t, strings_jansson_rejects);
    tcase_add_test(t, escaped_keys_match_rules);
    tcase_add_test(t, rename_growth);
    tcase_add_test(t, depth_limit);
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
