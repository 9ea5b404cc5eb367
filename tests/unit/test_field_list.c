/* Unit tests for src/field_list.c: comma lists on hostile input. Every value
 * is copied to the end of a malloc'd block so that ASan catches a read past
 * its end. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "field_list.h"

static char *at_end(const char *s, size_t n)
{
    char *b = malloc(n ? n : 1);
    memcpy(b, s, n);
    return b;
}

/* The elements of v joined by '|', forward and (reversed) backward. */
static void elements(const char *s, size_t n, char *fwd, char *bwd)
{
    char *v = at_end(s, n);
    tg_span_t e;
    size_t pos = 0;
    fwd[0] = bwd[0] = '\0';
    while (tg_list_next(v, n, &pos, &e)) {
        if (fwd[0])
            strcat(fwd, "|");
        strncat(fwd, e.p, e.len);
    }
    ck_assert_uint_eq(pos, n);
    size_t end = n;
    char tmp[512];
    while (tg_list_prev(v, n, &end, &e)) {
        strcpy(tmp, bwd);
        memcpy(bwd, e.p, e.len);
        bwd[e.len] = '\0';
        if (tmp[0]) {
            strcat(bwd, "|");
            strcat(bwd, tmp);
        }
    }
    ck_assert_uint_eq(end, 0);
    free(v);
}

static const struct {
    const char *in;
    const char *out;
} lists[] = {
    {"", ""},
    {",", ""},
    {" , ,\t,", ""},
    {"a", "a"},
    {" a ", "a"},
    {"a,b", "a|b"},
    {"a , b", "a|b"},
    {",,a,,b,,", "a|b"},
    {"\ta\t,\tb c\t", "a|b c"},
    {"\"a,b\"", "\"a|b\""},
    {"h2c, websocket", "h2c|websocket"},
    {"x,", "x"},
    {",x", "x"},
    {"\xff,\x80", "\xff|\x80"},
};

START_TEST(test_lists)
{
    char fwd[512], bwd[512];
    const char *in = lists[_i].in;
    elements(in, strlen(in), fwd, bwd);
    ck_assert_str_eq(fwd, lists[_i].out);
    ck_assert_str_eq(bwd, lists[_i].out);
}
END_TEST

START_TEST(test_has)
{
    ck_assert(tg_list_has("close, Upgrade", 14, "upgrade", 7));
    ck_assert(tg_list_has("UPGRADE", 7, "upgrade", 7));
    ck_assert(!tg_list_has("upgrades", 8, "upgrade", 7));
    ck_assert(!tg_list_has("up grade", 8, "upgrade", 7));
    ck_assert(!tg_list_has("", 0, "upgrade", 7));
    ck_assert(!tg_list_has("\"upgrade\"", 9, "upgrade", 7));
}
END_TEST

static int ws(const char *s)
{
    char *v = at_end(s, strlen(s));
    int r = tg_list_upgrade_websocket(v, strlen(s));
    free(v);
    return r;
}

START_TEST(test_upgrade_websocket)
{
    ck_assert_int_eq(ws("websocket"), 1);
    ck_assert_int_eq(ws("WebSocket"), 1);
    ck_assert_int_eq(ws("WEBSOCKET"), 1);
    ck_assert_int_eq(ws("h2c, websocket"), 1);
    ck_assert_int_eq(ws("websocket, h2c"), 1);
    ck_assert_int_eq(ws(" ,websocket,, "), 1);
    ck_assert_int_eq(ws("HTTP/2.0, SHTTP/1.3, IRC/6.9, websocket"), 1);
    ck_assert_int_eq(ws("h2c"), 0);
    ck_assert_int_eq(ws(""), 0);
    ck_assert_int_eq(ws(","), 0);
    ck_assert_int_eq(ws("websocketx"), 0);
    ck_assert_int_eq(ws("notwebsocket"), 0);
    ck_assert_int_eq(ws("websocket/13"), 0);
    ck_assert_int_eq(ws("web socket"), -1);
    ck_assert_int_eq(ws("websocket;q=1"), -1);
    ck_assert_int_eq(ws("\"websocket\""), -1);
    ck_assert_int_eq(ws("websocket, h2c/"), -1);
    ck_assert_int_eq(ws("websocket, /1"), -1);
    ck_assert_int_eq(ws("websocket, a/b/c"), -1);
    ck_assert_int_eq(ws("websocket, \xff"), -1);
    ck_assert_int_eq(ws("websocket\x7f"), -1);
}
END_TEST

START_TEST(test_only_websocket)
{
    ck_assert(tg_list_only_websocket("websocket", 9));
    ck_assert(tg_list_only_websocket("WebSocket", 9));
    ck_assert(tg_list_only_websocket("websocket, websocket", 20));
    ck_assert(!tg_list_only_websocket("", 0));
    ck_assert(!tg_list_only_websocket("h2c", 3));
    ck_assert(!tg_list_only_websocket("websocket, h2c", 14));
    ck_assert(!tg_list_only_websocket("websocket/13", 12));
}
END_TEST

START_TEST(test_token)
{
    ck_assert(tg_token_valid("X-User-Id", 9));
    ck_assert(tg_token_valid("!#$%&'*+-.^_`|~09az", 19));
    ck_assert(!tg_token_valid("", 0));
    ck_assert(!tg_token_valid("a b", 3));
    ck_assert(!tg_token_valid("a:b", 3));
    ck_assert(!tg_token_valid("a\0b", 3));
}
END_TEST

START_TEST(test_field_value)
{
    ck_assert(tg_field_value_valid("", 0));
    ck_assert(tg_field_value_valid("a b\tc", 5));
    ck_assert(tg_field_value_valid("caf\xc3\xa9", 5)); /* obs-text */
    ck_assert(!tg_field_value_valid("a\r\nX: y", 8));
    ck_assert(!tg_field_value_valid("a\nb", 3));
    ck_assert(!tg_field_value_valid("a\0b", 3));
    ck_assert(!tg_field_value_valid("a\x01", 2));
    ck_assert(!tg_field_value_valid("a\x7f", 2));
}
END_TEST

/* A long list of empty elements: linear, and nothing found. */
START_TEST(test_long)
{
    size_t n = 1u << 20;
    char *v = malloc(n);
    memset(v, ',', n);
    size_t pos = 0, end = n;
    tg_span_t e;
    ck_assert(!tg_list_next(v, n, &pos, &e));
    ck_assert(!tg_list_prev(v, n, &end, &e));
    v[n - 1] = 'x';
    v[0] = 'y';
    pos = 0;
    ck_assert(tg_list_next(v, n, &pos, &e));
    ck_assert(e.len == 1 && e.p[0] == 'y');
    ck_assert(tg_list_next(v, n, &pos, &e));
    ck_assert(e.len == 1 && e.p[0] == 'x');
    ck_assert(!tg_list_next(v, n, &pos, &e));
    free(v);
}
END_TEST

static Suite *field_list_suite(void)
{
    Suite *s = suite_create("field_list");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_lists, 0, (int)(sizeof(lists) / sizeof(lists[0])));
    tcase_add_test(tc, test_has);
    tcase_add_test(tc, test_upgrade_websocket);
    tcase_add_test(tc, test_only_websocket);
    tcase_add_test(tc, test_token);
    tcase_add_test(tc, test_field_value);
    tcase_add_test(tc, test_long);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(field_list_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
