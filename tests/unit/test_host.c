#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

typedef struct {
    const char *in;
    bool ok;
} case_t;

static const case_t cases[] = {
    /* reg-name */
    {"example.com", true},
    {"Example.COM", true},
    {"a", true},
    {"localhost", true},
    {"xn--caf-dma.example", true},
    {"under_score.internal", true},
    {"tilde~name", true},
    {"a-b.c-d", true},
    {"example.com.", true}, /* FQDN with the root label */
    {"example.com:8080", true},
    {"example.com.:443", true},
    {"a:1", true},
    {"a:65535", true},
    {"a:080800", false}, /* six digits */
    {"a:08080", true},
    {"a:0080", true},
    {"1x.example", true}, /* numeric-looking first label is fine */
    {"example.1x", true}, /* last label not all digits */
    {"example.x0", true},
    {"0xg", true}, /* not hex: a name */
    /* IPv4 */
    {"127.0.0.1", true},
    {"127.0.0.1:80", true},
    {"255.255.255.255", true},
    {"0.0.0.0", true},
    /* IPv6 */
    {"[::1]", true},
    {"[::1]:8080", true},
    {"[2001:db8::1]", true},
    {"[2001:DB8::A]", true},
    {"[::ffff:192.0.2.1]", true},
    {"[1:2:3:4:5:6:7:8]", true},
    /* empty and missing parts */
    {"", false},
    {":80", false},
    {"a:", false}, /* empty port */
    {"[::1]:", false},
    {".", false},
    {"..", false},
    {".example.com", false},
    {"a..b", false},
    {"a..", false},
    /* ports */
    {"a:0", false},
    {"a:65536", false},
    {"a:99999", false},
    {"a:-1", false},
    {"a:+80", false},
    {"a:80a", false},
    {"a:http", false},
    {"a: 80", false},
    {"a:80:80", false},
    {"a:1e3", false},
    {"a:0x50", false},
    /* percent, userinfo, sub-delims, other characters */
    {"a%41", false},
    {"%61", false},
    {"a%2eb", false},
    {"exa%00mple", false},
    {"user@host", false},
    {"user:pw@host", false},
    {"@host", false},
    {"a,b", false},
    {"a;b", false},
    {"a!b", false},
    {"a$b", false},
    {"a&b", false},
    {"a'b", false},
    {"a(b)", false},
    {"a*b", false},
    {"*.example.com", false},
    {"a+b", false},
    {"a=b", false},
    {"a b", false},
    {"a\tb", false},
    {"a/b", false},
    {"a\\b", false},
    {"a?b", false},
    {"a#b", false},
    {"a\"b", false},
    {"a<b>", false},
    {"caf\xc3\xa9.example", false},
    {"a\x7f", false},
    /* brackets */
    {"[foo]", false},
    {"[foo]:80", false},
    {"[example.com]", false},
    {"[127.0.0.1]", false},
    {"[]", false},
    {"[", false},
    {"[::1", false},
    {"::1]", false},
    {"[::1]]", false},
    {"[::1]x", false},
    {"[::1]80", false},
    {"x[::1]", false},
    {"a]", false},
    {"[fe80::1%25eth0]", false}, /* RFC 6874 zone id */
    {"[fe80::1%eth0]", false},
    {"[v1.fe80::a+en1]", false}, /* IPvFuture */
    {"[::1::2]", false},
    {"[12345::]", false},
    {"[::g]", false},
    {"[ ::1]", false},
    {"::1", false}, /* unbracketed IPv6 */
    {"2001:db8::1", false},
    /* names a URL parser reads as IPv4 addresses */
    {"127.1", false},
    {"127.0.1", false},
    {"2130706433", false},
    {"0x7f000001", false},
    {"0x7f.0.0.1", false},
    {"0x7F.1", false},
    {"017700000001", false},
    {"127.0.0.01", false},
    {"127.000.0.1", false},
    {"1.2.3.4.5", false},
    {"256.0.0.1", false},
    {"1.2.3.256", false},
    {"example.123", false},
    {"example.0x", false},
    {"1.2.3.4.", false},
    {"1.2.3.4:", false},
    {"0x", false},
    {"0", false},
    {"80", false},
};

static bool check(const char *s, size_t n)
{
    /* exact-size copy: ASan catches a read past n */
    char *buf = malloc(n ? n : 1);
    memcpy(buf, s, n);
    bool ok = tg_host_valid(buf, n);
    free(buf);
    return ok;
}

START_TEST(test_table)
{
    const case_t *c = &cases[_i];
    ck_assert_msg(check(c->in, strlen(c->in)) == c->ok, "'%s': expected %s", c->in,
                  c->ok ? "valid" : "invalid");
}
END_TEST

/* A NUL inside must not end the value early (inet_pton gets a copy). */
START_TEST(test_embedded_nul)
{
    ck_assert(!check("[::1\0]", 6));
    ck_assert(!check("[::1]\0", 6));
    ck_assert(!check("127.0.0.1\0.evil", 15));
    ck_assert(!check("a\0b", 3));
    ck_assert(!check("a:80\0", 5));
    ck_assert(!check("\0", 1));
}
END_TEST

/* The length is honoured: only the first n bytes count. */
START_TEST(test_prefix_only)
{
    ck_assert(check("example.com:80", 11));
    ck_assert(!check("example.com:80", 12)); /* "example.com:" */
    ck_assert(check("[::1]:80", 5));
    ck_assert(!check("[::1]:80", 4));
}
END_TEST

START_TEST(test_lengths)
{
    char name[300];
    memset(name, 'a', sizeof(name));
    ck_assert(check(name, 253));
    ck_assert(!check(name, 254));
    name[253] = '.';
    ck_assert(check(name, 254)); /* 253 + the root label's dot */
    /* the longest IPv6 text form, and one past the buffer */
    const char *v6 = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]";
    ck_assert(check(v6, strlen(v6)));
    const char *longer = "[0000:ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]";
    ck_assert(!check(longer, strlen(longer)));
    char huge[400] = "[";
    memset(huge + 1, ':', 300);
    huge[301] = ']';
    ck_assert(!check(huge, 302));
}
END_TEST

/* Every single byte alone and after a valid name: only unreserved pass. */
START_TEST(test_all_bytes)
{
    for (int b = 0; b < 256; b++) {
        char s[3] = {'a', (char)b, 'b'};
        bool unreserved = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
                          (b >= '0' && b <= '9') || b == '-' || b == '.' || b == '_' || b == '~';
        ck_assert_msg(check(s, 3) == unreserved, "byte 0x%02x", b);
    }
}
END_TEST

static Suite *host_suite(void)
{
    Suite *s = suite_create("host");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_table, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(tc, test_embedded_nul);
    tcase_add_test(tc, test_prefix_only);
    tcase_add_test(tc, test_lengths);
    tcase_add_test(tc, test_all_bytes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(host_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
