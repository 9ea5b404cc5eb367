/* Unit tests for plugins/ip-rules: config errors, and matching IPv4, IPv6
 * and IPv4-mapped IPv6 clients against allow and deny lists (the blocks are
 * the core's tollgate/cidr.h, whose parser is tested on hostile text here). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "conf_node.h"

#include "plugins/ip-rules/ip_rules.c"

static tg_conf_doc_t *doc;
static tg_conf_err_t err;

static void teardown(void)
{
    tg_conf_doc_free(doc);
    doc = NULL;
}

static int create_from(const char *yaml, ip_rules_t **out)
{
    tg_conf_doc_free(doc);
    doc = NULL;
    ck_assert_int_eq(tg_conf_doc_parse("t.yaml", yaml, strlen(yaml), &doc, &err), 0);
    const tg_conf_node_t *node = tg_conf_map_get(tg_conf_doc_root(doc), "config");
    tg_plugin_env_t env = {0};
    memset(&err, 0, sizeof(err));
    void *inst = NULL;
    int rc = tg_plugin.create(node ? node : tg_conf_doc_root(doc), &env, &inst, &err);
    *out = inst;
    return rc;
}

static void config_error(const char *yaml, const char *want)
{
    ip_rules_t *c = NULL;
    ck_assert_int_eq(create_from(yaml, &c), -1);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err.msg, want) != NULL, "%s: got '%s', want '%s'", yaml, err.msg, want);
}

/* A sockaddr for text ("10.1.2.3", "::1", "::ffff:10.1.2.3"). */
static const struct sockaddr *addr(const char *text)
{
    static struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, text, &s4->sin_addr), 1);
    }
    return (const struct sockaddr *)&ss;
}

START_TEST(allow_list)
{
    ip_rules_t *c;
    ck_assert_int_eq(create_from("config:\n  allow: [\"10.0.0.0/8\", \"192.168.1.7\", "
                                 "\"2001:db8::/32\"]\n",
                                 &c),
                     0);
    ck_assert(c->allow);
    ck_assert_uint_eq(c->status, 403);
    ck_assert_str_eq(c->message, "forbidden");
    ck_assert(passes(c, addr("10.0.0.1")));
    ck_assert(passes(c, addr("10.255.255.255")));
    ck_assert(!passes(c, addr("11.0.0.1")));
    ck_assert(!passes(c, addr("9.255.255.255")));
    ck_assert(passes(c, addr("192.168.1.7")));
    ck_assert(!passes(c, addr("192.168.1.8")));
    ck_assert(passes(c, addr("2001:db8:ffff::1")));
    ck_assert(!passes(c, addr("2001:db9::1")));
    /* A dual-stack listener's IPv4 peer matches the IPv4 blocks. */
    ck_assert(passes(c, addr("::ffff:10.9.8.7")));
    ck_assert(!passes(c, addr("::ffff:11.9.8.7")));
    /* ...but an IPv6 address with the same low bytes is another address. */
    ck_assert(!passes(c, addr("::10.9.8.7")));
    ck_assert(!passes(c, addr("64:ff9b::10.9.8.7")));
    tg_plugin.destroy(c);
}
END_TEST

START_TEST(deny_list)
{
    ip_rules_t *c;
    ck_assert_int_eq(create_from("config:\n  deny: \"203.0.113.0/24\"\n  status: 404\n"
                                 "  message: not here\n",
                                 &c),
                     0);
    ck_assert(!c->allow);
    ck_assert_uint_eq(c->n, 1);
    ck_assert_uint_eq(c->status, 404);
    ck_assert_str_eq(c->message, "not here");
    ck_assert(!passes(c, addr("203.0.113.9")));
    ck_assert(!passes(c, addr("::ffff:203.0.113.9")));
    ck_assert(passes(c, addr("203.0.114.9")));
    ck_assert(passes(c, addr("::1")));
    tg_plugin.destroy(c);
}
END_TEST

START_TEST(mapped_blocks_are_ipv4)
{
    /* A block written in IPv4-mapped form is the IPv4 block. */
    ip_rules_t *c;
    ck_assert_int_eq(create_from("config:\n  allow: [\"::ffff:10.0.0.0/104\"]\n", &c), 0);
    ck_assert_int_eq(c->blocks[0].family, AF_INET);
    ck_assert_uint_eq(c->blocks[0].prefix, 8);
    ck_assert(passes(c, addr("10.1.1.1")));
    ck_assert(passes(c, addr("::ffff:10.1.1.1")));
    ck_assert(!passes(c, addr("11.1.1.1")));
    tg_plugin.destroy(c);
    /* the whole address space, per family */
    ck_assert_int_eq(create_from("config:\n  allow: [\"0.0.0.0/0\"]\n", &c), 0);
    ck_assert(passes(c, addr("1.2.3.4")));
    ck_assert(passes(c, addr("::ffff:1.2.3.4")));
    ck_assert(!passes(c, addr("2001:db8::1")));
    tg_plugin.destroy(c);
}
END_TEST

START_TEST(hostile_blocks)
{
    static const char *const bad[] = {
        "",
        "/8",
        "10.0.0.0/",
        "10.0.0.0/33",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/ 8",
        "10.0.0.0 /8",
        " 10.0.0.0",
        "10.0.0.0/8 ",
        "10.0.0/8",
        "10.0.0.0.0",
        "010.0.0.0/8",
        "10.0.0.0/0008",
        "::1/129",
        "::1/1000",
        "1::2::3",
        "10.0.0.0/8/8",
        "fe80::1%eth0",
        "localhost",
        "0x0a000000",
        "10.0.0.0\n",
        "[::1]",
        "::ffff:10.0.0.0/-96",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tg_cidr_t b;
        ck_assert_msg(tg_cidr_parse(bad[i], &b) == -1, "'%s' parsed", bad[i]);
    }
    tg_cidr_t b;
    ck_assert_int_eq(tg_cidr_parse("10.1.2.3/8", &b), 0); /* host bits cleared */
    ck_assert_uint_eq(b.addr[1], 0);
    ck_assert_int_eq(tg_cidr_parse("::/0", &b), 0);
    ck_assert_uint_eq(b.prefix, 0);
}
END_TEST

START_TEST(config_errors)
{
    config_error("config:\n  allow: [\"10.0.0.0/8\"]\n  deny: [\"10.1.0.0/16\"]\n",
                 "t.yaml:3:9: \"allow\" and \"deny\" together");
    config_error("config:\n  status: 403\n", "t.yaml:2:3: ip-rules needs \"allow\" or \"deny\"");
    config_error("config: {}\n", "ip-rules needs \"allow\" or \"deny\"");
    config_error("config:\n  allow: []\n", "t.yaml:2:10: expected at least one address block");
    config_error("config:\n  allow: [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n",
                 "t.yaml:2:25: invalid address block \"10.0.0.0/33\"");
    config_error("config:\n  deny: { a: b }\n", "expected an address block or a list of them");
    config_error("config:\n  allow: [\"10.0.0.0/8\"]\n  status: 200\n", "t.yaml:3:11:");
    config_error("config:\n  allow: [\"10.0.0.0/8\"]\n  satus: 403\n",
                 "unknown key 'satus' (did you mean 'status'?)");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ip_rules");
    TCase *t = tcase_create("ip_rules");
    tcase_add_checked_fixture(t, NULL, teardown);
    tcase_add_test(t, allow_list);
    tcase_add_test(t, deny_list);
    tcase_add_test(t, mapped_blocks_are_ipv4);
    tcase_add_test(t, hostile_blocks);
    tcase_add_test(t, config_errors);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
