/* Unit tests for src/conf_node.c: YAML -> node tree, ${ENV}, typed readers. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_node.h"

static tg_conf_doc_t *doc;
static tg_conf_err_t err;

static void teardown(void)
{
    tg_conf_doc_free(doc);
    doc = NULL;
}

static const tg_conf_node_t *parse_ok(const char *yaml)
{
    tg_conf_doc_free(doc);
    doc = NULL;
    int rc = tg_conf_doc_parse("t.yaml", yaml, strlen(yaml), &doc, &err);
    ck_assert_msg(rc == 0, "parse failed: %s", err.msg);
    return tg_conf_doc_root(doc);
}

static const char *parse_err(const char *yaml)
{
    tg_conf_doc_free(doc);
    doc = NULL;
    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(tg_conf_doc_parse("t.yaml", yaml, strlen(yaml), &doc, &err), -1);
    ck_assert_ptr_null(doc);
    return err.msg;
}

/* The value of key "v" in a one-line document "v: <text>": it sits at 1:4. */
static const tg_conf_node_t *value(const char *text)
{
    char yaml[256];
    snprintf(yaml, sizeof(yaml), "v: %s\n", text);
    const tg_conf_node_t *v = tg_conf_map_get(parse_ok(yaml), "v");
    ck_assert_ptr_nonnull(v);
    return v;
}

#define ck_pos(n, l, c)                    \
    do {                                   \
        ck_assert_uint_eq((n)->line, (l)); \
        ck_assert_uint_eq((n)->col, (c));  \
    } while (0)

/* ---- tree ---------------------------------------------------------------- */

START_TEST(tree_from_file)
{
    tg_conf_doc_t *d = NULL;
    ck_assert_int_eq(tg_conf_doc_load(TG_TEST_DATA "/conf_node_basic.yaml", &d, &err), 0);
    doc = d;
    const tg_conf_node_t *root = tg_conf_doc_root(d);
    ck_assert_int_eq(root->type, TG_CONF_MAP);
    ck_assert_str_eq(root->file, TG_TEST_DATA "/conf_node_basic.yaml");
    ck_assert_uint_eq(root->count, 6);
    ck_pos(root, 2, 1);
    ck_assert_str_eq(root->keys[0]->value, "name");
    ck_assert_int_eq(root->keys[0]->type, TG_CONF_SCALAR);
    ck_pos(root->keys[0], 2, 1);

    const tg_conf_node_t *name = tg_conf_map_get(root, "name");
    ck_assert_str_eq(name->value, "tollgate");
    ck_assert_uint_eq(name->len, 8);
    ck_assert(!name->quoted);
    ck_pos(name, 2, 7);

    const tg_conf_node_t *list = tg_conf_map_get(root, "list");
    ck_assert_int_eq(list->type, TG_CONF_SEQ);
    ck_assert_uint_eq(list->count, 3);
    ck_pos(list, 4, 3);
    ck_assert_str_eq(list->items[0]->value, "one");
    ck_pos(list->items[0], 4, 5);
    ck_assert_str_eq(list->items[1]->value, "two");
    ck_assert(list->items[1]->quoted);
    ck_pos(list->items[1], 5, 5);
    ck_assert_int_eq(list->items[2]->type, TG_CONF_MAP);
    ck_pos(list->items[2], 6, 5);
    ck_assert_str_eq(tg_conf_map_get(list->items[2], "k")->value, "v");

    ck_assert_int_eq(tg_conf_map_get(root, "empty")->type, TG_CONF_NULL);
    ck_assert_int_eq(tg_conf_map_get(root, "tilde")->type, TG_CONF_NULL);
    const tg_conf_node_t *qn = tg_conf_map_get(root, "quoted_null");
    ck_assert_int_eq(qn->type, TG_CONF_SCALAR);
    ck_assert_str_eq(qn->value, "null");

    const tg_conf_node_t *x =
        tg_conf_map_get(tg_conf_map_get(tg_conf_map_get(root, "nested"), "deep"), "x");
    ck_assert_str_eq(x->value, "1");
    ck_pos(x, 12, 8);
    ck_assert_ptr_null(tg_conf_map_get(root, "absent"));
    ck_assert_ptr_null(tg_conf_map_get(name, "name")); /* not a map */
}
END_TEST

START_TEST(null_spellings)
{
    const tg_conf_node_t *r = parse_ok("a:\nb: ~\nc: null\nd: Null\ne: NULL\nf: ''\ng: nul\n");
    const char *nulls[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(tg_conf_map_get(r, nulls[i])->type, TG_CONF_NULL);
    ck_assert_int_eq(tg_conf_map_get(r, "f")->type, TG_CONF_SCALAR);
    ck_assert_uint_eq(tg_conf_map_get(r, "f")->len, 0);
    ck_assert_int_eq(tg_conf_map_get(r, "g")->type, TG_CONF_SCALAR);
}
END_TEST

START_TEST(empty_document)
{
    const tg_conf_node_t *r = parse_ok("");
    ck_assert_int_eq(r->type, TG_CONF_NULL);
    ck_pos(r, 1, 1);
    ck_assert_str_eq(r->file, "t.yaml");
    r = parse_ok("# only a comment\n");
    ck_assert_int_eq(r->type, TG_CONF_NULL);
}
END_TEST

START_TEST(flow_and_block_sequences)
{
    const tg_conf_node_t *r = parse_ok("- a\n- [b, c]\n- {d: e}\n");
    ck_assert_int_eq(r->type, TG_CONF_SEQ);
    ck_assert_uint_eq(r->count, 3);
    ck_assert_ptr_null(r->keys);
    ck_assert_str_eq(r->items[1]->items[1]->value, "c");
    ck_pos(r->items[1]->items[1], 2, 7);
}
END_TEST

START_TEST(large_collections)
{
    /* Past the growth steps of the item arrays. */
    char yaml[8192] = "";
    size_t off = 0;
    for (int i = 0; i < 300; i++)
        off += (size_t)snprintf(yaml + off, sizeof(yaml) - off, "k%d: %d\n", i, i);
    const tg_conf_node_t *r = parse_ok(yaml);
    ck_assert_uint_eq(r->count, 300);
    ck_assert_str_eq(r->keys[299]->value, "k299");
    ck_assert_str_eq(r->items[299]->value, "299");
    ck_pos(r->items[299], 300, 7);
    ck_assert_str_eq(tg_conf_map_get(r, "k150")->value, "150");
}
END_TEST

/* ---- rejected YAML ------------------------------------------------------- */

START_TEST(syntax_errors)
{
    ck_assert_str_eq(parse_err("a: b: c\n"),
                     "t.yaml:1:5: mapping values are not allowed in this context");
    ck_assert_str_eq(parse_err("a:\n  - x\n b: 1\n"), "t.yaml:3:2: did not find expected key");
    ck_assert_str_eq(parse_err("key: [1, 2\n"), "t.yaml:2:1: did not find expected ',' or ']'");
    ck_assert_str_eq(parse_err("\tfoo: 1\n"),
                     "t.yaml:1:1: found character that cannot start any token");
    /* Reader errors only carry a byte offset; it is turned into line:col too. */
    ck_assert_str_eq(parse_err("a: 1\nb: \xff\n"), "t.yaml:2:4: invalid leading UTF-8 octet");
}
END_TEST

START_TEST(duplicate_keys)
{
    ck_assert_str_eq(parse_err("a: 1\nb: 2\na: 3\n"),
                     "t.yaml:3:1: duplicate key 'a' (first defined at line 1)");
    ck_assert_str_eq(parse_err("x:\n  y: 1\n  z: 2\n  y: 3\n"),
                     "t.yaml:4:3: duplicate key 'y' (first defined at line 2)");
    ck_assert_str_eq(parse_err("x: {a: 1, a: 2}\n"),
                     "t.yaml:1:11: duplicate key 'a' (first defined at line 1)");
    /* Same key in different maps is fine. */
    parse_ok("a: {k: 1}\nb: {k: 2}\n");
}
END_TEST

START_TEST(anchors_and_aliases)
{
    const tg_conf_node_t *r =
        parse_ok("a: &x 1\nb: *x\nc: &m {k: v}\nd: *m\ne: &s [1, 2]\nf: *s\n");
    const tg_conf_node_t *b = tg_conf_map_get(r, "b");
    ck_assert_str_eq(b->value, "1");
    ck_pos(b, 1, 4); /* the alias is the anchored node, with its position */
    ck_assert_ptr_eq(tg_conf_map_get(r, "d"), tg_conf_map_get(r, "c"));
    ck_assert_str_eq(tg_conf_map_get(tg_conf_map_get(r, "d"), "k")->value, "v");
    ck_assert_uint_eq(tg_conf_map_get(r, "f")->count, 2);
    /* Redefined: the latest definition wins. */
    r = parse_ok("a: &x 1\nb: &x 2\nc: *x\n");
    ck_assert_str_eq(tg_conf_map_get(r, "c")->value, "2");
    /* An alias inside the node it names is unknown (no cycles). */
    ck_assert_str_eq(parse_err("a: &m {k: *m}\n"),
                     "t.yaml:1:11: unknown anchor 'm' (an alias must follow its &m)");
    ck_assert_str_eq(parse_err("a: 1\nb: *x\n"),
                     "t.yaml:2:4: unknown anchor 'x' (an alias must follow its &x)");
    ck_assert_str_eq(parse_err("a: &k x\n*k : 1\n"), "t.yaml:2:1: an alias cannot be a map key");
}
END_TEST

START_TEST(merge_keys)
{
    const char *yaml = "base: &b {timeout: 5s, retries: 1, keepalive: 8}\n"
                       "extra: &e {retries: 3, balance: least_conn}\n"
                       "one:\n  <<: *b\n  retries: 2\n"
                       "two:\n  name: x\n  <<: [*e, *b]\n  keepalive: 1\n"
                       "quoted: {\"<<\": 1}\n";
    const tg_conf_node_t *r = parse_ok(yaml);
    const tg_conf_node_t *one = tg_conf_map_get(r, "one");
    ck_assert_uint_eq(one->count, 3);
    ck_assert_str_eq(tg_conf_map_get(one, "retries")->value, "2"); /* its own key wins */
    ck_assert_str_eq(tg_conf_map_get(one, "timeout")->value, "5s");
    ck_pos(tg_conf_map_get(one, "timeout"), 1, 20); /* where it was written */
    ck_assert_ptr_null(tg_conf_map_get(one, "<<"));
    const tg_conf_node_t *two = tg_conf_map_get(r, "two");
    ck_assert_uint_eq(two->count, 5);
    ck_assert_str_eq(tg_conf_map_get(two, "retries")->value, "3"); /* earlier map wins */
    ck_assert_str_eq(tg_conf_map_get(two, "balance")->value, "least_conn");
    ck_assert_str_eq(tg_conf_map_get(two, "keepalive")->value, "1");
    ck_assert_str_eq(tg_conf_map_get(two, "timeout")->value, "5s");
    /* Order as written: name, the merged keys, keepalive. */
    ck_assert_str_eq(two->keys[0]->value, "name");
    ck_assert_str_eq(two->keys[1]->value, "retries");
    ck_assert_str_eq(two->keys[4]->value, "keepalive");
    /* A quoted "<<" is an ordinary key. */
    ck_assert_str_eq(tg_conf_map_get(tg_conf_map_get(r, "quoted"), "<<")->value, "1");
    ck_assert_str_eq(parse_err("a:\n  <<: 1\n"),
                     "t.yaml:2:7: a '<<' merge key takes a map or a list of maps");
    ck_assert_str_eq(parse_err("a:\n  <<: [{k: 1}, 2]\n"),
                     "t.yaml:2:16: a '<<' merge key takes a list of maps");
    ck_assert_str_eq(parse_err("b: &b {k: 1}\na:\n  <<: *b\n  <<: *b\n"),
                     "t.yaml:4:3: duplicate key '<<' (first defined at line 3)");
}
END_TEST

START_TEST(alias_expansion_bounded)
{
    /* 10 levels of 10 aliases each: 10^10 nodes once expanded. */
    char yaml[4096];
    size_t off = (size_t)snprintf(yaml, sizeof(yaml), "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 10; i++) {
        off += (size_t)snprintf(yaml + off, sizeof(yaml) - off, "l%d: &l%d [", i, i);
        for (int k = 0; k < 10; k++)
            off += (size_t)snprintf(yaml + off, sizeof(yaml) - off, "%s*l%d", k ? ", " : "", i - 1);
        off += (size_t)snprintf(yaml + off, sizeof(yaml) - off, "]\n");
    }
    const char *msg = parse_err(yaml);
    ck_assert_msg(strstr(msg, "aliases expand to more than 1000000 nodes") != NULL, "%s", msg);
}
END_TEST

START_TEST(multiple_documents)
{
    ck_assert_str_eq(parse_err("a: 1\n---\nb: 2\n"),
                     "t.yaml:2:1: multiple documents are not supported");
    parse_ok("---\na: 1\n...\n");
}
END_TEST

START_TEST(non_scalar_keys)
{
    ck_assert_str_eq(parse_err("? [a, b]\n: 1\n"), "t.yaml:1:3: map keys must be scalars");
    ck_assert_str_eq(parse_err("x:\n  ? {a: 1}\n  : 1\n"), "t.yaml:2:5: map keys must be scalars");
}
END_TEST

START_TEST(nul_in_value)
{
    ck_assert_str_eq(parse_err("a: \"x\\0y\"\n"), "t.yaml:1:4: NUL character in value");
}
END_TEST

START_TEST(nesting_limit)
{
    char yaml[256];
    memset(yaml, '[', 64);
    memset(yaml + 64, ']', 64);
    yaml[128] = '\0';
    parse_ok(yaml);
    memset(yaml, '[', 65);
    memset(yaml + 65, ']', 65);
    yaml[130] = '\0';
    ck_assert_str_eq(parse_err(yaml), "t.yaml:1:65: nesting deeper than 64 levels");
}
END_TEST

START_TEST(load_missing_file)
{
    tg_conf_doc_t *d = (tg_conf_doc_t *)&err; /* must be reset to NULL */
    ck_assert_int_eq(tg_conf_doc_load("/nonexistent/tollgate.yaml", &d, &err), -1);
    ck_assert_ptr_null(d);
    ck_assert_str_eq(err.msg, "/nonexistent/tollgate.yaml: cannot open: No such file or directory");
    ck_assert_int_eq(tg_conf_doc_load(TG_TEST_DATA, &d, &err), -1);
    ck_assert_str_eq(err.msg, TG_TEST_DATA ": cannot read: Is a directory");
}
END_TEST

/* ---- ${ENV} -------------------------------------------------------------- */

START_TEST(env_substitution)
{
    setenv("TG_T_HOST", "example.com", 1);
    setenv("TG_T_EMPTY", "", 1);
    setenv("TG_T_REF", "${TG_T_HOST}", 1);
    unsetenv("TG_T_UNSET");
    ck_assert_str_eq(value("${TG_T_HOST}:80")->value, "example.com:80");
    ck_assert_uint_eq(value("${TG_T_HOST}:80")->len, 14);
    ck_assert_str_eq(value("\"a-${TG_T_HOST}-b\"")->value, "a-example.com-b");
    ck_assert_str_eq(value("${TG_T_UNSET:-fallback}")->value, "fallback");
    ck_assert_str_eq(value("${TG_T_UNSET:-}")->value, "");
    ck_assert_str_eq(value("${TG_T_EMPTY:-used when empty}")->value, "used when empty");
    ck_assert_str_eq(value("${TG_T_HOST:-unused}")->value, "example.com");
    ck_assert_str_eq(value("x${TG_T_EMPTY}y")->value, "xy");
    ck_assert_str_eq(value("cost $$5 and $$${TG_T_HOST}")->value, "cost $5 and $example.com");
    ck_assert_str_eq(value("\"^/a$\"")->value, "^/a$");
    ck_assert_str_eq(value("a$b")->value, "a$b");
    /* No second pass: a value that looks like a reference stays as is. */
    ck_assert_str_eq(value("${TG_T_REF}")->value, "${TG_T_HOST}");
    /* An empty expansion of a plain scalar is an empty string, not null. */
    ck_assert_int_eq(value("${TG_T_EMPTY}")->type, TG_CONF_SCALAR);
}
END_TEST

START_TEST(env_keys_untouched)
{
    setenv("TG_T_HOST", "example.com", 1);
    const tg_conf_node_t *r = parse_ok("${TG_T_HOST}: 1\n");
    ck_assert_str_eq(r->keys[0]->value, "${TG_T_HOST}");
}
END_TEST

START_TEST(env_errors)
{
    unsetenv("TG_T_UNSET");
    ck_assert_str_eq(parse_err("a: 1\nb: \"x ${TG_T_UNSET}\"\n"),
                     "t.yaml:2:4: environment variable TG_T_UNSET is not set");
    ck_assert_str_eq(parse_err("list:\n  - ${TG_T_UNSET}\n"),
                     "t.yaml:2:5: environment variable TG_T_UNSET is not set");
    ck_assert_str_eq(parse_err("v: ${TG_T_UNSET\n"), "t.yaml:1:4: unterminated '${' in value");
    ck_assert_str_eq(parse_err("v: a${1X}\n"),
                     "t.yaml:1:4: invalid environment variable reference '${1X}'");
    ck_assert_str_eq(parse_err("v: ${}\n"),
                     "t.yaml:1:4: invalid environment variable reference '${}'");
    ck_assert_str_eq(parse_err("v: ${A-B}\n"),
                     "t.yaml:1:4: invalid environment variable reference '${A-B}'");
    ck_assert_str_eq(parse_err("v: ${A:x}\n"),
                     "t.yaml:1:4: invalid environment variable reference '${A:x}'");
}
END_TEST

/* ---- readers ------------------------------------------------------------- */

START_TEST(error_format)
{
    tg_conf_node_t n = {.file = "f.yaml", .line = 12, .col = 3};
    ck_assert_int_eq(tg_conf_error(&err, &n, "bad %s %d", "thing", 7), -1);
    ck_assert_str_eq(err.msg, "f.yaml:12:3: bad thing 7");
    ck_assert_int_eq(tg_conf_error(&err, NULL, "no position"), -1);
    ck_assert_str_eq(err.msg, "no position");
    /* Truncated, never overflowing. */
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tg_conf_error(&err, &n, "%s", big);
    ck_assert_uint_eq(strlen(err.msg), sizeof(err.msg) - 1);
}
END_TEST

START_TEST(check_keys)
{
    static const char *const allowed[] = {"a", "b", NULL};
    const tg_conf_node_t *r = parse_ok("a: 1\nb: 2\n");
    ck_assert_int_eq(tg_conf_check_keys(r, allowed, &err), 0);
    r = parse_ok("a: 1\n  # c\nfoo: 2\n");
    ck_assert_int_eq(tg_conf_check_keys(r, allowed, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:3:1: unknown key 'foo' (known: a, b)");
    ck_assert_int_eq(tg_conf_check_keys_in(r, allowed, "limits", &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:3:1: unknown key 'foo' in limits (known: a, b)");
    ck_assert_int_eq(tg_conf_check_keys(tg_conf_map_get(r, "a"), allowed, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:4: expected a map, got '1'");
    r = parse_ok("- 1\n");
    ck_assert_int_eq(tg_conf_check_keys(r, allowed, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:1: expected a map");
}
END_TEST

START_TEST(get_string)
{
    const char *s = NULL;
    ck_assert_int_eq(tg_conf_get_string(value("hello world"), &s, &err), 0);
    ck_assert_str_eq(s, "hello world");
    ck_assert_int_eq(tg_conf_get_string(value("'123'"), &s, &err), 0);
    ck_assert_str_eq(s, "123");
    ck_assert_int_eq(tg_conf_get_string(value("~"), &s, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:4: expected a string");
    ck_assert_int_eq(tg_conf_get_string(value("[a]"), &s, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:4: expected a string");
    ck_assert_int_eq(tg_conf_get_string(value("{a: b}"), &s, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:4: expected a string");
}
END_TEST

START_TEST(get_bool)
{
    static const struct {
        const char *text;
        bool value;
    } ok[] = {{"true", true}, {"false", false}, {"yes", true},  {"no", false},
              {"on", true},   {"off", false},   {"True", true}, {"OFF", false}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        bool b = !ok[i].value;
        ck_assert_int_eq(tg_conf_get_bool(value(ok[i].text), &b, &err), 0);
        ck_assert_int_eq(b, ok[i].value);
    }
    bool b;
    ck_assert_int_eq(tg_conf_get_bool(value("1"), &b, &err), -1);
    ck_assert_str_eq(err.msg,
                     "t.yaml:1:4: expected a boolean (true/false, yes/no, on/off), got '1'");
    ck_assert_int_eq(tg_conf_get_bool(value(""), &b, &err), -1);
    ck_assert_str_eq(
        err.msg,
        "t.yaml:1:3: expected a boolean (true/false, yes/no, on/off)"); /* empty value: libyaml marks it right after the colon */
}
END_TEST

START_TEST(get_uint)
{
    uint64_t v = 0;
    ck_assert_int_eq(tg_conf_get_uint(value("42"), 0, 100, &v, &err), 0);
    ck_assert_uint_eq(v, 42);
    ck_assert_int_eq(tg_conf_get_uint(value("0"), 0, 100, &v, &err), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(tg_conf_get_uint(value("18446744073709551615"), 0, UINT64_MAX, &v, &err), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert_int_eq(tg_conf_get_uint(value("101"), 1, 100, &v, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:4: must be between 1 and 100");
    ck_assert_int_eq(tg_conf_get_uint(value("0"), 1, 100, &v, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:4: must be between 1 and 100");
    ck_assert_int_eq(tg_conf_get_uint(value("18446744073709551616"), 0, UINT64_MAX, &v, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:4: must be between 0 and 18446744073709551615");
    ck_assert_int_eq(tg_conf_get_uint(value("-1"), 0, 100, &v, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:4: expected an integer, got '-1'");
    ck_assert_int_eq(tg_conf_get_uint(value("1.5"), 0, 100, &v, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:4: expected an integer, got '1.5'");
    ck_assert_int_eq(tg_conf_get_uint(value("\"\""), 0, 100, &v, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:4: expected an integer, got ''");
    ck_assert_int_eq(tg_conf_get_uint(value("[1]"), 0, 100, &v, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:4: expected an integer");
    ck_assert_uint_eq(v, 18446744073709551615u); /* untouched on error */
}
END_TEST

START_TEST(get_duration)
{
    static const struct {
        const char *text;
        uint64_t ms;
    } ok[] = {{"250ms", 250},
              {"10s", 10000},
              {"1m", 60000},
              {"2h", 7200000},
              {"1d", 86400000},
              {"1m30s", 90000},
              {"0s", 0},
              {"1h1m1s1ms", 3661001},
              {"90m", 5400000},
              {"1.5s", 1500},
              {"0.25s", 250},
              {"\"5s\"", 5000},
              {"213503982334d", 213503982334ull * 86400000}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 1;
        ck_assert_msg(tg_conf_get_duration_ms(value(ok[i].text), &v, &err) == 0, "%s: %s",
                      ok[i].text, err.msg);
        ck_assert_uint_eq(v, ok[i].ms);
    }
    static const struct {
        const char *text;
        const char *msg;
    } bad[] = {
        {"10", "t.yaml:1:4: expected a duration like 10s, got '10'"},
        {"10x", "t.yaml:1:4: expected a duration like 10s, got '10x'"},
        {"-1s", "t.yaml:1:4: expected a duration like 10s, got '-1s'"},
        {"1.s", "t.yaml:1:4: expected a duration like 10s, got '1.s'"},
        {"0.5ms", "t.yaml:1:4: duration '0.5ms' is finer than a millisecond"},
        {"s", "t.yaml:1:4: expected a duration like 10s, got 's'"},
        {"10s5", "t.yaml:1:4: expected a duration like 10s, got '10s5'"},
        {"\"10 s\"", "t.yaml:1:4: expected a duration like 10s, got '10 s'"},
        {"\"\"", "t.yaml:1:4: expected a duration like 10s, got ''"},
        {"~", "t.yaml:1:4: expected a duration like 10s"},
        {"{a: 1}", "t.yaml:1:4: expected a duration like 10s"},
        {"99999999999999999999s", "t.yaml:1:4: duration '99999999999999999999s' is too large"},
        {"213503982335d", "t.yaml:1:4: duration '213503982335d' is too large"},
        {"18446744073709551615ms1ms",
         "t.yaml:1:4: duration '18446744073709551615ms1ms' is too large"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 7;
        ck_assert_int_eq(tg_conf_get_duration_ms(value(bad[i].text), &v, &err), -1);
        ck_assert_str_eq(err.msg, bad[i].msg);
    }
}
END_TEST

START_TEST(get_size)
{
    static const struct {
        const char *text;
        uint64_t bytes;
    } ok[] = {{"0", 0},
              {"512", 512},
              {"512B", 512},
              {"16KiB", 16384},
              {"10MiB", 10485760},
              {"1GiB", 1073741824},
              {"16KB", 16000},
              {"10MB", 10000000},
              {"1GB", 1000000000},
              {"16k", 16384},
              {"10m", 10485760},
              {"1g", 1073741824},
              {"16K", 16384},
              {"2M", 2097152},
              {"1G", 1073741824},
              {"17179869183GiB", 17179869183ull << 30}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 1;
        ck_assert_msg(tg_conf_get_size(value(ok[i].text), &v, &err) == 0, "%s: %s", ok[i].text,
                      err.msg);
        ck_assert_uint_eq(v, ok[i].bytes);
    }
    static const struct {
        const char *text;
        const char *msg;
    } bad[] = {
        {"10X", "t.yaml:1:4: expected a size like 16KiB, got '10X'"},
        {"-1", "t.yaml:1:4: expected a size like 16KiB, got '-1'"},
        {"1.5k", "t.yaml:1:4: expected a size like 16KiB, got '1.5k'"},
        {"KiB", "t.yaml:1:4: expected a size like 16KiB, got 'KiB'"},
        {"16kib", "t.yaml:1:4: expected a size like 16KiB, got '16kib'"},
        {"16KiBB", "t.yaml:1:4: expected a size like 16KiB, got '16KiBB'"},
        {"~", "t.yaml:1:4: expected a size like 16KiB"},
        {"17179869184GiB", "t.yaml:1:4: size '17179869184GiB' is too large"},
        {"18446744073709551616", "t.yaml:1:4: size '18446744073709551616' is too large"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 7;
        ck_assert_int_eq(tg_conf_get_size(value(bad[i].text), &v, &err), -1);
        ck_assert_str_eq(err.msg, bad[i].msg);
    }
}
END_TEST

static Suite *conf_node_suite(void)
{
    Suite *s = suite_create("conf_node");
    TCase *tree = tcase_create("tree");
    tcase_add_checked_fixture(tree, NULL, teardown);
    tcase_add_test(tree, tree_from_file);
    tcase_add_test(tree, null_spellings);
    tcase_add_test(tree, empty_document);
    tcase_add_test(tree, flow_and_block_sequences);
    tcase_add_test(tree, large_collections);
    suite_add_tcase(s, tree);

    TCase *bad = tcase_create("rejected");
    tcase_add_checked_fixture(bad, NULL, teardown);
    tcase_add_test(bad, syntax_errors);
    tcase_add_test(bad, duplicate_keys);
    tcase_add_test(bad, anchors_and_aliases);
    tcase_add_test(bad, merge_keys);
    tcase_add_test(bad, alias_expansion_bounded);
    tcase_add_test(bad, multiple_documents);
    tcase_add_test(bad, non_scalar_keys);
    tcase_add_test(bad, nul_in_value);
    tcase_add_test(bad, nesting_limit);
    tcase_add_test(bad, load_missing_file);
    suite_add_tcase(s, bad);

    TCase *env = tcase_create("env");
    tcase_add_checked_fixture(env, NULL, teardown);
    tcase_add_test(env, env_substitution);
    tcase_add_test(env, env_keys_untouched);
    tcase_add_test(env, env_errors);
    suite_add_tcase(s, env);

    TCase *rd = tcase_create("readers");
    tcase_add_checked_fixture(rd, NULL, teardown);
    tcase_add_test(rd, error_format);
    tcase_add_test(rd, check_keys);
    tcase_add_test(rd, get_string);
    tcase_add_test(rd, get_bool);
    tcase_add_test(rd, get_uint);
    tcase_add_test(rd, get_duration);
    tcase_add_test(rd, get_size);
    suite_add_tcase(s, rd);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(conf_node_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
