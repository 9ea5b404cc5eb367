/* Unit tests for plugins/key-auth: the keys file (errors at its
 * FILE:LINE:COL, digests, names, rotation lists), the constant-time lookup,
 * the plugin's config rules and its header matching. */
#include <check.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf_node.h"
#include "sensitive.h"

#include "plugins/key-auth/key_auth.c"
#include "plugins/key-auth/keys_file.c"

static char dir[64];
static tg_conf_doc_t *doc;
static tg_conf_err_t err;
static tg_sensitive_t *sens;

/* sha256("alice-key"), sha256("bob-key"), sha256("bob-key-2") as hex. */
static char hex_alice[65], hex_bob[65], hex_bob2[65];

static void hex_of(const char *key, char out[65])
{
    unsigned char d[32];
    SHA256((const unsigned char *)key, strlen(key), d);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tg-ka-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    hex_of("alice-key", hex_alice);
    hex_of("bob-key", hex_bob);
    hex_of("bob-key-2", hex_bob2);
    sens = tg_sensitive_new();
}

static void teardown(void)
{
    tg_conf_doc_free(doc);
    doc = NULL;
    tg_sensitive_free(sens);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_keys(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static int load(const char *text, tg_ka_keys_t *k)
{
    write_keys("keys.yaml", text);
    char path[128];
    snprintf(path, sizeof(path), "%s/keys.yaml", dir);
    memset(&err, 0, sizeof(err));
    return tg_ka_keys_load(path, k, &err);
}

static void load_error(const char *text, const char *want)
{
    tg_ka_keys_t k;
    ck_assert_int_eq(load(text, &k), -1);
    tg_ka_keys_free(&k);
    char where[160];
    snprintf(where, sizeof(where), "%s/keys.yaml:%s", dir, want);
    ck_assert_msg(strstr(err.msg, where) != NULL, "got '%s', want '%s'", err.msg, where);
}

static const tg_ka_consumer_t *match(const tg_ka_keys_t *k, const char *key)
{
    unsigned char d[32];
    SHA256((const unsigned char *)key, strlen(key), d);
    return tg_ka_keys_match(k, d);
}

START_TEST(keys_file_loads_and_matches)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "consumers:\n"
             "  - name: alice\n    sha256: \"%s\"\n    scopes: [orders:read, orders:write]\n"
             "  - name: bob\n    sha256: [\"%s\", \"%s\"]\n",
             hex_alice, hex_bob, hex_bob2);
    /* upper-case hex is the same digest */
    for (char *p = strstr(text, hex_bob); *p != '"'; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 32);
    tg_ka_keys_t k;
    ck_assert_int_eq(load(text, &k), 0);
    ck_assert_uint_eq(k.n_consumers, 2);
    ck_assert_uint_eq(k.n_keys, 3);
    ck_assert_str_eq(match(&k, "alice-key")->name, "alice");
    ck_assert_uint_eq(match(&k, "alice-key")->n_scopes, 2);
    ck_assert_str_eq(match(&k, "bob-key")->name, "bob");
    ck_assert_str_eq(match(&k, "bob-key-2")->name, "bob"); /* rotation */
    ck_assert_ptr_null(match(&k, "alice-key "));
    ck_assert_ptr_null(match(&k, ""));
    ck_assert_ptr_null(match(&k, "ALICE-KEY"));
    /* A digest equal but for its last byte, or its first, matches nothing. */
    unsigned char d[32];
    SHA256((const unsigned char *)"alice-key", 9, d);
    d[31] ^= 1;
    ck_assert_ptr_null(tg_ka_keys_match(&k, d));
    d[31] ^= 1;
    d[0] ^= 0x80;
    ck_assert_ptr_null(tg_ka_keys_match(&k, d));
    tg_ka_keys_free(&k);
}
END_TEST

/* Many consumers: every key is found through the index, others are not,
 * and a duplicate far from its first copy is reported at its own place. */
START_TEST(keys_file_many_keys)
{
    enum { N = 3000 };
    size_t cap = 64 + N * 110;
    char *text = malloc(cap), key[32], hex[65];
    size_t len = (size_t)snprintf(text, cap, "consumers:\n");
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        hex_of(key, hex);
        len +=
            (size_t)snprintf(text + len, cap - len, "  - { name: c%d, sha256: \"%s\" }\n", i, hex);
    }
    tg_ka_keys_t k;
    ck_assert_int_eq(load(text, &k), 0);
    ck_assert_uint_eq(k.n_keys, N);
    ck_assert_uint_ge(k.mask + 1, N); /* at least one bucket per key */
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        const tg_ka_consumer_t *c = match(&k, key);
        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(atoi(c->name + 1), i);
        snprintf(key, sizeof(key), "key-%d", N + i);
        ck_assert_ptr_null(match(&k, key));
    }
    /* the all-zero digest of the empty slots is never a match */
    unsigned char zero[32] = {0};
    ck_assert_ptr_null(tg_ka_keys_match(&k, zero));
    tg_ka_keys_free(&k);
    /* consumer 2999 repeats consumer 5's key: line 3001, after "  - { name: c2999, sha256: " */
    hex_of("key-5", hex);
    char *last = strstr(text, "name: c2999,");
    snprintf(last, cap - (size_t)(last - text), "name: c2999, sha256: \"%s\" }\n", hex);
    ck_assert_int_eq(load(text, &k), -1);
    tg_ka_keys_free(&k);
    ck_assert_msg(strstr(err.msg, "keys.yaml:3001:28: this digest is already the key of consumer "
                                  "\"c5\"") != NULL,
                  "%s", err.msg);
    free(text);
}
END_TEST

START_TEST(keys_file_empty_list_refuses_all)
{
    tg_ka_keys_t k;
    ck_assert_int_eq(load("consumers: []\n", &k), 0);
    ck_assert_uint_eq(k.n_keys, 0);
    ck_assert_ptr_null(match(&k, "alice-key"));
    unsigned char zero[32] = {0};
    ck_assert_ptr_null(tg_ka_keys_match(&k, zero));
    tg_ka_keys_free(&k);
}
END_TEST

START_TEST(keys_file_errors)
{
    char text[1024];
    load_error("{}\n", "1:1: missing required key 'consumers'");
    load_error("consumers: {}\n", "1:12: \"consumers\" must be a list");
    load_error("consumers: []\nextra: 1\n", "2:1: unknown key 'extra'");
    load_error("consumers:\n  - name: a\n    sha256: \"abc\"\n",
               "3:13: expected the key's SHA-256");
    snprintf(text, sizeof(text), "consumers:\n  - name: a\n    sha256: \"%.63sg\"\n", hex_alice);
    load_error(text, "3:13: expected the key's SHA-256");
    snprintf(text, sizeof(text), "consumers:\n  - name: a\n    sha256: [\"%s\", \"%s \"]\n",
             hex_alice, hex_bob);
    load_error(text, "3:82: expected the key's SHA-256");
    snprintf(text, sizeof(text),
             "consumers:\n  - name: a\n    sha256: \"%s\"\n"
             "  - name: b\n    sha256: \"%s\"\n",
             hex_alice, hex_alice);
    load_error(text, "5:13: this digest is already the key of consumer \"a\"");
    snprintf(text, sizeof(text),
             "consumers:\n  - name: a\n    sha256: \"%s\"\n"
             "  - name: a\n    sha256: \"%s\"\n",
             hex_alice, hex_bob);
    load_error(text, "4:11: consumer \"a\" is already defined");
    snprintf(text, sizeof(text), "consumers:\n  - name: \"a b\"\n    sha256: \"%s\"\n", hex_alice);
    load_error(text, "2:11: a consumer name is visible ASCII");
    snprintf(text, sizeof(text),
             "consumers:\n  - name: \"a\\r\\nX-Admin: 1\"\n    sha256: \"%s\"\n", hex_alice);
    load_error(text, "2:11: a consumer name is visible ASCII");
    load_error("consumers:\n  - name: a\n", "2:5: missing required key 'sha256'");
    snprintf(text, sizeof(text), "consumers:\n  - sha256: \"%s\"\n", hex_alice);
    load_error(text, "2:5: missing required key 'name'");
    snprintf(text, sizeof(text), "consumers:\n  - name: a\n    sha256: \"%s\"\n    key: x\n",
             hex_alice);
    load_error(text, "4:5: unknown key 'key'");
    load_error("consumers: [\n", "");
}
END_TEST

/* ---- the plugin's config ---- */

static int create_from(const char *yaml, ka_t **out)
{
    tg_conf_doc_free(doc);
    doc = NULL;
    ck_assert_int_eq(tg_conf_doc_parse("t.yaml", yaml, strlen(yaml), &doc, &err), 0);
    const tg_conf_node_t *node = tg_conf_map_get(tg_conf_doc_root(doc), "config");
    tg_plugin_env_t env = {.config_dir = dir, .sensitive = sens};
    memset(&err, 0, sizeof(err));
    void *inst = NULL;
    int rc = tg_plugin.create(node, &env, &inst, &err);
    *out = inst;
    return rc;
}

static void config_error(const char *yaml, const char *want)
{
    ka_t *c = NULL;
    ck_assert_int_eq(create_from(yaml, &c), -1);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err.msg, want) != NULL, "%s: got '%s', want '%s'", yaml, err.msg, want);
}

START_TEST(config_sources)
{
    write_keys("k.yaml", "consumers: []\n");
    ka_t *c;
    ck_assert_int_eq(create_from("config:\n  keys_file: k.yaml\n", &c), 0);
    ck_assert_str_eq(c->header, "X-Api-Key"); /* the default source */
    ck_assert_ptr_null(c->query);
    ck_assert(tg_sensitive_has(sens, TG_SENSITIVE_HEADER, "x-api-key", 9));
    tg_plugin.destroy(c);
    ck_assert_int_eq(create_from("config:\n  keys_file: k.yaml\n  query: api_key\n", &c), 0);
    ck_assert_ptr_null(c->header);
    ck_assert_str_eq(c->query, "api_key");
    ck_assert(tg_sensitive_has(sens, TG_SENSITIVE_QUERY, "api_key", 7));
    tg_plugin.destroy(c);
}
END_TEST

START_TEST(config_errors)
{
    write_keys("k.yaml", "consumers: []\n");
    config_error("config:\n  header: X-Key\n", "t.yaml:2:3: missing required key 'keys_file'");
    config_error("config:\n  keys_file: k.yaml\n  header: X-Key\n  query: key\n",
                 "t.yaml:4:10: \"header\" and \"query\" together");
    config_error("config:\n  keys_file: k.yaml\n  header: \"X Key\"\n",
                 "t.yaml:3:11: invalid header name");
    config_error("config:\n  keys_file: k.yaml\n  header: Content-Length\n",
                 "t.yaml:3:11: header \"Content-Length\" is the gateway's own");
    config_error("config:\n  keys_file: k.yaml\n  query: \"a=b\"\n",
                 "t.yaml:3:10: invalid parameter name");
    config_error("config:\n  keys_file: k.yaml\n  forward_consumer: X-Request-Id\n",
                 "t.yaml:3:21: header \"X-Request-Id\" is the gateway's own");
    config_error("config:\n  keys_file: k.yaml\n  forward_consumer: \"X:C\"\n",
                 "t.yaml:3:21: invalid header name");
    config_error("config:\n  keys_file: k.yaml\n  forward_consumer: x-api-key\n",
                 "the key's own header cannot carry the consumer");
    config_error("config:\n  keys_file: nope.yaml\n", "t.yaml:2:14: ");
    config_error("config:\n  keys_file: nope.yaml\n", "nope.yaml: cannot open");
    write_keys("bad.yaml", "consumers:\n  - name: a\n    sha256: x\n");
    config_error("config:\n  keys_file: bad.yaml\n", "/bad.yaml:3:13: expected the key's SHA-256");
    config_error("config:\n  keys_file: k.yaml\n  scopes: [\"\"]\n", "t.yaml:3:12:");
}
END_TEST

START_TEST(header_names_alike)
{
    ck_assert(same_header("X-Api-Key", 9, "x-api-key", 9));
    ck_assert(same_header("X_Api_Key", 9, "X-Api-Key", 9));
    ck_assert(!same_header("X-Api-Keys", 10, "X-Api-Key", 9));
    ck_assert(!same_header("X-Api-Kez", 9, "X-Api-Key", 9));
    /* '|' ^ 0x20 is '\\': not letters, so no case folding between them */
    ck_assert(!same_header("a|", 2, "a\\", 2));
}
END_TEST

START_TEST(scopes_all_required)
{
    ka_t c = {0};
    char *need[] = {"a", "b", NULL};
    c.scopes = need;
    c.n_scopes = 2;
    char *has_ab[] = {"b", "x", "a", NULL}, *has_a[] = {"a", NULL};
    tg_ka_consumer_t who = {.scopes = has_ab, .n_scopes = 3};
    ck_assert(has_scopes(&c, &who));
    who.scopes = has_a;
    who.n_scopes = 1;
    ck_assert(!has_scopes(&c, &who));
    c.n_scopes = 0;
    ck_assert(has_scopes(&c, &who));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("key_auth");
    TCase *t = tcase_create("key_auth");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, keys_file_loads_and_matches);
    tcase_add_test(t, keys_file_many_keys);
    tcase_add_test(t, keys_file_empty_list_refuses_all);
    tcase_add_test(t, keys_file_errors);
    tcase_add_test(t, config_sources);
    tcase_add_test(t, config_errors);
    tcase_add_test(t, header_names_alike);
    tcase_add_test(t, scopes_all_required);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
