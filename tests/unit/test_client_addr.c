/* Unit tests for src/client_addr.c: the client behind trusted proxies. */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_addr.h"

static tg_cidr_t trusted[3];

static void setup(void)
{
    ck_assert_int_eq(tg_cidr_parse("10.0.0.0/8", &trusted[0]), 0);
    ck_assert_int_eq(tg_cidr_parse("127.0.0.1", &trusted[1]), 0);
    ck_assert_int_eq(tg_cidr_parse("fd00::/8", &trusted[2]), 0);
}

/* XFF values (NULL-terminated) as successive X-Forwarded-For lines, with an
 * unrelated field between them. Returns the client's text, or "peer". */
static const char *client(const char *const *lines)
{
    static char out[INET6_ADDRSTRLEN];
    tg_http_header_t hs[16];
    size_t n = 0;
    for (size_t i = 0; lines[i] != NULL; i++) {
        hs[n++] = (tg_http_header_t){"X-Other", 7, "9.9.9.9", 7};
        hs[n++] = (tg_http_header_t){i % 2 ? "x-forwarded-for" : "X-Forwarded-For", 15, lines[i],
                                     strlen(lines[i])};
    }
    struct sockaddr_storage ss;
    if (!tg_client_addr_from_xff(hs, n, trusted, 3, &ss))
        return "peer";
    const void *a = ss.ss_family == AF_INET
                        ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                        : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
    ck_assert_ptr_nonnull(inet_ntop(ss.ss_family, a, out, sizeof(out)));
    return out;
}

#define CLIENT(...) client((const char *const[]){__VA_ARGS__, NULL})

START_TEST(walk)
{
    ck_assert_str_eq(client((const char *const[]){NULL}), "peer");
    ck_assert_str_eq(CLIENT("203.0.113.7"), "203.0.113.7");
    ck_assert_str_eq(CLIENT(" 203.0.113.7 "), "203.0.113.7");
    /* rightmost untrusted wins; a client cannot prepend its way in */
    ck_assert_str_eq(CLIENT("1.1.1.1, 203.0.113.7"), "203.0.113.7");
    ck_assert_str_eq(CLIENT("1.1.1.1, 203.0.113.7, 10.0.0.2, 127.0.0.1"), "203.0.113.7");
    /* across lines: the last line is the nearest hop */
    ck_assert_str_eq(CLIENT("1.1.1.1", "203.0.113.7, 10.1.2.3"), "203.0.113.7");
    ck_assert_str_eq(CLIENT("1.1.1.1, 10.0.0.1", "10.1.2.3"), "1.1.1.1");
    /* empty elements and lines are skipped */
    ck_assert_str_eq(CLIENT("203.0.113.7,, ,", "", "10.0.0.9 ,"), "203.0.113.7");
    /* every element trusted: the leftmost */
    ck_assert_str_eq(CLIENT("10.0.0.1, 10.0.0.2", "127.0.0.1"), "10.0.0.1");
    /* IPv6 */
    ck_assert_str_eq(CLIENT("2001:db8::1, fd00::5"), "2001:db8::1");
    ck_assert_str_eq(CLIENT("2001:DB8:0:0::1"), "2001:db8::1");
    /* IPv4-mapped IPv6 is matched against the IPv4 blocks */
    ck_assert_str_eq(CLIENT("203.0.113.7, ::ffff:10.0.0.3"), "203.0.113.7");
}
END_TEST

START_TEST(malformed_stops)
{
    /* nothing usable before it: the peer */
    ck_assert_str_eq(CLIENT("203.0.113.7, garbage"), "peer");
    ck_assert_str_eq(CLIENT("unknown"), "peer");
    ck_assert_str_eq(CLIENT("203.0.113.7:443"), "peer");
    ck_assert_str_eq(CLIENT("[2001:db8::1]"), "peer");
    ck_assert_str_eq(CLIENT("fe80::1%eth0"), "peer");
    ck_assert_str_eq(CLIENT("1.2.3"), "peer");
    ck_assert_str_eq(CLIENT("1.2.3.256"), "peer");
    ck_assert_str_eq(CLIENT("1.2.3.4 5.6.7.8"), "peer");
    ck_assert_str_eq(CLIENT("\"1.2.3.4\""), "peer");
    ck_assert_str_eq(CLIENT("1.2.3.4\xff"), "peer");
    ck_assert_str_eq(CLIENT("1111:2222:3333:4444:5555:6666:7777:8888:9999:0000"), "peer");
    /* after trusted hops: the last trusted hop */
    ck_assert_str_eq(CLIENT("203.0.113.7, bogus, 10.0.0.2, 10.0.0.3"), "10.0.0.2");
    ck_assert_str_eq(CLIENT("203.0.113.7", "bogus", "10.0.0.3"), "10.0.0.3");
    /* left of the client does not matter */
    ck_assert_str_eq(CLIENT("bogus, 203.0.113.7, 10.0.0.3"), "203.0.113.7");
}
END_TEST

START_TEST(many_elements)
{
    /* 10,000 trusted hops then the client: linear, no limit needed. */
    size_t n = 10000;
    char *v = malloc(n * 9 + 16);
    char *p = v + sprintf(v, "198.51.100.1");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, ",10.0.0.1");
    ck_assert_str_eq(CLIENT(v), "198.51.100.1");
    free(v);
}
END_TEST

static Suite *client_addr_suite(void)
{
    Suite *s = suite_create("client_addr");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, walk);
    tcase_add_test(tc, malformed_stops);
    tcase_add_test(tc, many_elements);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(client_addr_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
