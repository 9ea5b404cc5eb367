/* Unit tests for src/config.c: the schema, defaults, every error with its position. */
#include <arpa/inet.h>
#include <check.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_guard.h"
#include "config.h"
#include "cpu_count.h"
#include "health_check.h"
#include "log.h"
#include "path_norm.h"
#include "retry_policy.h"
#include "split.h"
#include "trace_conf.h"

/* Each test runs in a fresh temporary directory and writes its config to the
 * relative path "t.yaml", so that messages read "t.yaml:LINE:COL: ...". */
static char dir[] = "/tmp/tg_test_config_XXXXXX";
static char olddir[PATH_MAX];
static tg_config_t *cfg;
static tg_conf_err_t err;

#define LISTEN "listen:\n  - address: \":18080\"\n"
/* LISTEN + one upstream "u": routes start on line 6. */
#define UPS LISTEN "upstreams:\n  u:\n    targets: [\"127.0.0.1:9001\"]\n"

static void setup(void)
{
    strcpy(dir, "/tmp/tg_test_config_XXXXXX");
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

static void write_file(const char *text)
{
    FILE *f = fopen("t.yaml", "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static tg_config_t *load_ok(const char *yaml)
{
    tg_config_unref(cfg);
    cfg = NULL;
    write_file(yaml);
    int rc = tg_config_load("t.yaml", &cfg, &err);
    ck_assert_msg(rc == 0, "load failed: %s", err.msg);
    return cfg;
}

static const char *load_err(const char *yaml)
{
    tg_config_unref(cfg);
    cfg = NULL;
    write_file(yaml);
    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(tg_config_load("t.yaml", &cfg, &err), -1);
    ck_assert_ptr_null(cfg);
    return err.msg;
}

static void ck_addr(const struct sockaddr_storage *ss, int family, const char *ip, unsigned port)
{
    char buf[INET6_ADDRSTRLEN];
    ck_assert_int_eq(ss->ss_family, family);
    if (family == AF_INET) {
        const struct sockaddr_in *sin = (const void *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
        ck_assert_uint_eq(ntohs(sin->sin_port), port);
    } else {
        const struct sockaddr_in6 *sin6 = (const void *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
        ck_assert_uint_eq(ntohs(sin6->sin6_port), port);
    }
    ck_assert_str_eq(buf, ip);
}

static unsigned cpus(void)
{
    unsigned n = tg_cpu_count();
    return n > 256 ? 256 : n;
}

/* ---- whole files --------------------------------------------------------- */

START_TEST(defaults)
{
    load_ok(LISTEN);
    ck_assert_str_eq(cfg->file, "t.yaml");
    ck_assert_uint_eq(cfg->workers, cpus());
    ck_assert_uint_eq(cfg->nlisteners, 1);
    ck_addr(&cfg->listeners[0].addr, AF_INET, "0.0.0.0", 18080);
    ck_assert_uint_eq(cfg->listeners[0].addrlen, sizeof(struct sockaddr_in));
    ck_assert_str_eq(cfg->listeners[0].name, ":18080");
    ck_assert(!cfg->has_admin);
    ck_assert_uint_eq(cfg->ntrusted_proxies, 0);
    ck_assert_uint_eq(cfg->limits.header_timeout_ms, 10000);
    ck_assert_uint_eq(cfg->limits.idle_timeout_ms, 60000);
    ck_assert_uint_eq(cfg->limits.body_timeout_ms, 60000);
    ck_assert_uint_eq(cfg->limits.send_timeout_ms, 60000);
    ck_assert_uint_eq(cfg->limits.drain_timeout_ms, 30000);
    ck_assert_uint_eq(cfg->limits.max_header_size, 16384);
    ck_assert_uint_eq(cfg->limits.max_body_size, 10485760);
    ck_assert_uint_eq(cfg->limits.max_headers, 100);
    ck_assert_uint_eq(cfg->nupstreams, 0);
    ck_assert_uint_eq(cfg->nroutes, 0);
    ck_assert_ptr_nonnull(cfg->router);
    ck_assert_uint_eq(atomic_load(&cfg->refcount), 1);
}
END_TEST

START_TEST(empty_sections_mean_defaults)
{
    load_ok(LISTEN "workers: auto\nadmin:\ntrusted_proxies:\nlimits:\nupstreams:\nroutes:\n");
    ck_assert_uint_eq(cfg->workers, cpus());
    ck_assert(!cfg->has_admin);
    ck_assert_uint_eq(cfg->limits.max_headers, 100);
    ck_assert_uint_eq(cfg->nupstreams, 0);
    ck_assert_uint_eq(cfg->nroutes, 0);
}
END_TEST

START_TEST(full_file)
{
    int rc = tg_config_load(TG_TEST_DATA "/config_full.yaml", &cfg, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_str_eq(cfg->file, TG_TEST_DATA "/config_full.yaml");
    ck_assert_uint_eq(cfg->workers, 3);

    ck_assert_uint_eq(cfg->nlisteners, 3);
    ck_addr(&cfg->listeners[0].addr, AF_INET, "127.0.0.1", 18080);
    ck_addr(&cfg->listeners[1].addr, AF_INET6, "::1", 18081);
    ck_assert_uint_eq(cfg->listeners[1].addrlen, sizeof(struct sockaddr_in6));
    ck_assert_str_eq(cfg->listeners[1].name, "[::1]:18081");
    ck_addr(&cfg->listeners[2].addr, AF_INET, "0.0.0.0", 18082);
    ck_assert(cfg->has_admin);
    ck_addr(&cfg->admin.addr, AF_INET, "127.0.0.1", 19901);
    ck_assert_str_eq(cfg->admin.name, "127.0.0.1:19901");

    ck_assert_uint_eq(cfg->ntrusted_proxies, 4);
    ck_assert_int_eq(cfg->trusted_proxies[0].family, AF_INET);
    ck_assert_uint_eq(cfg->trusted_proxies[0].prefix, 8);
    ck_assert_uint_eq(cfg->trusted_proxies[1].prefix, 32);
    ck_assert_int_eq(cfg->trusted_proxies[2].family, AF_INET6);
    ck_assert_uint_eq(cfg->trusted_proxies[2].prefix, 128);
    ck_assert_uint_eq(cfg->trusted_proxies[2].addr[15], 1);
    /* 192.168.1.77/24: host bits cleared. */
    ck_assert_mem_eq(cfg->trusted_proxies[3].addr, "\xc0\xa8\x01\x00", 4);

    ck_assert_uint_eq(cfg->limits.header_timeout_ms, 5000);
    ck_assert_uint_eq(cfg->limits.idle_timeout_ms, 120000);
    ck_assert_uint_eq(cfg->limits.body_timeout_ms, 90000);
    ck_assert_uint_eq(cfg->limits.send_timeout_ms, 45000);
    ck_assert_uint_eq(cfg->limits.drain_timeout_ms, 0);
    ck_assert_uint_eq(cfg->limits.max_header_size, 32768);
    ck_assert_uint_eq(cfg->limits.max_body_size, 0);
    ck_assert_uint_eq(cfg->limits.max_headers, 64);
}
END_TEST

START_TEST(full_file_upstreams)
{
    ck_assert_int_eq(tg_config_load(TG_TEST_DATA "/config_full.yaml", &cfg, &err), 0);
    ck_assert_uint_eq(cfg->nupstreams, 2);
    tg_upstream_conf_t *u = &cfg->upstreams[0];
    ck_assert_ptr_eq(tg_config_upstream(cfg, "users"), u);
    ck_assert_str_eq(u->name, "users");
    ck_assert_uint_eq(u->index, 0);
    ck_assert_uint_eq(u->ntargets, 4);
    ck_addr(&u->targets[0].addr, AF_INET, "127.0.0.1", 9001);
    ck_assert_str_eq(u->targets[0].name, "127.0.0.1:9001");
    ck_assert_str_eq(u->targets[0].host_header, "127.0.0.1:9001");
    ck_assert_str_eq(u->targets[1].name, "127.0.0.1:80");
    ck_assert_str_eq(u->targets[1].host_header, "127.0.0.1");
    ck_addr(&u->targets[2].addr, AF_INET6, "::1", 9003);
    ck_assert_str_eq(u->targets[2].host_header, "[::1]:9003");
    ck_assert_str_eq(u->targets[3].host_header, "localhost:9004");
    ck_assert_int_eq(u->balance, TG_BALANCE_LEAST_CONN);
    ck_assert_uint_eq(u->keepalive, 0);
    ck_assert_uint_eq(u->connect_timeout_ms, 250);
    ck_assert_uint_eq(u->timeout_ms, 2000);
    ck_assert_uint_eq(u->retries, 3);
    ck_assert_uint_eq(u->max_fails, 0);
    ck_assert_uint_eq(u->fail_timeout_ms, 3600000);

    u = &cfg->upstreams[1];
    ck_assert_ptr_eq(tg_config_upstream(cfg, "orders"), u);
    ck_assert_uint_eq(u->index, 1);
    ck_assert_int_eq(u->balance, TG_BALANCE_ROUND_ROBIN);
    ck_assert_uint_eq(u->keepalive, 32);
    ck_assert_uint_eq(u->connect_timeout_ms, 1000);
    ck_assert_uint_eq(u->timeout_ms, 30000);
    ck_assert_uint_eq(u->retries, 1);
    ck_assert_uint_eq(u->max_fails, 3);
    ck_assert_uint_eq(u->fail_timeout_ms, 10000);
    ck_assert_ptr_null(tg_config_upstream(cfg, "nope"));
}
END_TEST

START_TEST(full_file_routes)
{
    ck_assert_int_eq(tg_config_load(TG_TEST_DATA "/config_full.yaml", &cfg, &err), 0);
    ck_assert_uint_eq(cfg->nroutes, 4);
    const tg_route_t *r = &cfg->routes[0];
    ck_assert_str_eq(r->name, "users");
    ck_assert_uint_eq(r->index, 0);
    ck_assert_str_eq(r->host, "api.example.com");
    ck_assert(!r->host_wildcard);
    ck_assert_int_eq(r->path_kind, TG_PATH_PREFIX);
    ck_assert_str_eq(r->path, "/api/users");
    ck_assert_uint_eq(r->path_len, 10);
    ck_assert_ptr_null(r->regex);
    ck_assert_uint_eq(r->methods, TG_METHOD_GET | TG_METHOD_POST | TG_METHOD_OTHER);
    ck_assert_str_eq(r->method_names[0], "PURGE");
    ck_assert_ptr_null(r->method_names[1]);
    ck_assert_uint_eq(r->nheaders, 1);
    ck_assert_str_eq(r->headers[0].name, "x-env");
    ck_assert_str_eq(r->headers[0].value, "Canary");
    ck_assert_str_eq(r->strip_prefix, "/api");
    ck_assert_uint_eq(r->strip_prefix_len, 4);
    ck_assert_ptr_eq(r->upstream, &cfg->upstreams[0]);

    r = &cfg->routes[1];
    ck_assert_str_eq(r->name, "route-1");
    ck_assert_str_eq(r->host, ".example.org");
    ck_assert(r->host_wildcard);
    ck_assert_int_eq(r->path_kind, TG_PATH_REGEX);
    ck_assert_ptr_nonnull(r->regex);
    ck_assert_uint_eq(r->methods, 0);
    ck_assert_ptr_null(r->method_names);
    ck_assert_ptr_null(r->strip_prefix);
    ck_assert_ptr_eq(r->upstream, &cfg->upstreams[1]);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->regex, NULL);
    ck_assert_int_gt(pcre2_match(r->regex, (PCRE2_SPTR) "/v2/orders/17", 13, 0, 0, md, NULL), 0);
    ck_assert_int_eq(pcre2_match(r->regex, (PCRE2_SPTR) "/v2/orders/x", 12, 0, 0, md, NULL),
                     PCRE2_ERROR_NOMATCH);
    pcre2_match_data_free(md);
    uint32_t jit = 0;
    size_t jitsize = 0;
    pcre2_config(PCRE2_CONFIG_JIT, &jit);
    pcre2_pattern_info(r->regex, PCRE2_INFO_JITSIZE, &jitsize);
    ck_assert(!jit || jitsize > 0);

    ck_assert_int_eq(cfg->routes[2].path_kind, TG_PATH_EXACT);
    ck_assert_str_eq(cfg->routes[2].path, "/exact");
    ck_assert_uint_eq(cfg->routes[2].path_len, 6);
    r = &cfg->routes[3];
    ck_assert_str_eq(r->name, "fallback");
    ck_assert_int_eq(r->path_kind, TG_PATH_ANY);
    ck_assert_ptr_null(r->host);
    for (size_t i = 0; i < cfg->nroutes; i++)
        ck_assert_ptr_null(cfg->routes[i].node); /* the tree is gone */
    ck_assert_ptr_nonnull(cfg->router);
}
END_TEST

START_TEST(example_config_loads)
{
    const char *path = TG_TEST_DATA "/../../../conf/tollgate.yaml";
    int rc = tg_config_load(path, &cfg, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_uint_eq(cfg->nlisteners, 1);
    ck_addr(&cfg->listeners[0].addr, AF_INET, "0.0.0.0", 8080);
    ck_assert(cfg->has_admin);
    ck_addr(&cfg->admin.addr, AF_INET, "127.0.0.1", 9901);
    tg_upstream_conf_t *demo = tg_config_upstream(cfg, "demo");
    ck_assert_ptr_nonnull(demo);
    ck_assert_str_eq(demo->targets[0].name, "127.0.0.1:9001");
    ck_assert_uint_ge(cfg->nroutes, 2);
}
END_TEST

START_TEST(refcount)
{
    load_ok(UPS "routes:\n  - match: {path_regex: '^/x'}\n    upstream: u\n");
    ck_assert_ptr_eq(tg_config_ref(cfg), cfg);
    ck_assert_uint_eq(atomic_load(&cfg->refcount), 2);
    tg_config_unref(cfg);
    ck_assert_uint_eq(atomic_load(&cfg->refcount), 1);
    ck_assert_ptr_nonnull(cfg->routes[0].regex); /* still alive */
    tg_config_unref(cfg);                        /* frees everything: valgrind checks */
    cfg = NULL;
    tg_config_unref(NULL);
}
END_TEST

/* ---- top level and generic errors --------------------------------------- */

START_TEST(top_level_errors)
{
    ck_assert_str_eq(
        load_err(LISTEN "foo: 1\n"),
        "t.yaml:3:1: unknown key 'foo' (known: workers, listen, admin, "
        "trusted_proxies, limits, resolver, upstreams, routes, redis, tracing, log, plugins, "
        "plugin_path, "
        "include)");
    ck_assert_str_eq(load_err(LISTEN "limit: {}\n"),
                     "t.yaml:3:1: unknown key 'limit' (did you mean 'limits'?)");
    ck_assert_str_eq(load_err("- a\n"), "t.yaml:1:1: expected a map");
    ck_assert_str_eq(load_err("hello\n"), "t.yaml:1:1: expected a map, got 'hello'");
    ck_assert_str_eq(load_err(""), "t.yaml:1:1: missing required key 'listen'");
    ck_assert_str_eq(load_err("\n\nworkers: 1\n"), "t.yaml:3:1: missing required key 'listen'");
    ck_assert_str_eq(load_err(LISTEN "listen: []\n"),
                     "t.yaml:3:1: duplicate key 'listen' (first defined at line 1)");
    ck_assert_str_eq(load_err(LISTEN "limits: {a: [}\n"),
                     "t.yaml:3:14: did not find expected node content");
}
END_TEST

START_TEST(missing_file)
{
    ck_assert_int_eq(tg_config_load("nope.yaml", &cfg, &err), -1);
    ck_assert_ptr_null(cfg);
    ck_assert_str_eq(err.msg, "nope.yaml: cannot open: No such file or directory");
}
END_TEST

START_TEST(env_in_config)
{
    setenv("TG_T_PORT", "18099", 1);
    unsetenv("TG_T_UNSET");
    load_ok("listen:\n  - address: \"127.0.0.1:${TG_T_PORT}\"\nworkers: ${TG_T_UNSET:-2}\n");
    ck_addr(&cfg->listeners[0].addr, AF_INET, "127.0.0.1", 18099);
    ck_assert_str_eq(cfg->listeners[0].name, "127.0.0.1:18099");
    ck_assert_uint_eq(cfg->workers, 2);
    ck_assert_str_eq(load_err(LISTEN "workers: ${TG_T_UNSET}\n"),
                     "t.yaml:3:10: environment variable TG_T_UNSET is not set");
}
END_TEST

START_TEST(workers)
{
    ck_assert_uint_eq(load_ok(LISTEN "workers: 4\n")->workers, 4);
    ck_assert_uint_eq(load_ok(LISTEN "workers: 256\n")->workers, 256);
    ck_assert_str_eq(load_err(LISTEN "workers: 0\n"), "t.yaml:3:10: must be between 1 and 256");
    ck_assert_str_eq(load_err(LISTEN "workers: 257\n"), "t.yaml:3:10: must be between 1 and 256");
    ck_assert_str_eq(load_err(LISTEN "workers: many\n"),
                     "t.yaml:3:10: expected 'auto' or an integer between 1 and 256");
    ck_assert_str_eq(load_err(LISTEN "workers: [1]\n"),
                     "t.yaml:3:10: expected 'auto' or an integer between 1 and 256");
}
END_TEST

/* ---- listen / admin ------------------------------------------------------ */

START_TEST(listen_errors)
{
    ck_assert_str_eq(load_err("listen: 5\n"), "t.yaml:1:9: expected a sequence, got '5'");
    ck_assert_str_eq(load_err("listen: []\n"), "t.yaml:1:9: expected at least one listen address");
    ck_assert_str_eq(load_err("listen:\n  - port: 1\n"),
                     "t.yaml:2:5: unknown key 'port' in listen (known: address, tls, backlog, "
                     "http2) (and 1 more error)");
    ck_assert_str_eq(load_err("listen:\n  - {}\n"), "t.yaml:2:5: missing required key 'address'");
    ck_assert_str_eq(load_err("listen:\n  - \":80\"\n"), "t.yaml:2:5: expected a map, got ':80'");
    ck_assert_str_eq(load_err("listen:\n  - address: [1]\n"), "t.yaml:2:14: expected a string");
    ck_assert_str_eq(load_err("listen:\n  - address: \"1.2.3.4\"\n"),
                     "t.yaml:2:14: missing port in '1.2.3.4'");
    ck_assert_str_eq(load_err("listen:\n  - address: \"1.2.3.4:\"\n"),
                     "t.yaml:2:14: missing port in '1.2.3.4:'");
    ck_assert_str_eq(load_err("listen:\n  - address: \"1.2.3.4:0\"\n"),
                     "t.yaml:2:14: invalid port in '1.2.3.4:0': expected 1 to 65535");
    ck_assert_str_eq(load_err("listen:\n  - address: \"1.2.3.4:65536\"\n"),
                     "t.yaml:2:14: invalid port in '1.2.3.4:65536': expected 1 to 65535");
    ck_assert_str_eq(load_err("listen:\n  - address: \"1.2.3.4:http\"\n"),
                     "t.yaml:2:14: invalid port in '1.2.3.4:http': expected 1 to 65535");
    ck_assert_str_eq(load_err("listen:\n  - address: \"::1:80\"\n"),
                     "t.yaml:2:14: invalid address '::1:80': IPv6 addresses must be in brackets");
    ck_assert_str_eq(load_err("listen:\n  - address: \"[::1\"\n"),
                     "t.yaml:2:14: invalid address '[::1'");
    ck_assert_str_eq(load_err("listen:\n  - address: \":18080\"\n  - address: \"0.0.0.0:18080\"\n"),
                     "t.yaml:3:14: duplicate listen address '0.0.0.0:18080'");
}
END_TEST

START_TEST(listen_backlog)
{
    load_ok(LISTEN);
    ck_assert_uint_eq(cfg->listeners[0].backlog, 4096);
    load_ok("listen:\n  - address: \":18080\"\n    backlog: 100\n"
            "  - address: \":18081\"\n    backlog: 65535\n  - address: \":18082\"\n");
    ck_assert_uint_eq(cfg->listeners[0].backlog, 100);
    ck_assert_uint_eq(cfg->listeners[1].backlog, 65535);
    ck_assert_uint_eq(cfg->listeners[2].backlog, 4096);
    load_ok("listen:\n  - address: \":18080\"\n    backlog: 1\n");
    ck_assert_uint_eq(cfg->listeners[0].backlog, 1);
    ck_assert_str_eq(load_err(LISTEN "    backlog: 0\n"),
                     "t.yaml:3:14: backlog must be between 1 and 65535");
    ck_assert_str_eq(load_err(LISTEN "    backlog: 65536\n"),
                     "t.yaml:3:14: backlog must be between 1 and 65535");
    ck_assert_str_eq(load_err(LISTEN "    backlog: -1\n"),
                     "t.yaml:3:14: expected an integer, got '-1'");
    ck_assert_str_eq(load_err(LISTEN "    backlog: 4k\n"),
                     "t.yaml:3:14: expected an integer, got '4k'");
    ck_assert_str_eq(load_err(LISTEN "    backlog: \"\"\n"),
                     "t.yaml:3:14: expected an integer, got ''");
    ck_assert_str_eq(load_err(LISTEN "    backlog: [1]\n"), "t.yaml:3:14: expected an integer");
    ck_assert_str_eq(load_err(LISTEN "    backlog: 99999999999999999999999\n"),
                     "t.yaml:3:14: backlog must be between 1 and 65535");
    ck_assert_str_eq(load_err(LISTEN "admin:\n  address: \"127.0.0.1:19901\"\n  backlog: 10\n"),
                     "t.yaml:5:12: backlog is not supported on admin");
}
END_TEST

START_TEST(listen_resolution_errors)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo("foo.invalid", "80", &hints, &res);
    ck_assert_int_ne(rc, 0);
    char want[300];
    snprintf(want, sizeof(want), "t.yaml:2:14: cannot resolve 'foo.invalid': %s", gai_strerror(rc));
    ck_assert_str_eq(load_err("listen:\n  - address: \"foo.invalid:80\"\n"), want);
    /* Brackets hold a literal: never looked up in DNS. */
    snprintf(want, sizeof(want), "t.yaml:2:14: cannot resolve 'localhost': %s",
             gai_strerror(EAI_NONAME));
    ck_assert_str_eq(load_err("listen:\n  - address: \"[localhost]:80\"\n"), want);
}
END_TEST

START_TEST(admin)
{
    load_ok(LISTEN "admin:\n  address: \"[::1]:19901\"\n");
    ck_assert(cfg->has_admin);
    ck_addr(&cfg->admin.addr, AF_INET6, "::1", 19901);
    ck_assert_str_eq(load_err(LISTEN "admin:\n  address: \"*:18080\"\n"),
                     "t.yaml:4:12: admin address '*:18080' is also a listen address");
    ck_assert_str_eq(
        load_err(LISTEN "admin:\n  addr: x\n"),
        "t.yaml:4:3: unknown key 'addr' in admin (known: address, token) (and 1 more error)");
    ck_assert_str_eq(load_err(LISTEN "admin: 1\n"), "t.yaml:3:8: expected a map, got '1'");
    ck_assert_str_eq(load_err(LISTEN "admin: {}\n"), "t.yaml:3:8: missing required key 'address'");
}
END_TEST

START_TEST(admin_token)
{
    load_ok(LISTEN "admin:\n  address: \"127.0.0.1:19901\"\n");
    ck_assert(!cfg->has_admin_token);
    setenv("TG_T_ADMIN_TOKEN", "0123456789abcdef+/=", 1);
    load_ok(LISTEN "admin:\n  address: \"127.0.0.1:19901\"\n  token: \"${TG_T_ADMIN_TOKEN}\"\n");
    ck_assert(cfg->has_admin_token);
    unsigned char want[TG_ADMIN_DIGEST_LEN];
    tg_admin_token_digest("0123456789abcdef+/=", 19, want);
    ck_assert_mem_eq(cfg->admin_token_sha256, want, sizeof(want));
    const char *why = "admin token must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / "
                      "(then '=' padding): what a Bearer header carries";
    char expect[256];
    snprintf(expect, sizeof(expect), "t.yaml:5:10: %s", why);
    ck_assert_str_eq(load_err(LISTEN "admin:\n  address: \"127.0.0.1:19901\"\n  token: short\n"),
                     expect);
    /* An empty variable does not silently switch the token off. */
    setenv("TG_T_ADMIN_TOKEN", "", 1);
    ck_assert_str_eq(
        load_err(LISTEN
                 "admin:\n  address: \"127.0.0.1:19901\"\n  token: \"${TG_T_ADMIN_TOKEN}\"\n"),
        expect);
    ck_assert_str_eq(
        load_err(LISTEN "admin:\n  address: \"127.0.0.1:19901\"\n  token: \"0123456789 abcdef\"\n"),
        expect);
    unsetenv("TG_T_ADMIN_TOKEN");
    ck_assert_str_eq(
        load_err(LISTEN
                 "admin:\n  address: \"127.0.0.1:19901\"\n  token: \"${TG_T_ADMIN_TOKEN}\"\n"),
        "t.yaml:5:10: environment variable TG_T_ADMIN_TOKEN is not set");
    /* listen entries take no token */
    ck_assert_str_eq(
        load_err("listen:\n  - address: \":18080\"\n    token: \"0123456789abcdefgh\"\n"),
        "t.yaml:3:5: unknown key 'token' in listen (known: address, tls, backlog, http2)");
}
END_TEST

START_TEST(parse_address)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char eb[256];
    ck_assert_int_eq(tg_config_parse_address("[::1]:8080", &ss, &len, eb, sizeof(eb)), 0);
    ck_addr(&ss, AF_INET6, "::1", 8080);
    ck_assert_uint_eq(len, sizeof(struct sockaddr_in6));
    ck_assert_int_eq(tg_config_parse_address("*:80", &ss, &len, eb, sizeof(eb)), 0);
    ck_addr(&ss, AF_INET, "0.0.0.0", 80);
    ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
    ck_assert_int_eq(tg_config_parse_address(":65535", &ss, &len, eb, sizeof(eb)), 0);
    ck_addr(&ss, AF_INET, "0.0.0.0", 65535);
    ck_assert_int_eq(tg_config_parse_address("10.1.2.3:1", &ss, &len, eb, sizeof(eb)), 0);
    ck_addr(&ss, AF_INET, "10.1.2.3", 1);
    ck_assert_int_eq(tg_config_parse_address("[::]:443", &ss, &len, eb, sizeof(eb)), 0);
    ck_addr(&ss, AF_INET6, "::", 443);
    ck_assert_int_eq(tg_config_parse_address("localhost:9000", &ss, &len, eb, sizeof(eb)), 0);
    ck_assert_int_eq(tg_config_parse_address("[::1]", &ss, &len, eb, sizeof(eb)), -1);
    ck_assert_str_eq(eb, "missing port in '[::1]'");
    ck_assert_int_eq(tg_config_parse_address("[::1]x80", &ss, &len, eb, sizeof(eb)), -1);
    ck_assert_str_eq(eb, "invalid address '[::1]x80'");
    ck_assert_int_eq(tg_config_parse_address("", &ss, &len, eb, sizeof(eb)), -1);
    ck_assert_str_eq(eb, "missing port in ''");
    ck_assert_int_eq(tg_config_parse_address("1.2.3.4:99999999999", &ss, &len, eb, sizeof(eb)), -1);
    ck_assert_str_eq(eb, "invalid port in '1.2.3.4:99999999999': expected 1 to 65535");
}
END_TEST

/* ---- trusted_proxies ----------------------------------------------------- */

static bool trusted(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (void *)&ss;
        s6->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (void *)&ss;
        s4->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return tg_config_is_trusted_proxy(cfg, (struct sockaddr *)&ss);
}

START_TEST(trusted_proxies)
{
    load_ok(LISTEN "trusted_proxies: [\"10.0.0.0/8\", \"127.0.0.1\", \"::1/128\", \"fd00::/9\", "
                   "\"172.16.0.0/12\"]\n");
    ck_assert_uint_eq(cfg->ntrusted_proxies, 5);
    ck_assert(trusted("10.0.0.1"));
    ck_assert(trusted("10.255.255.255"));
    ck_assert(!trusted("11.0.0.0"));
    ck_assert(trusted("127.0.0.1"));
    ck_assert(!trusted("127.0.0.2"));
    ck_assert(trusted("172.31.1.1"));
    ck_assert(!trusted("172.32.0.0"));
    ck_assert(trusted("::1"));
    ck_assert(!trusted("::2"));
    ck_assert(trusted("fd7f::1"));
    ck_assert(!trusted("fd80::1"));
    ck_assert(trusted("::ffff:10.1.2.3")); /* v4-mapped peer of a dual-stack socket */
    ck_assert(!trusted("::ffff:11.1.2.3"));
    struct sockaddr su = {.sa_family = AF_UNIX};
    ck_assert(!tg_config_is_trusted_proxy(cfg, &su));

    load_ok(LISTEN "trusted_proxies: [\"0.0.0.0/0\"]\n");
    ck_assert(trusted("1.2.3.4"));
    ck_assert(!trusted("::1"));
    load_ok(LISTEN);
    ck_assert(!trusted("127.0.0.1"));
}
END_TEST

START_TEST(trusted_proxies_errors)
{
    static const char *const bad[] = {"bogus",     "10.0.0.0/33",  "::1/129", "10.0.0.0/",
                                      "1.2.3.4/x", "1.2.3.4/0008", "1.2.3",   "[::1]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char yaml[200], want[200];
        snprintf(yaml, sizeof(yaml), LISTEN "trusted_proxies:\n  - \"%s\"\n", bad[i]);
        snprintf(want, sizeof(want), "t.yaml:4:5: invalid IP address or CIDR '%s'", bad[i]);
        ck_assert_str_eq(load_err(yaml), want);
    }
    ck_assert_str_eq(load_err(LISTEN "trusted_proxies: [\"10.0.0.0/8\", \"bogus\"]\n"),
                     "t.yaml:3:33: invalid IP address or CIDR 'bogus'");
    ck_assert_str_eq(load_err(LISTEN "trusted_proxies: 10.0.0.1\n"),
                     "t.yaml:3:18: expected a sequence, got '10.0.0.1'");
    ck_assert_str_eq(load_err(LISTEN "trusted_proxies: [[1]]\n"), "t.yaml:3:19: expected a string");
}
END_TEST

/* ---- limits -------------------------------------------------------------- */

START_TEST(limits_errors)
{
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"  header_timeout: 10\n", "t.yaml:4:19: expected a duration like 10s, got '10'"},
        {"  header_timeout: 10x\n", "t.yaml:4:19: expected a duration like 10s, got '10x'"},
        {"  header_timeout: -1s\n", "t.yaml:4:19: expected a duration like 10s, got '-1s'"},
        {"  header_timeout: 99999999999999999999s\n",
         "t.yaml:4:19: duration '99999999999999999999s' is too large"},
        {"  idle_timeout: 0s\n", "t.yaml:4:17: idle_timeout must be greater than 0"},
        {"  body_timeout: 0ms\n", "t.yaml:4:17: body_timeout must be greater than 0"},
        {"  send_timeout: 1\n", "t.yaml:4:17: expected a duration like 10s, got '1'"},
        {"  drain_timeout: []\n", "t.yaml:4:18: expected a duration like 10s"},
        {"  max_header_size: 100\n", "t.yaml:4:20: max_header_size must be between 1KiB and 1MiB"},
        {"  max_header_size: 2MiB\n", "t.yaml:4:20: max_header_size must be between 1KiB and 1MiB"},
        {"  max_body_size: 10XB\n", "t.yaml:4:18: expected a size like 16KiB, got '10XB'"},
        {"  max_body_size: -1\n", "t.yaml:4:18: expected a size like 16KiB, got '-1'"},
        {"  max_body_size: 99999999999GiB\n", "t.yaml:4:18: size '99999999999GiB' is too large"},
        {"  max_headers: 0\n", "t.yaml:4:16: max_headers must be between 1 and 10000"},
        {"  max_headers: 10001\n", "t.yaml:4:16: max_headers must be between 1 and 10000"},
        {"  max_headers: lots\n", "t.yaml:4:16: expected an integer, got 'lots'"},
        {"  header_timeout: 1s\n  bogus: 1\n",
         "t.yaml:5:3: unknown key 'bogus' in limits (known: header_timeout, idle_timeout, "
         "body_timeout, send_timeout, drain_timeout, max_header_size, max_body_size, "
         "max_headers, encoded_slashes, headers_with_underscores, http2)"},
        {"  max_header: 1k\n",
         "t.yaml:4:3: unknown key 'max_header' in limits (did you mean 'max_headers'?)"},
        {"  encoded_slashes: maybe\n",
         "t.yaml:4:20: encoded_slashes must be reject or keep, got 'maybe'"},
        {"  encoded_slashes: [keep]\n", "t.yaml:4:20: expected a string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[300];
        snprintf(yaml, sizeof(yaml), LISTEN "limits:\n%s", cases[i].yaml);
        ck_assert_str_eq(load_err(yaml), cases[i].msg);
    }
    ck_assert_str_eq(load_err(LISTEN "limits: [1]\n"), "t.yaml:3:9: expected a map");
    load_ok(LISTEN "limits:\n  max_header_size: 1k\n  max_body_size: 1GB\n  max_headers: 10000\n");
    ck_assert_uint_eq(cfg->limits.max_header_size, 1024);
    ck_assert_uint_eq(cfg->limits.max_body_size, 1000000000);
    ck_assert_uint_eq(cfg->limits.max_headers, 10000);
    ck_assert_uint_eq(cfg->limits.header_timeout_ms, 10000); /* others keep defaults */
    ck_assert_uint_eq(cfg->limits.path_flags, 0);            /* encoded_slashes: reject */
    load_ok(LISTEN "limits:\n  encoded_slashes: keep\n");
    ck_assert_uint_eq(cfg->limits.path_flags, TG_PATH_KEEP_ENCODED_SLASH);
    load_ok(LISTEN "limits:\n  encoded_slashes: reject\n");
    ck_assert_uint_eq(cfg->limits.path_flags, 0);
}
END_TEST

START_TEST(limits_headers_with_underscores)
{
    load_ok(LISTEN);
    ck_assert_int_eq(cfg->limits.headers_with_underscores, TG_UNDERSCORES_DROP);
    load_ok(LISTEN "limits:\n  headers_with_underscores: reject\n");
    ck_assert_int_eq(cfg->limits.headers_with_underscores, TG_UNDERSCORES_REJECT);
    load_ok(LISTEN "limits:\n  headers_with_underscores: allow\n  max_headers: 7\n");
    ck_assert_int_eq(cfg->limits.headers_with_underscores, TG_UNDERSCORES_ALLOW);
    ck_assert_uint_eq(cfg->limits.max_headers, 7);
    load_ok(LISTEN "limits:\n  headers_with_underscores: drop\n");
    ck_assert_int_eq(cfg->limits.headers_with_underscores, TG_UNDERSCORES_DROP);
    ck_assert_str_eq(
        load_err(LISTEN "limits:\n  headers_with_underscores: Drop\n"),
        "t.yaml:4:29: headers_with_underscores must be drop, reject or allow, got 'Drop'");
    ck_assert_str_eq(load_err(LISTEN "limits:\n  headers_with_underscores: [drop]\n"),
                     "t.yaml:4:29: expected a string");
}
END_TEST

/* ---- upstreams ----------------------------------------------------------- */

START_TEST(upstream_errors)
{
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"  u:\n    targets: [\"127.0.0.1:9001\"]\n    bogus: 1\n",
         "t.yaml:6:5: unknown key 'bogus' in upstream 'u' (known: targets, balance, "
         "hash_key, keepalive, keepalive_trim, connect_timeout, timeout, retries, max_fails, "
         "fail_timeout, "
         "all_down, health_check, circuit_breaker, outlier_detection, resolve, tls)"},
        {"  u:\n    balance: least_conn\n", "t.yaml:5:5: missing required key 'targets'"},
        {"  u:\n    targets: []\n", "t.yaml:5:14: expected at least one target"},
        {"  u:\n    targets: \"127.0.0.1:9001\"\n",
         "t.yaml:5:14: expected a sequence, got '127.0.0.1:9001'"},
        {"  u:\n    targets: [\"*:9001\"]\n", "t.yaml:5:15: target '*:9001' needs a host"},
        {"  u:\n    targets: [\"127.0.0.1\"]\n", "t.yaml:5:15: missing port in '127.0.0.1'"},
        {"  u:\n    targets: [\"127.0.0.1:1\", ~]\n", "t.yaml:5:30: expected a string"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    balance: random\n",
         "t.yaml:6:14: balance must be round_robin, least_conn, p2c_ewma or hash, got 'random'"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    keepalive: 100001\n",
         "t.yaml:6:16: keepalive must be at most 100000"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    retries: 11\n",
         "t.yaml:6:14: retries must be at most 10"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    max_fails: x\n",
         "t.yaml:6:16: expected an integer, got 'x'"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    connect_timeout: 0ms\n",
         "t.yaml:6:22: connect_timeout must be greater than 0"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    timeout: 30\n",
         "t.yaml:6:14: expected a duration like 10s, got '30'"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    fail_timeout: 1y\n",
         "t.yaml:6:19: expected a duration like 10s, got '1y'"},
        {"  u: 1\n", "t.yaml:4:6: expected a map, got '1'"},
        /* failure isolation (issue 13) */
        {"  u:\n    targets: [{address: \"127.0.0.1:1\", weight: 0}]\n",
         "t.yaml:5:48: weight must be between 1 and 10000"},
        {"  u:\n    targets: [{weight: 2}]\n", "t.yaml:5:15: missing required key 'address'"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    balance: hash\n",
         "t.yaml:5:5: balance: hash needs hash_key"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    hash_key: ip\n",
         "t.yaml:6:15: hash_key needs balance: hash"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    balance: hash\n    hash_key: \"jwt.\"\n",
         "t.yaml:7:15: key 'jwt.' needs a name"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    all_down: maybe\n",
         "t.yaml:6:15: all_down must be fail_open or fail_closed, got 'maybe'"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    circuit_breaker: {max_conns: 1}\n",
         "t.yaml:6:23: unknown key 'max_conns' in circuit_breaker (known: max_connections, "
         "max_pending, max_requests)"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    outlier_detection: {max_ejection_percent: "
         "101}\n",
         "t.yaml:6:47: max_ejection_percent must be at most 100"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    health_check: {interval: 1s, timeout: 2s}\n",
         "t.yaml:6:19: health_check: timeout must not exceed interval"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    health_check: {path: x}\n",
         "t.yaml:6:26: path must start with '/'"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    health_check: {expect_status: [\"300-200\"]}\n",
         "t.yaml:6:36: expect_status: '300-200' is not within 100-599"},
        {"  u:\n    targets: [\"127.0.0.1:1\"]\n    resolve: 10ms\n",
         "t.yaml:6:14: resolve must be at least 100ms (or 0s: at load only)"},
        {"  \"\": {targets: [\"127.0.0.1:1\"]}\n", "t.yaml:4:3: upstream name must not be empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[300];
        snprintf(yaml, sizeof(yaml), LISTEN "upstreams:\n%s", cases[i].yaml);
        ck_assert_str_eq(load_err(yaml), cases[i].msg);
    }
    ck_assert_str_eq(load_err(LISTEN "upstreams: []\n"), "t.yaml:3:12: expected a map");
}
END_TEST

/* The issue's example config, as written there (names as IP literals, so
 * that nothing needs a resolver). */
START_TEST(failure_isolation_contract)
{
    load_ok(LISTEN "upstreams:\n"
                   "  orders:\n"
                   "    targets:\n"
                   "      - { address: \"127.0.0.1:8080\", weight: 3 }\n"
                   "      - { address: \"127.0.0.2:8080\", weight: 1 }\n"
                   "      - \"10.0.0.7:8080\"\n"
                   "    balance: hash\n"
                   "    hash_key: jwt.sub\n"
                   "    resolve: 30s\n"
                   "    health_check:\n"
                   "      path: /healthz\n"
                   "      host: orders.internal\n"
                   "      interval: 5s\n"
                   "      timeout: 1s\n"
                   "      healthy: 2\n"
                   "      unhealthy: 3\n"
                   "      expect_status: [200-299]\n"
                   "    circuit_breaker:\n"
                   "      max_connections: 512\n"
                   "      max_pending: 256\n"
                   "      max_requests: 1024\n"
                   "    outlier_detection:\n"
                   "      consecutive_5xx: 5\n"
                   "      consecutive_gateway_errors: 3\n"
                   "      base_ejection_time: 30s\n"
                   "      max_ejection_percent: 50\n"
                   "  checkout-v1: {targets: [\"127.0.0.1:1\"]}\n"
                   "  checkout-v2: {targets: [\"127.0.0.1:2\"]}\n"
                   "routes:\n"
                   "  - name: orders\n"
                   "    match: { path_prefix: /orders }\n"
                   "    upstream: orders\n"
                   "    timeout: 5s\n"
                   "    max_body_size: 1MiB\n"
                   "    retry:\n"
                   "      attempts: 3\n"
                   "      on: [connect_failure, reset, 502, 503, 504]\n"
                   "      per_try_timeout: 1s\n"
                   "      backoff: { base: 25ms, max: 250ms }\n"
                   "      methods: [GET, HEAD, PUT, DELETE]\n"
                   "      budget: 20%\n"
                   "  - name: checkout\n"
                   "    match: { path_prefix: /checkout }\n"
                   "    split:\n"
                   "      - { upstream: checkout-v1, weight: 95 }\n"
                   "      - { upstream: checkout-v2, weight: 5 }\n"
                   "    split_override: { header: X-Canary, value: \"1\", upstream: checkout-v2 }\n"
                   "    sticky: jwt.sub\n");
    const tg_upstream_conf_t *u = &cfg->upstreams[0];
    ck_assert_uint_eq(u->ntargets, 3);
    ck_assert_uint_eq(u->targets[0].weight, 3);
    ck_assert_uint_eq(u->targets[2].weight, 1);
    ck_assert_int_eq(u->balance, TG_BALANCE_HASH);
    ck_assert_int_eq(u->hash_key.kind, TG_KEY_CLAIM);
    ck_assert_str_eq(u->hash_key.name, "sub");
    ck_assert_uint_eq(u->resolve_ms, 30000);
    ck_assert_str_eq(u->health->host, "orders.internal");
    ck_assert_uint_eq(u->health->unhealthy, 3);
    ck_assert_uint_eq(u->circuit.max_pending, 256);
    ck_assert_uint_eq(u->outlier.base_ejection_time_ms, 30000);
    const tg_route_t *r = &cfg->routes[0];
    ck_assert_uint_eq(r->timeout_ms, 5000);
    ck_assert_uint_eq(r->max_body_size, 1024 * 1024);
    ck_assert_uint_eq(r->retry->attempts, 3);
    ck_assert_uint_eq(r->retry->budget_pct, 20);
    ck_assert(tg_retry_on_status(r->retry, 503) && !tg_retry_on_status(r->retry, 500));
    ck_assert(tg_retry_on_failure(r->retry, TG_FAIL_TIMEOUT)); /* through 504 */
    ck_assert_uint_eq(r->retry->methods & TG_METHOD_POST, 0);
    const tg_split_t *sp = cfg->routes[1].split;
    ck_assert_uint_eq(sp->nsides, 2);
    ck_assert_uint_eq(sp->total, 100);
    ck_assert_str_eq(sp->override_value, "1");
    ck_assert_ptr_eq(cfg->routes[1].upstream, &cfg->upstreams[1]); /* the heaviest side */
}
END_TEST

START_TEST(upstream_host_header)
{
    load_ok(
        LISTEN
        "upstreams:\n  u:\n    targets: [\"[::1]:80\", \"localhost:80\", \"localhost:8080\"]\n");
    const tg_upstream_conf_t *u = &cfg->upstreams[0];
    ck_assert_str_eq(u->targets[0].host_header, "[::1]");
    ck_assert_str_eq(u->targets[0].name, "[::1]:80");
    ck_assert_str_eq(u->targets[1].host_header, "localhost");
    ck_assert_str_eq(u->targets[2].host_header, "localhost:8080");
}
END_TEST

/* ---- routes -------------------------------------------------------------- */

START_TEST(route_errors)
{
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"  - upstream: nope\n", "t.yaml:7:15: unknown upstream 'nope' (known: u)"},
        {"  - name: a\n", "t.yaml:7:5: missing required key 'upstream'"},
        {"  - upstream: [u]\n", "t.yaml:7:15: expected a string"},
        {"  - upstream: u\n    retry: {on: [teapot]}\n",
         "t.yaml:8:18: unknown retry condition 'teapot' (known: connect_failure, reset, timeout, "
         "or a status from 400 to 599)"},
        {"  - upstream: u\n    retry: {methods: [CONNECT]}\n",
         "t.yaml:8:23: methods: 'CONNECT' cannot be retried (GET, HEAD, POST, PUT, DELETE, "
         "PATCH, OPTIONS or TRACE)"},
        {"  - upstream: u\n    retry: {budget: 0%}\n",
         "t.yaml:8:21: budget must be between 1% and 100%"},
        {"  - upstream: u\n    retry: {backoff: {base: 1s, max: 10ms}}\n",
         "t.yaml:8:22: backoff: max must not be below base"},
        {"  - upstream: u\n    timeout: 0s\n", "t.yaml:8:14: timeout must be greater than 0"},
        {"  - upstream: u\n    sticky: ip\n", "t.yaml:8:13: sticky needs split"},
        {"  - split: [{upstream: u, weight: 1}]\n",
         "t.yaml:7:12: split: expected a list of at least two {upstream, weight}"},
        {"  - upstream: u\n    foo: 1\n",
         "t.yaml:8:5: unknown key 'foo' in routes (known: name, match, strip_prefix, "
         "upstream, plugins, aggregate, redirect, respond, rewrite, websocket, host_header, "
         "timeout, max_body_size, retry, split, split_override, sticky)"},
        {"  - x\n", "t.yaml:7:5: expected a map, got 'x'"},
        {"  - upstream: u\n    match: x\n", "t.yaml:8:12: expected a map, got 'x'"},
        {"  - upstream: u\n    match:\n      foo: 1\n",
         "t.yaml:9:7: unknown key 'foo' in match (known: host, path, path_prefix, "
         "path_regex, methods, headers)"},
        {"  - upstream: u\n    match:\n      path: /a\n      path_prefix: /b\n",
         "t.yaml:10:7: only one of path, path_prefix and path_regex may be set"},
        {"  - upstream: u\n    match:\n      path_regex: /a\n      path: /b\n",
         "t.yaml:10:7: only one of path, path_prefix and path_regex may be set"},
        {"  - upstream: u\n    match:\n      path: a\n", "t.yaml:9:13: must start with '/'"},
        {"  - upstream: u\n    match:\n      path_prefix: \"\"\n",
         "t.yaml:9:20: must start with '/'"},
        {"  - upstream: u\n    strip_prefix: api\n", "t.yaml:8:19: must start with '/'"},
        {"  - upstream: u\n    match:\n      path_regex: \"^/v[0-9+$\"\n",
         "t.yaml:9:19: invalid path_regex: missing terminating ] for character class at offset 9"},
        {"  - upstream: u\n    match:\n      path_regex: \"(abc\"\n",
         "t.yaml:9:19: invalid path_regex: missing closing parenthesis at offset 4"},
        {"  - upstream: u\n    match:\n      methods: []\n",
         "t.yaml:9:16: expected at least one method"},
        {"  - upstream: u\n    match:\n      methods: [\"G T\"]\n",
         "t.yaml:9:17: invalid method 'G T'"},
        {"  - upstream: u\n    match:\n      methods: GET\n",
         "t.yaml:9:16: expected a sequence, got 'GET'"},
        {"  - upstream: u\n    match:\n      headers: {\"X Env\": a}\n",
         "t.yaml:9:17: invalid header name 'X Env'"},
        {"  - upstream: u\n    match:\n      headers: {X-Env: [a]}\n",
         "t.yaml:9:24: expected a string"},
        {"  - upstream: u\n    match:\n      headers: [a]\n", "t.yaml:9:16: expected a map"},
        {"  - upstream: u\n    match:\n      host: \"a b\"\n", "t.yaml:9:13: invalid host 'a b'"},
        {"  - upstream: u\n    match:\n      host: \"*.\"\n", "t.yaml:9:13: invalid host '*.'"},
        {"  - upstream: u\n    match:\n      host: \"a.*.com\"\n",
         "t.yaml:9:13: invalid host 'a.*.com'"},
        {"  - upstream: u\n    match:\n      host: \"\"\n", "t.yaml:9:13: invalid host ''"},
        {"  - name: a\n    upstream: u\n  - name: a\n    upstream: u\n",
         "t.yaml:9:11: duplicate route name 'a'"},
        {"  - name: route-1\n    upstream: u\n  - upstream: u\n",
         "t.yaml:9:5: duplicate route name 'route-1'"},
        {"  - name: \"\"\n    upstream: u\n", "t.yaml:7:11: route name must not be empty"},
        /* route paths are canonicalised like request paths; what a request may not
         * carry, a route may not name */
        {"  - upstream: u\n    match:\n      path: \"/a;b\"\n",
         "t.yaml:9:13: invalid path '/a;b': path parameter in path"},
        {"  - upstream: u\n    match:\n      path_prefix: /a%3Bb\n",
         "t.yaml:9:20: invalid path '/a%3Bb': encoded path parameter in path"},
        {"  - upstream: u\n    match:\n      path_prefix: /a%2Fb\n",
         "t.yaml:9:20: invalid path '/a%2Fb': encoded slash in path"},
        {"  - upstream: u\n    match:\n      path: /a%zz\n",
         "t.yaml:9:13: invalid path '/a%zz': malformed percent-encoding in path"},
        {"  - upstream: u\n    match:\n      path: \"/a b\"\n",
         "t.yaml:9:13: invalid path '/a b': invalid character in path"},
        {"  - upstream: u\n    strip_prefix: /a%5C\n",
         "t.yaml:8:19: invalid path '/a%5C': encoded backslash in path"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[400];
        snprintf(yaml, sizeof(yaml), UPS "routes:\n%s", cases[i].yaml);
        ck_assert_str_eq(load_err(yaml), cases[i].msg);
    }
    ck_assert_str_eq(load_err(UPS "routes: {}\n"), "t.yaml:6:9: expected a sequence");
    /* No upstreams at all: still a named error. */
    ck_assert_str_eq(load_err(LISTEN "routes:\n  - upstream: u\n"),
                     "t.yaml:4:15: unknown upstream 'u' (no upstreams are defined)");
}
END_TEST

START_TEST(route_match_details)
{
    load_ok(UPS "routes:\n"
                "  - match:\n      host: \"*\"\n      methods: [delete, Head, OPTIONS, TRACE, "
                "CONNECT, PUT, "
                "PATCH, MKCOL, purge]\n      headers: {}\n    upstream: u\n"
                "  - match:\n    upstream: u\n"
                "  - match: {host: \"[::1]\", path: \"/\"}\n    upstream: u\n");
    const tg_route_t *r = &cfg->routes[0];
    ck_assert_ptr_null(r->host);
    ck_assert_uint_eq(r->methods, TG_METHOD_DELETE | TG_METHOD_HEAD | TG_METHOD_OPTIONS |
                                      TG_METHOD_TRACE | TG_METHOD_CONNECT | TG_METHOD_PUT |
                                      TG_METHOD_PATCH | TG_METHOD_OTHER);
    ck_assert_str_eq(r->method_names[0], "MKCOL");
    ck_assert_str_eq(r->method_names[1], "PURGE");
    ck_assert_ptr_null(r->method_names[2]);
    ck_assert_uint_eq(r->nheaders, 0);
    ck_assert_str_eq(cfg->routes[1].name, "route-1");
    ck_assert_int_eq(cfg->routes[1].path_kind, TG_PATH_ANY);
    ck_assert_uint_eq(cfg->routes[1].methods, 0);
    ck_assert_str_eq(cfg->routes[2].host, "[::1]");
    ck_assert_str_eq(cfg->routes[2].name, "route-2");
}
END_TEST

/* path, path_prefix and strip_prefix are stored in canonical form. */
START_TEST(route_paths_canonical)
{
    load_ok(UPS "routes:\n"
                "  - match: {path: \"/v1/a%3ab\"}\n    upstream: u\n"
                "  - match: {path_prefix: \"/%61pi//x/./y/../%7e%c3%a9%3f\"}\n"
                "    strip_prefix: \"/%61pi%40\"\n    upstream: u\n");
    ck_assert_str_eq(cfg->routes[0].path, "/v1/a:b");
    ck_assert_uint_eq(cfg->routes[0].path_len, 7);
    ck_assert_str_eq(cfg->routes[1].path, "/api/x/~%C3%A9%3F");
    ck_assert_uint_eq(cfg->routes[1].path_len, strlen("/api/x/~%C3%A9%3F"));
    ck_assert_str_eq(cfg->routes[1].strip_prefix, "/api@");
    ck_assert_uint_eq(cfg->routes[1].strip_prefix_len, 5);
    /* encoded_slashes: keep lets a route name a %2F, upper-cased */
    load_ok(LISTEN "limits: {encoded_slashes: keep}\n"
                   "upstreams:\n  u:\n    targets: [\"127.0.0.1:9001\"]\n"
                   "routes:\n  - match: {path_prefix: /projects/g%2fn}\n    upstream: u\n");
    ck_assert_str_eq(cfg->routes[0].path, "/projects/g%2Fn");
}
END_TEST

START_TEST(failed_load_with_regex_frees)
{
    /* The regex of route 0 is compiled before route 1 fails: valgrind checks it is freed. */
    ck_assert_str_eq(load_err(UPS "routes:\n  - match: {path_regex: '^/a'}\n    upstream: u\n"
                                  "  - upstream: missing\n"),
                     "t.yaml:9:15: unknown upstream 'missing' (known: u)");
}
END_TEST

START_TEST(tracing_section)
{
    load_ok(UPS "tracing:\n  otlp_endpoint: \"http://127.0.0.1:4318/v1/traces\"\n"
                "  protocol: http/json\n  service_name: edge\n  sample_ratio: 0.25\n"
                "  headers: { Authorization: \"Bearer x\" }\n"
                "  batch: { max_spans: 100, interval: 500ms, queue: 1000 }\n");
    const tg_tracing_conf_t *t = cfg->tracing;
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t->service_name, "edge");
    ck_assert_str_eq(t->path, "/v1/traces");
    ck_assert_str_eq(t->host_header, "127.0.0.1:4318");
    ck_assert(t->sample_ratio == 0.25);
    ck_assert_uint_eq(t->nheaders, 1);
    ck_assert_str_eq(t->headers[0], "Authorization");
    ck_assert_uint_eq(t->max_spans, 100);
    ck_assert_uint_eq(t->interval_ms, 500);
    ck_assert_uint_eq(t->queue, 1000);
    ck_assert_uint_eq(t->timeout_ms, 10000);
    /* an upstream's name, defaults */
    load_ok(UPS "tracing:\n  otlp_endpoint: u\n");
    ck_assert_str_eq(cfg->tracing->path, "/v1/traces");
    ck_assert_str_eq(cfg->tracing->service_name, "tollgate");
    ck_assert(cfg->tracing->sample_ratio == 1.0);
    ck_assert_uint_eq(cfg->tracing->max_spans, 512);
    ck_assert_uint_eq(cfg->tracing->queue, 8192);
    load_ok(UPS "tracing:\n  otlp_endpoint: http://127.0.0.1\n");
    ck_assert_str_eq(cfg->tracing->host_header, "127.0.0.1");
    ck_assert_str_eq(cfg->tracing->path, "/v1/traces");
    ck_assert_ptr_null(cfg->tracing->tls);
    /* https: port 443, the system's CAs, the host is the name checked */
    load_ok(UPS "tracing:\n  otlp_endpoint: https://[::1]/otlp\n");
    ck_assert_ptr_nonnull(cfg->tracing->tls);
    ck_assert_str_eq(cfg->tracing->tls_name, "::1");
    ck_assert_str_eq(cfg->tracing->path, "/otlp");
    ck_addr(&cfg->tracing->addr, AF_INET6, "::1", 443);
}
END_TEST

START_TEST(tracing_errors)
{
    ck_assert_str_eq(load_err(UPS "tracing:\n  otlp_endpoint: nope\n"),
                     "t.yaml:7:18: otlp_endpoint 'nope' is neither an http:// URL nor an upstream");
    ck_assert_str_eq(
        load_err(UPS "tracing:\n  otlp_endpoint: http://127.0.0.1:4318\n  ca_file: ca.pem\n"),
        "t.yaml:8:12: ca_file is for an https:// otlp_endpoint");
    ck_assert_ptr_nonnull(
        strstr(load_err(UPS "tracing:\n  otlp_endpoint: https://127.0.0.1\n  ca_file: nope.pem\n"),
               "t.yaml:8:12: cannot load CA certificates from ./nope.pem"));
    ck_assert_str_eq(load_err(UPS "tracing:\n  otlp_endpoint: u\n  sample_ratio: 1.5\n"),
                     "t.yaml:8:17: sample_ratio must be a number between 0 and 1");
    ck_assert_str_eq(load_err(UPS "tracing:\n  otlp_endpoint: u\n  sample_ratio: x\n"),
                     "t.yaml:8:17: sample_ratio must be a number between 0 and 1");
    ck_assert_str_eq(load_err(UPS "tracing:\n  otlp_endpoint: u\n  protocol: http/protobuf\n"),
                     "t.yaml:8:13: protocol http/protobuf is not supported yet: use http/json");
    ck_assert_str_eq(load_err(UPS "tracing:\n  otlp_endpoint: u\n  headers: {\"a b\": x}\n"),
                     "t.yaml:8:13: invalid header name 'a b'");
    ck_assert_str_eq(load_err(UPS "tracing:\n  otlp_endpoint: u\n  headers: {Host: x}\n"),
                     "t.yaml:8:13: header 'Host' is written by the exporter");
    ck_assert_str_eq(
        load_err(UPS "tracing:\n  otlp_endpoint: u\n  batch: {max_spans: 10, queue: 5}\n"),
        "t.yaml:8:10: batch: max_spans (10) is larger than queue (5)");
    ck_assert_ptr_nonnull(strstr(load_err(UPS "tracing:\n  service_name: x\n"),
                                 "missing required key 'otlp_endpoint'"));
}
END_TEST

START_TEST(log_section)
{
    load_ok(UPS);
    ck_assert_int_eq(cfg->log.level, -1);
    ck_assert(!cfg->log.json);
    ck_assert_ptr_null(cfg->log.path);
    load_ok(UPS "log:\n  level: info\n  format: json\n  path: logs/error.log\n");
    ck_assert_int_eq(cfg->log.level, TG_LOG_INFO);
    ck_assert(cfg->log.json);
    ck_assert_str_eq(cfg->log.path, "./logs/error.log");
    load_ok(UPS "log:\n  path: stderr\n  level: error\n");
    ck_assert_ptr_null(cfg->log.path);
    ck_assert_int_eq(cfg->log.level, TG_LOG_ERROR);
    ck_assert_str_eq(load_err(UPS "log:\n  level: loud\n"),
                     "t.yaml:7:10: level must be error, warn, notice, info or debug, got 'loud'");
    ck_assert_str_eq(load_err(UPS "log:\n  format: xml\n"),
                     "t.yaml:7:11: format must be text or json, got 'xml'");
}
END_TEST

/* ---- HTTP/2 (listen[].http2, listen[].tls.alpn, limits.http2) ---------- */

START_TEST(http2_defaults_and_values)
{
    load_ok(LISTEN);
    ck_assert_uint_eq(cfg->listeners[0].http2, TG_H2_OFF);
    ck_assert_uint_eq(cfg->limits.http2.max_concurrent_streams, 128);
    ck_assert_uint_eq(cfg->limits.http2.initial_window_size, 256 * 1024);
    ck_assert_uint_eq(cfg->limits.http2.max_header_list_size, 32 * 1024);
    ck_assert_uint_eq(cfg->limits.http2.idle_timeout_ms, 60000);
    load_ok("listen:\n  - address: \":18080\"\n    http2: prior_knowledge\n"
            "  - address: \":18081\"\n    http2: off\n"
            "limits:\n  http2:\n    max_concurrent_streams: 16\n    initial_window_size: 64KiB\n"
            "    max_header_list_size: 8KiB\n    idle_timeout: 5s\n");
    ck_assert_uint_eq(cfg->listeners[0].http2, TG_H2_PRIOR_KNOWLEDGE);
    ck_assert_uint_eq(cfg->listeners[1].http2, TG_H2_OFF);
    ck_assert_uint_eq(cfg->limits.http2.max_concurrent_streams, 16);
    ck_assert_uint_eq(cfg->limits.http2.initial_window_size, 64 * 1024);
    ck_assert_uint_eq(cfg->limits.http2.max_header_list_size, 8 * 1024);
    ck_assert_uint_eq(cfg->limits.http2.idle_timeout_ms, 5000);
    load_ok(LISTEN "limits:\n  http2:\n");
    ck_assert_uint_eq(cfg->limits.http2.max_concurrent_streams, 128);
}
END_TEST

START_TEST(http2_errors)
{
    ck_assert_str_eq(load_err("listen:\n  - address: \":18080\"\n    http2: on\n"),
                     "t.yaml:3:12: invalid http2 'on' (expected off or prior_knowledge)");
    ck_assert_str_eq(load_err("listen:\n  - address: \":18080\"\n    http2: [x]\n"),
                     "t.yaml:3:12: expected a string");
    ck_assert_str_eq(load_err(LISTEN "admin:\n  address: \":18090\"\n  http2: off\n"),
                     "t.yaml:5:10: http2 is not supported on admin");
    ck_assert_str_eq(load_err(LISTEN "limits:\n  http2:\n    max_concurrent_streams: 0\n"),
                     "t.yaml:5:29: max_concurrent_streams must be between 1 and 65536");
    ck_assert_str_eq(load_err(LISTEN "limits:\n  http2:\n    initial_window_size: 4KiB\n"),
                     "t.yaml:5:26: initial_window_size must be between 16KiB and 2147483647B");
    ck_assert_str_eq(load_err(LISTEN "limits:\n  http2:\n    max_header_list_size: 100\n"),
                     "t.yaml:5:27: max_header_list_size must be between 1KiB and 16MiB");
    ck_assert_str_eq(load_err(LISTEN "limits:\n  http2:\n    idle_timeout: 5\n"),
                     "t.yaml:5:19: expected a duration like 10s, got '5'");
    ck_assert_str_eq(load_err(LISTEN "limits:\n  http2:\n    max_streams: 5\n"),
                     "t.yaml:5:5: unknown key 'max_streams' in limits.http2 (known: "
                     "max_concurrent_streams, initial_window_size, max_header_list_size, "
                     "idle_timeout)");
    /* tls.alpn is read before the certificates: its errors need none. */
    const char *tls = "listen:\n  - address: \":18080\"\n    tls:\n      certificates: []\n";
    char buf[512];
    snprintf(buf, sizeof(buf), "%s      alpn: [h3]\n", tls);
    ck_assert_str_eq(load_err(buf),
                     "t.yaml:5:14: unsupported ALPN protocol 'h3': expected h2 or http/1.1");
    snprintf(buf, sizeof(buf), "%s      alpn: [h2, h2]\n", tls);
    ck_assert_str_eq(load_err(buf), "t.yaml:5:18: 'h2' is listed twice");
    snprintf(buf, sizeof(buf), "%s      alpn: []\n", tls);
    ck_assert_str_eq(load_err(buf), "t.yaml:5:13: expected a list of h2 and/or http/1.1");
    snprintf(buf, sizeof(buf), "%s      alpn: h2\n", tls);
    ck_assert_str_eq(load_err(buf), "t.yaml:5:13: expected a list of h2 and/or http/1.1");
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    struct {
        const char *name;
        const TTest *tests[12];
    } groups[] = {
        {"files",
         {defaults, empty_sections_mean_defaults, full_file, full_file_upstreams, full_file_routes,
          example_config_loads, refcount, missing_file}},
        {"top", {top_level_errors, env_in_config, workers}},
        {"listen",
         {listen_errors, listen_backlog, listen_resolution_errors, admin, admin_token,
          parse_address}},
        {"trusted", {trusted_proxies, trusted_proxies_errors}},
        {"limits", {limits_errors, limits_headers_with_underscores}},
        {"observability", {tracing_section, tracing_errors, log_section}},
        {"http2", {http2_defaults_and_values, http2_errors}},
        {"upstreams", {upstream_errors, upstream_host_header, failure_isolation_contract}},
        {"routes",
         {route_errors, route_match_details, route_paths_canonical, failed_load_with_regex_frees}},
    };
    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        TCase *tc = tcase_create(groups[g].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        for (size_t i = 0; groups[g].tests[i] != NULL; i++)
            tcase_add_test(tc, groups[g].tests[i]);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
