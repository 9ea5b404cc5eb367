/* Unit tests for src/conf_table.c: tg_conf_read() on hostile configs, one
 * test per promise of include/tollgate/conf.h. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_errors.h"
#include "conf_node.h"

static tg_conf_doc_t *doc;
static tg_conf_err_t err;

static void teardown(void)
{
    tg_conf_doc_free(doc);
    doc = NULL;
}

static const tg_conf_node_t *parse(const char *yaml)
{
    tg_conf_doc_free(doc);
    doc = NULL;
    int rc = tg_conf_doc_parse("t.yaml", yaml, strlen(yaml), &doc, &err);
    ck_assert_msg(rc == 0, "parse failed: %s", err.msg);
    return tg_conf_doc_root(doc);
}

/* ---- a table of every type ----------------------------------------------- */

typedef enum { COLOUR_RED, COLOUR_GREEN, COLOUR_BLUE } colour_t;

typedef struct {
    char *name;
    bool on;
    uint8_t small;
    uint16_t mid;
    uint32_t port;
    uint64_t big;
    uint64_t timeout_ms;
    uint32_t size;
    colour_t colour;
    char **tags;
    size_t ntags;
    const tg_conf_node_t *raw;
    int custom; /* the value's length, or -1 when called for an absent key */
    int calls;
} all_t;

static const char *const colours[] = {"red", "green", "blue", NULL};

static int parse_custom(const tg_conf_node_t *n, void *out, tg_conf_err_t *e)
{
    all_t *a = out; /* no TG_CONF_AT: the whole struct */
    a->calls++;
    if (n == NULL) {
        a->custom = -1;
        return 0;
    }
    if (n->type == TG_CONF_MAP)
        return tg_conf_error(e, n, "custom wants no map");
    a->custom = (int)n->len;
    return 0;
}

static const tg_conf_field_t all_fields[] = {
    {"name", TG_CONF_FIELD_STRING, TG_CONF_AT(all_t, name), .max = 8, .def_str = "anon",
     .flags = TG_CONF_NONEMPTY},
    {"on", TG_CONF_FIELD_BOOL, TG_CONF_AT(all_t, on), .def = true},
    {"small", TG_CONF_FIELD_UINT, TG_CONF_AT(all_t, small), .def = 7},
    {"mid", TG_CONF_FIELD_UINT, TG_CONF_AT(all_t, mid), .min = 10},
    {"port", TG_CONF_FIELD_UINT, TG_CONF_AT(all_t, port), .min = 1, .max = 65535, .def = 80},
    {"big", TG_CONF_FIELD_UINT, TG_CONF_AT(all_t, big), .min = 1},
    {"timeout", TG_CONF_FIELD_DURATION, TG_CONF_AT(all_t, timeout_ms), .min = 1000, .max = 3600000,
     .def = 30000},
    {"size", TG_CONF_FIELD_SIZE, TG_CONF_AT(all_t, size), .max = 1 << 20, .def = 4096},
    {"colour", TG_CONF_FIELD_ENUM, TG_CONF_AT(all_t, colour), .names = colours, .def = COLOUR_BLUE},
    {"tags", TG_CONF_FIELD_STRINGS, TG_CONF_AT(all_t, tags), .count_offset = offsetof(all_t, ntags),
     .max = 3, .flags = TG_CONF_NONEMPTY},
    {"raw", TG_CONF_FIELD_NODE, TG_CONF_AT(all_t, raw)},
    {"custom", TG_CONF_FIELD_CUSTOM, .parse = parse_custom, .flags = TG_CONF_ABSENT},
    TG_CONF_END,
};

static all_t all;

/* Reads yaml with all_fields into all (released first); returns err.msg on
 * failure, NULL on success. */
static const char *read_all(const char *yaml)
{
    tg_conf_fields_free(all_fields, &all);
    memset(&all, 0, sizeof(all));
    memset(&err, 0, sizeof(err));
    if (tg_conf_read(parse(yaml), all_fields, NULL, &all, &err) == 0)
        return NULL;
    return err.msg;
}

static void free_all(void)
{
    tg_conf_fields_free(all_fields, &all);
    teardown();
}

#define ck_read_ok(yaml)                                 \
    do {                                                 \
        const char *m_ = read_all(yaml);                 \
        ck_assert_msg(m_ == NULL, "%s: %s", (yaml), m_); \
    } while (0)

START_TEST(defaults_when_absent)
{
    ck_read_ok("{}\n");
    ck_assert_str_eq(all.name, "anon");
    ck_assert(all.on);
    ck_assert_uint_eq(all.small, 7);
    ck_assert_uint_eq(all.mid, 0);
    ck_assert_uint_eq(all.port, 80);
    ck_assert_uint_eq(all.timeout_ms, 30000);
    ck_assert_uint_eq(all.size, 4096);
    ck_assert_int_eq(all.colour, COLOUR_BLUE);
    ck_assert_ptr_null(all.tags);
    ck_assert_uint_eq(all.ntags, 0);
    ck_assert_ptr_null(all.raw);
    /* TG_CONF_ABSENT: the custom reader runs with NULL */
    ck_assert_int_eq(all.custom, -1);
    ck_assert_int_eq(all.calls, 1);
}
END_TEST

START_TEST(null_and_empty_maps_are_empty)
{
    /* `config:` with nothing, `~` and an empty document: all defaults */
    static const char *const empties[] = {"", "~\n", "null\n", "{}\n"};
    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        ck_read_ok(empties[i]);
        ck_assert_str_eq(all.name, "anon");
        ck_assert_uint_eq(all.port, 80);
    }
    /* A NULL map pointer too. */
    all_t a = {0};
    ck_assert_int_eq(tg_conf_read(NULL, all_fields, NULL, &a, &err), 0);
    ck_assert_uint_eq(a.port, 80);
    tg_conf_fields_free(all_fields, &a);
}
END_TEST

START_TEST(every_type_read)
{
    ck_read_ok("name: web\non: no\nsmall: 255\nmid: 65535\nport: 8080\n"
               "big: 18446744073709551615\ntimeout: 1m30s\nsize: 16KiB\ncolour: green\n"
               "tags: [a, b]\nraw: [1, 2]\ncustom: hello\n");
    ck_assert_str_eq(all.name, "web");
    ck_assert(!all.on);
    ck_assert_uint_eq(all.small, 255);
    ck_assert_uint_eq(all.mid, 65535);
    ck_assert_uint_eq(all.port, 8080);
    ck_assert_uint_eq(all.big, UINT64_MAX);
    ck_assert_uint_eq(all.timeout_ms, 90000);
    ck_assert_uint_eq(all.size, 16384);
    ck_assert_int_eq(all.colour, COLOUR_GREEN);
    ck_assert_uint_eq(all.ntags, 2);
    ck_assert_str_eq(all.tags[0], "a");
    ck_assert_str_eq(all.tags[1], "b");
    ck_assert_ptr_null(all.tags[2]); /* NULL-terminated */
    ck_assert_ptr_nonnull(all.raw);
    ck_assert_int_eq(all.raw->type, TG_CONF_SEQ);
    ck_assert_uint_eq(all.raw->line, 11);
    ck_assert_int_eq(all.custom, 5);
    ck_assert_int_eq(all.calls, 1);
    /* a single string is a list of one */
    ck_read_ok("tags: solo\n");
    ck_assert_uint_eq(all.ntags, 1);
    ck_assert_str_eq(all.tags[0], "solo");
    ck_read_ok("tags: []\n");
    ck_assert_uint_eq(all.ntags, 0);
    ck_assert_ptr_null(all.tags[0]);
}
END_TEST

START_TEST(wrong_types_err_at_the_value)
{
    static const struct {
        const char *yaml, *msg;
    } cases[] = {
        {"name: [a]\n", "t.yaml:1:7: expected a string"},
        {"on: maybe\n", "t.yaml:1:5: expected a boolean (true/false, yes/no, on/off), got 'maybe'"},
        {"on: {}\n", "t.yaml:1:5: expected a boolean (true/false, yes/no, on/off)"},
        {"port: 80x\n", "t.yaml:1:7: expected an integer, got '80x'"},
        {"port: -1\n", "t.yaml:1:7: expected an integer, got '-1'"},
        {"port: \"\"\n", "t.yaml:1:7: expected an integer, got ''"},
        {"port: [1]\n", "t.yaml:1:7: expected an integer"},
        {"timeout: 30\n", "t.yaml:1:10: expected a duration like 10s, got '30'"},
        {"timeout: 99999999999999999999s\n",
         "t.yaml:1:10: duration '99999999999999999999s' is too large"},
        {"size: 10XB\n", "t.yaml:1:7: expected a size like 16KiB, got '10XB'"},
        {"colour: [red]\n", "t.yaml:1:9: expected a string"},
        {"tags: {a: 1}\n", "t.yaml:1:7: expected a string or a list of strings"},
        {"tags: [a, [b]]\n", "t.yaml:1:11: expected a string"},
        {"custom: {a: 1}\n", "t.yaml:1:9: custom wants no map"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *m = read_all(cases[i].yaml);
        ck_assert_msg(m != NULL, "accepted: %s", cases[i].yaml);
        ck_assert_str_eq(m, cases[i].msg);
    }
}
END_TEST

START_TEST(null_values_are_not_defaults)
{
    /* `port:` written without a value is a mistake, not "the default". */
    ck_assert_str_eq(read_all("port:\n"), "t.yaml:1:6: expected an integer");
    ck_assert_str_eq(read_all("name: ~\n"), "t.yaml:1:7: expected a string");
    ck_assert_str_eq(read_all("on: null\n"),
                     "t.yaml:1:5: expected a boolean (true/false, yes/no, on/off)");
    ck_assert_str_eq(read_all("tags:\n"), "t.yaml:1:6: expected a string or a list of strings");
    /* A custom reader sees the null node itself. */
    ck_read_ok("custom: ~\n");
    ck_assert_int_eq(all.custom, 1);
    ck_read_ok("raw:\n");
    ck_assert_ptr_nonnull(all.raw);
    ck_assert_int_eq(all.raw->type, TG_CONF_NULL);
    /* Quoted, "null" is a string. */
    ck_read_ok("name: \"null\"\n");
    ck_assert_str_eq(all.name, "null");
}
END_TEST

START_TEST(bounds_named_after_the_key)
{
    static const struct {
        const char *yaml, *msg;
    } cases[] = {
        {"port: 0\n", "t.yaml:1:7: port must be between 1 and 65535"},
        {"port: 65536\n", "t.yaml:1:7: port must be between 1 and 65535"},
        {"port: 99999999999999999999999\n", "t.yaml:1:7: port must be between 1 and 65535"},
        /* the member's width is a bound too */
        {"small: 256\n", "t.yaml:1:8: small must be at most 255"},
        {"timeout: 1\n", "t.yaml:1:10: expected a duration like 10s, got '1'"},
        {"mid: 9\n", "t.yaml:1:6: mid must be between 10 and 65535"},
        {"mid: 65536\n", "t.yaml:1:6: mid must be between 10 and 65535"},
        {"big: 0\n", "t.yaml:1:6: big must be greater than 0"},
        {"big: 18446744073709551616\n", "t.yaml:1:6: big must be greater than 0"},
        {"timeout: 999ms\n", "t.yaml:1:10: timeout must be between 1s and 1h"},
        {"timeout: 61m\n", "t.yaml:1:10: timeout must be between 1s and 1h"},
        {"size: 1025KiB\n", "t.yaml:1:7: size must be at most 1MiB"},
        {"colour: Red\n", "t.yaml:1:9: colour must be red, green or blue, got 'Red'"},
        {"name: \"\"\n", "t.yaml:1:7: name must not be empty"},
        {"name: abcdefghi\n", "t.yaml:1:7: name must be at most 8 bytes"},
        {"tags: [a, \"\"]\n", "t.yaml:1:11: tags must not be empty"},
        {"tags: [a, b, c, d]\n", "t.yaml:1:7: tags needs between 0 and 3 items"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *m = read_all(cases[i].yaml);
        ck_assert_msg(m != NULL, "accepted: %s", cases[i].yaml);
        ck_assert_str_eq(m, cases[i].msg);
    }
    /* the limits themselves pass */
    ck_read_ok("port: 65535\nsmall: 255\nmid: 10\ntimeout: 1h\nsize: 1MiB\nname: abcdefgh\n");
    ck_assert_uint_eq(all.timeout_ms, 3600000);
    ck_read_ok("timeout: 1s\nport: 1\n");
    ck_assert_uint_eq(all.timeout_ms, 1000);
}
END_TEST

START_TEST(unknown_keys)
{
    /* A close key is suggested... */
    ck_assert_str_eq(read_all("prot: 80\n"),
                     "t.yaml:1:1: unknown key 'prot' (did you mean 'port'?)");
    ck_assert_str_eq(read_all("port: 80\ntimout: 1s\n"),
                     "t.yaml:2:1: unknown key 'timout' (did you mean 'timeout'?)");
    /* ...otherwise every known key is listed. */
    ck_assert_str_eq(read_all("colour: red\nflavour: 1\n"),
                     "t.yaml:2:1: unknown key 'flavour' (known: name, on, small, mid, port, big, "
                     "timeout, size, colour, tags, raw, custom)");
    /* where names the section */
    memset(&all, 0, sizeof(all));
    ck_assert_int_eq(tg_conf_read(parse("bogus: 1\n"), all_fields, "upstream 'u'", &all, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:1: unknown key 'bogus' in upstream 'u' (known: name, on, "
                              "small, mid, port, big, timeout, size, colour, tags, raw, custom)");
    /* Unknown keys are found before any value is read or any default written. */
    ck_assert_ptr_nonnull(read_all("port: 0\nzzz: 1\n"));
    ck_assert_str_eq(err.msg, "t.yaml:2:1: unknown key 'zzz' (known: name, on, small, mid, port, "
                              "big, timeout, size, colour, tags, raw, custom)");
    ck_assert_int_eq(all.calls, 0);
    ck_assert_ptr_null(all.name);
}
END_TEST

START_TEST(not_a_map)
{
    ck_assert_str_eq(read_all("- a\n"), "t.yaml:1:1: expected a map");
    ck_assert_str_eq(read_all("hello\n"), "t.yaml:1:1: expected a map, got 'hello'");
    ck_assert_str_eq(read_all("v: [1]\n"), "t.yaml:1:1: unknown key 'v' (known: name, on, small, "
                                           "mid, port, big, timeout, size, colour, tags, raw, "
                                           "custom)");
}
END_TEST

/* ---- required keys --------------------------------------------------------- */

typedef struct {
    const tg_conf_node_t *address;
    char *path;
    int seen;
} req_t;

static int count_call(const tg_conf_node_t *n, void *out, tg_conf_err_t *e)
{
    (void)n;
    (void)e;
    ((req_t *)out)->seen++;
    return 0;
}

static const tg_conf_field_t req_fields[] = {
    {"first", TG_CONF_FIELD_CUSTOM, .parse = count_call},
    {"address", TG_CONF_FIELD_NODE, TG_CONF_AT(req_t, address), .flags = TG_CONF_REQUIRED},
    {"path", TG_CONF_FIELD_STRING, TG_CONF_AT(req_t, path), .flags = TG_CONF_REQUIRED,
     .help = "a file or \"stdout\""},
    TG_CONF_END,
};

START_TEST(missing_required_errs_at_the_map)
{
    req_t r = {0};
    ck_assert_int_eq(tg_conf_read(parse("x:\n  first: 1\n  path: a\n"), req_fields, NULL, &r, &err),
                     -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:1: unknown key 'x' (known: first, address, path)");
    const tg_conf_node_t *m = tg_conf_map_get(parse("x:\n  first: 1\n  path: a\n"), "x");
    ck_assert_int_eq(tg_conf_read(m, req_fields, NULL, &r, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:2:3: missing required key 'address'");
    /* fields before it were read (table order), later ones not */
    ck_assert_int_eq(r.seen, 1);
    ck_assert_ptr_null(r.path);
    /* the help text says what the value is */
    m = tg_conf_map_get(parse("x:\n  address: a\n"), "x");
    ck_assert_int_eq(tg_conf_read(m, req_fields, NULL, &r, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:2:3: missing required key 'path' (a file or \"stdout\")");
    /* a null map (`config:` with nothing) is where the map would be */
    m = tg_conf_map_get(parse("a: 1\nx:\n"), "x");
    ck_assert_int_eq(tg_conf_read(m, req_fields, NULL, &r, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:2:3: missing required key 'address'");
    ck_assert_int_eq(tg_conf_read(parse(""), req_fields, NULL, &r, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:1: missing required key 'address'");
    /* present, even as null: not missing */
    r = (req_t){0};
    ck_assert_int_eq(tg_conf_read(parse("address:\npath: p\n"), req_fields, NULL, &r, &err), 0);
    ck_assert_int_eq(r.address->type, TG_CONF_NULL);
    ck_assert_str_eq(r.path, "p");
    ck_assert_int_eq(r.seen, 0); /* no TG_CONF_ABSENT: not called */
    tg_conf_fields_free(req_fields, &r);
    ck_assert_ptr_null(r.path);
}
END_TEST

/* ---- duplicates ------------------------------------------------------------ */

START_TEST(duplicate_keys)
{
    /* The loader refuses them... */
    const char *yaml = "port: 1\nport: 2\n";
    ck_assert_int_eq(tg_conf_doc_parse("t.yaml", yaml, strlen(yaml), &doc, &err), -1);
    /* ...and so does the reader, for a tree built by hand. */
    tg_conf_node_t k1 = {
        .type = TG_CONF_SCALAR, .file = "h", .line = 1, .col = 1, .value = "port", .len = 4};
    tg_conf_node_t k2 = k1, v1 = k1, v2 = k1;
    k2.line = 2;
    v1.value = "1";
    v1.len = 1;
    v2.value = "2";
    v2.len = 1;
    tg_conf_node_t *keys[] = {&k1, &k2}, *items[] = {&v1, &v2};
    tg_conf_node_t map = {.type = TG_CONF_MAP,
                          .file = "h",
                          .line = 1,
                          .col = 1,
                          .count = 2,
                          .keys = keys,
                          .items = items};
    all_t a = {0};
    ck_assert_int_eq(tg_conf_read(&map, all_fields, NULL, &a, &err), -1);
    ck_assert_str_eq(err.msg, "h:2:1: duplicate key 'port' (first defined at line 1)");
}
END_TEST

/* ---- order, errors midway, freeing ------------------------------------------ */

typedef struct {
    uint32_t limit;
    uint32_t cost;
    char *a, *b;
    char **list;
    size_t n;
} order_t;

/* Sees the fields read before it. */
static int parse_cost(const tg_conf_node_t *n, void *out, tg_conf_err_t *e)
{
    order_t *o = out;
    uint64_t v;
    if (tg_conf_get_uint(n, 0, UINT32_MAX, &v, e) < 0)
        return -1;
    if (v > o->limit)
        return tg_conf_error(e, n, "cost %llu exceeds limit %u", (unsigned long long)v, o->limit);
    o->cost = (uint32_t)v;
    return 0;
}

static const tg_conf_field_t order_fields[] = {
    {"a", TG_CONF_FIELD_STRING, TG_CONF_AT(order_t, a)},
    {"list", TG_CONF_FIELD_STRINGS, TG_CONF_AT(order_t, list),
     .count_offset = offsetof(order_t, n)},
    {"limit", TG_CONF_FIELD_UINT, TG_CONF_AT(order_t, limit), .def = 10},
    {"cost", TG_CONF_FIELD_CUSTOM, .parse = parse_cost},
    {"b", TG_CONF_FIELD_STRING, TG_CONF_AT(order_t, b)},
    TG_CONF_END,
};

START_TEST(table_order_and_partial_reads)
{
    order_t o = {0};
    /* cost written before limit in the file: still checked against it */
    ck_assert_int_eq(tg_conf_read(parse("cost: 5\nlimit: 4\n"), order_fields, NULL, &o, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:7: cost 5 exceeds limit 4");
    o = (order_t){0};
    ck_assert_int_eq(tg_conf_read(parse("cost: 5\nlimit: 6\n"), order_fields, NULL, &o, &err), 0);
    ck_assert_uint_eq(o.cost, 5);
    /* An error midway leaves what was read: tg_conf_fields_free() releases it
     * (valgrind and ASan check that nothing leaks). */
    o = (order_t){0};
    ck_assert_int_eq(
        tg_conf_read(parse("a: x\nlist: [p, q, [r]]\nb: y\n"), order_fields, NULL, &o, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:2:14: expected a string");
    ck_assert_str_eq(o.a, "x");
    ck_assert_uint_eq(o.n, 2);
    ck_assert_ptr_null(o.b);
    tg_conf_fields_free(order_fields, &o);
    ck_assert_ptr_null(o.a);
    ck_assert_ptr_null(o.list);
    ck_assert_uint_eq(o.n, 0);
    tg_conf_fields_free(order_fields, &o); /* twice, and on a zeroed struct: fine */
}
END_TEST

/* ---- mistakes in the table itself ------------------------------------------ */

typedef struct {
    uint8_t three[3];
    int flag;
} bad_t;

START_TEST(bad_tables_are_errors)
{
    static const tg_conf_field_t bad_width[] = {
        {"three", TG_CONF_FIELD_UINT, TG_CONF_AT(bad_t, three)},
        TG_CONF_END,
    };
    static const tg_conf_field_t bad_bool[] = {
        {"flag", TG_CONF_FIELD_BOOL, TG_CONF_AT(bad_t, flag)},
        TG_CONF_END,
    };
    static const tg_conf_field_t no_names[] = {
        {"flag", TG_CONF_FIELD_ENUM, TG_CONF_AT(bad_t, flag)},
        TG_CONF_END,
    };
    static const tg_conf_field_t no_parse[] = {
        {"flag", TG_CONF_FIELD_CUSTOM, .parse = NULL},
        TG_CONF_END,
    };
    static const tg_conf_field_t bad_bounds[] = {
        {"flag", TG_CONF_FIELD_UINT, TG_CONF_AT(bad_t, flag), .min = 10, .max = 5},
        TG_CONF_END,
    };
    const tg_conf_field_t *tables[] = {bad_width, bad_bool, no_names, no_parse, bad_bounds};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        bad_t b = {{0}, 0};
        ck_assert_int_eq(tg_conf_read(parse("{}\n"), tables[i], NULL, &b, &err), -1);
        ck_assert_msg(strstr(err.msg, "t.yaml:1:1: field table: '") != NULL, "%s", err.msg);
        ck_assert_int_eq(b.flag, 0); /* nothing written */
    }
}
END_TEST

/* ---- collecting every error (src/conf_errors.h) -------------------------- */

typedef struct {
    uint32_t a, b;
    bool custom_ran;
    char *s;
} collect_t;

static int custom_after(const tg_conf_node_t *n, void *out, tg_conf_err_t *e)
{
    (void)n;
    (void)e;
    ((collect_t *)out)->custom_ran = true;
    return 0;
}

static const tg_conf_field_t collect_fields[] = {
    {"a", TG_CONF_FIELD_UINT, TG_CONF_AT(collect_t, a), .max = 10},
    {"b", TG_CONF_FIELD_UINT, TG_CONF_AT(collect_t, b), .max = 10, .def = 7},
    {"c", TG_CONF_FIELD_CUSTOM, .parse = custom_after, .flags = TG_CONF_ABSENT},
    {"s", TG_CONF_FIELD_STRING, TG_CONF_AT(collect_t, s), .def_str = "x"},
    TG_CONF_END,
};

START_TEST(collecting_reads_on_and_skips_custom_after_a_failure)
{
    const tg_conf_node_t *m = parse("a: 99\nbogus: 1\nbgus: 2\ns: ok\n");
    collect_t out = {0};
    tg_conf_errors_t errs;
    tg_conf_errors_begin(&errs);
    ck_assert_int_eq(tg_conf_read(m, collect_fields, "t", &out, &err), -1);
    tg_conf_errors_end();
    ck_assert_uint_eq(errs.total, 3);
    ck_assert_str_eq(errs.msgs[0], "t.yaml:2:1: unknown key 'bogus' in t (known: a, b, c, s)");
    ck_assert_str_eq(errs.msgs[1], "t.yaml:3:1: unknown key 'bgus' in t (known: a, b, c, s)");
    ck_assert_str_eq(errs.msgs[2], "t.yaml:1:4: a must be at most 10");
    ck_assert_uint_eq(out.b, 7);   /* read on after the failed 'a' */
    ck_assert_str_eq(out.s, "ok"); /* built-in types too */
    ck_assert(!out.custom_ran);    /* a CUSTOM field after a failed value is not */
    tg_conf_fields_free(collect_fields, &out);
    /* Without a collection: the first error, as always. */
    memset(&out, 0, sizeof(out));
    ck_assert_int_eq(tg_conf_read(m, collect_fields, "t", &out, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:2:1: unknown key 'bogus' in t (known: a, b, c, s)");
    tg_conf_fields_free(collect_fields, &out);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("conf_table");
    TCase *t = tcase_create("read");
    tcase_add_checked_fixture(t, NULL, free_all);
    tcase_add_test(t, defaults_when_absent);
    tcase_add_test(t, null_and_empty_maps_are_empty);
    tcase_add_test(t, every_type_read);
    tcase_add_test(t, wrong_types_err_at_the_value);
    tcase_add_test(t, null_values_are_not_defaults);
    tcase_add_test(t, bounds_named_after_the_key);
    tcase_add_test(t, unknown_keys);
    tcase_add_test(t, not_a_map);
    tcase_add_test(t, missing_required_errs_at_the_map);
    tcase_add_test(t, duplicate_keys);
    tcase_add_test(t, table_order_and_partial_reads);
    tcase_add_test(t, bad_tables_are_errors);
    tcase_add_test(t, collecting_reads_on_and_skips_custom_after_a_failure);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
