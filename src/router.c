#include "router.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Layout: one array of per-route facts (lengths precomputed so that matching
 * never calls strlen), and one array of pointers to them sorted by
 * (host class, host, path kind, path key, file order). Each host group is a
 * slice of that array whose candidates are already in precedence order:
 * exact paths (sorted by bytes, for binary search), prefixes by length
 * descending, regexes, then routes without a path condition. Exact and
 * wildcard groups are sorted by host, so both are found by binary search.
 */

enum { HOST_EXACT = 0, HOST_WILD, HOST_ANY };

typedef struct {
    const tg_route_t *route;
    size_t pos;          /* index in cfg->routes: the file-order tie-break */
    int host_class;      /* HOST_* */
    size_t host_len;     /* route->host without a trailing dot */
    size_t path_len;     /* route->path */
    const size_t *mlens; /* lengths of route->method_names */
    size_t nmnames;
    const size_t *hlens; /* name and value lengths of route->headers, interleaved */
    bool jit;            /* route->regex was JIT-compiled */
} rinfo_t;

typedef struct {
    const char *host; /* lower-case; ".example.com" for wildcards; NULL for host-less */
    size_t host_len;
    const rinfo_t *const *cand; /* exact, then prefix, then regex, then any */
    size_t nexact, nprefix, nregex, nany;
} group_t;

struct tg_router_s {
    rinfo_t *info;
    const rinfo_t **order;
    size_t *lens;    /* pool behind rinfo_t.mlens and .hlens */
    group_t *groups; /* exact-host groups, then wildcard groups */
    size_t nexact_groups, nwild_groups;
    group_t any; /* routes without a host condition */
};

static inline unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

/* Case-insensitive three-way comparison of two byte strings (ASCII only:
 * host names are compared after IDNA, header names are tokens). */
static int ci_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++) {
        int d = lower((unsigned char)a[i]) - lower((unsigned char)b[i]);
        if (d != 0)
            return d;
    }
    return alen < blen ? -1 : alen > blen;
}

static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int d = memcmp(a, b, alen < blen ? alen : blen);
    if (d != 0)
        return d;
    return alen < blen ? -1 : alen > blen;
}

uint32_t tg_router_method_bit(const char *m, size_t len)
{
    /* RFC 9110 section 9.1: method tokens are case-sensitive. */
    static const struct {
        const char *name;
        size_t len;
        uint32_t bit;
    } tab[] = {
        {"GET", 3, TG_METHOD_GET},         {"HEAD", 4, TG_METHOD_HEAD},
        {"POST", 4, TG_METHOD_POST},       {"PUT", 3, TG_METHOD_PUT},
        {"DELETE", 6, TG_METHOD_DELETE},   {"PATCH", 5, TG_METHOD_PATCH},
        {"OPTIONS", 7, TG_METHOD_OPTIONS}, {"TRACE", 5, TG_METHOD_TRACE},
        {"CONNECT", 7, TG_METHOD_CONNECT},
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        if (tab[i].len == len && memcmp(tab[i].name, m, len) == 0)
            return tab[i].bit;
    }
    return TG_METHOD_OTHER;
}

/* ---- matching ---- */

static bool method_ok(const rinfo_t *ri, const tg_route_query_t *q, uint32_t bit)
{
    uint32_t want = ri->route->methods;
    if (want == 0)
        return true;
    if (bit != TG_METHOD_OTHER)
        return (want & bit) != 0;
    if (!(want & TG_METHOD_OTHER))
        return false;
    for (size_t i = 0; i < ri->nmnames; i++) {
        if (ri->mlens[i] == q->method_len &&
            memcmp(ri->route->method_names[i], q->method, q->method_len) == 0)
            return true;
    }
    return false;
}

static bool header_present(const char *name, size_t nlen, const char *value, size_t vlen,
                           const tg_route_query_t *q)
{
    for (size_t i = 0; i < q->nheaders; i++) {
        const tg_http_header_t *h = &q->headers[i];
        if (h->value_len == vlen && h->name_len == nlen && ci_cmp(h->name, nlen, name, nlen) == 0 &&
            memcmp(h->value, value, vlen) == 0)
            return true;
    }
    return false;
}

static bool conds_ok(const rinfo_t *ri, const tg_route_query_t *q, uint32_t bit)
{
    if (!method_ok(ri, q, bit))
        return false;
    const tg_route_t *r = ri->route;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!header_present(r->headers[i].name, ri->hlens[2 * i], r->headers[i].value,
                            ri->hlens[2 * i + 1], q))
            return false;
    }
    return true;
}

/* Segment-aware: "/api" matches "/api" and "/api/x" but not "/apix"; a prefix
 * ending in "/" (including "/" itself) matches anything that starts with it. */
static bool prefix_ok(const rinfo_t *ri, const char *path, size_t len)
{
    size_t n = ri->path_len;
    const char *p = ri->route->path;
    if (n > len || memcmp(p, path, n) != 0)
        return false;
    return n == len || p[n - 1] == '/' || path[n] == '/';
}

static bool regex_ok(const rinfo_t *ri, const char *path, size_t len, pcre2_match_data *md)
{
    if (md == NULL)
        return false;
    int rc = ri->jit ? pcre2_jit_match(ri->route->regex, (PCRE2_SPTR)path, len, 0, 0, md, NULL)
                     : pcre2_match(ri->route->regex, (PCRE2_SPTR)path, len, 0, 0, md, NULL);
    /* rc == 0: matched but the ovector was too small, still a match. Errors
     * such as the match limit count as no match. */
    return rc >= 0;
}

/* First index in cand[0..n) whose exact path is >= path. */
static size_t exact_lower_bound(const rinfo_t *const *cand, size_t n, const char *path, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (bytes_cmp(cand[mid]->route->path, cand[mid]->path_len, path, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const tg_route_t *group_match(const group_t *g, const tg_route_query_t *q, uint32_t bit,
                                     const char *path, size_t len, pcre2_match_data *md)
{
    const rinfo_t *const *c = g->cand;
    if (c == NULL)
        return NULL; /* empty group */
    for (size_t i = exact_lower_bound(c, g->nexact, path, len); i < g->nexact; i++) {
        if (c[i]->path_len != len || memcmp(c[i]->route->path, path, len) != 0)
            break;
        if (conds_ok(c[i], q, bit))
            return c[i]->route;
    }
    c += g->nexact;
    for (size_t i = 0; i < g->nprefix; i++) {
        if (prefix_ok(c[i], path, len) && conds_ok(c[i], q, bit))
            return c[i]->route;
    }
    c += g->nprefix;
    for (size_t i = 0; i < g->nregex; i++) {
        /* Conditions first: they are cheaper than the regex. */
        if (conds_ok(c[i], q, bit) && regex_ok(c[i], path, len, md))
            return c[i]->route;
    }
    c += g->nregex;
    for (size_t i = 0; i < g->nany; i++) {
        if (conds_ok(c[i], q, bit))
            return c[i]->route;
    }
    return NULL;
}

/* Binary search for host among groups[0..n) (sorted case-insensitively). */
static const group_t *find_group(const group_t *groups, size_t n, const char *host, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = ci_cmp(groups[mid].host, groups[mid].host_len, host, len);
        if (d == 0)
            return &groups[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* RFC 9110 section 7.2: Host = uri-host [ ":" port ]; uri-host may be an
 * IP-literal "[v6]". A trailing dot names the same (absolute) domain. */
static size_t host_name_len(const char *host, size_t len)
{
    size_t n = len;
    if (len > 0 && host[0] == '[') {
        const char *end = memchr(host, ']', len);
        return end ? (size_t)(end - host) + 1 : len;
    }
    const char *colon = memchr(host, ':', len);
    if (colon)
        n = (size_t)(colon - host);
    if (n > 0 && host[n - 1] == '.')
        n--;
    return n;
}

const tg_route_t *tg_router_match(const tg_router_t *router, const tg_route_query_t *q,
                                  pcre2_match_data *md)
{
    const char *path = q->path ? q->path : "";
    size_t len = q->path ? q->path_len : 0;
    uint32_t bit = q->method_bit ? q->method_bit : tg_router_method_bit(q->method, q->method_len);
    const tg_route_t *r;
    size_t hlen = q->host ? host_name_len(q->host, q->host_len) : 0;
    if (hlen > 0) {
        const group_t *g = find_group(router->groups, router->nexact_groups, q->host, hlen);
        if (g && (r = group_match(g, q, bit, path, len, md)) != NULL)
            return r;
        /* Each suffix starting at a dot, longest first, so the longest
         * wildcard wins; the first label must not be empty. */
        const group_t *wild = router->groups + router->nexact_groups;
        for (size_t i = 1; i < hlen && router->nwild_groups > 0; i++) {
            if (q->host[i] != '.')
                continue;
            g = find_group(wild, router->nwild_groups, q->host + i, hlen - i);
            if (g && (r = group_match(g, q, bit, path, len, md)) != NULL)
                return r;
        }
    }
    return group_match(&router->any, q, bit, path, len, md);
}

/* ---- building ---- */

static int route_host_class(const tg_route_t *r)
{
    if (r->host == NULL)
        return HOST_ANY;
    return r->host_wildcard ? HOST_WILD : HOST_EXACT;
}

static int kind_rank(tg_path_match_t k)
{
    switch (k) {
    case TG_PATH_EXACT:
        return 0;
    case TG_PATH_PREFIX:
        return 1;
    case TG_PATH_REGEX:
        return 2;
    default:
        return 3;
    }
}

static int order_cmp(const void *pa, const void *pb)
{
    const rinfo_t *a = *(const rinfo_t *const *)pa, *b = *(const rinfo_t *const *)pb;
    if (a->host_class != b->host_class)
        return a->host_class - b->host_class;
    if (a->host_class != HOST_ANY) {
        int d = ci_cmp(a->route->host, a->host_len, b->route->host, b->host_len);
        if (d != 0)
            return d;
    }
    int ka = kind_rank(a->route->path_kind), kb = kind_rank(b->route->path_kind);
    if (ka != kb)
        return ka - kb;
    if (a->route->path_kind == TG_PATH_EXACT) {
        int d = bytes_cmp(a->route->path, a->path_len, b->route->path, b->path_len);
        if (d != 0)
            return d;
    } else if (a->route->path_kind == TG_PATH_PREFIX && a->path_len != b->path_len) {
        return a->path_len > b->path_len ? -1 : 1;
    }
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int route_error(tg_conf_err_t *err, const tg_route_t *r, const char *what)
{
    const char *name = r->name ? r->name : "?";
    if (r->node)
        return tg_conf_error(err, r->node, "route '%s': %s", name, what);
    snprintf(err->msg, sizeof(err->msg), "route '%s': %s", name, what);
    return -1;
}

static int check_route(const tg_route_t *r, tg_conf_err_t *err)
{
    if (r->host_wildcard && (r->host == NULL || r->host[0] != '.' || r->host[1] == '\0'))
        return route_error(err, r, "invalid wildcard host");
    if (r->host != NULL && r->host[0] == '\0')
        return route_error(err, r, "empty host");
    switch (r->path_kind) {
    case TG_PATH_ANY:
        return 0;
    case TG_PATH_EXACT:
    case TG_PATH_PREFIX:
        if (r->path == NULL || r->path[0] != '/')
            return route_error(err, r, "path must start with '/'");
        return 0;
    case TG_PATH_REGEX:
        return r->regex ? 0 : route_error(err, r, "path_regex is not compiled");
    }
    return route_error(err, r, "unknown path match kind");
}

static size_t count_lens(const tg_config_t *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const tg_route_t *r = &cfg->routes[i];
        for (char **m = r->method_names; m && *m; m++)
            n++;
        n += 2 * r->nheaders;
    }
    return n;
}

static void fill_info(rinfo_t *ri, const tg_route_t *r, size_t pos, size_t **pool)
{
    ri->route = r;
    ri->pos = pos;
    ri->host_class = route_host_class(r);
    ri->host_len = r->host ? strlen(r->host) : 0;
    if (ri->host_len > 1 && r->host[ri->host_len - 1] == '.')
        ri->host_len--;
    ri->path_len = r->path ? (r->path_len ? r->path_len : strlen(r->path)) : 0;
    if (r->path_kind == TG_PATH_REGEX) {
        size_t jitsize = 0;
        ri->jit = pcre2_pattern_info(r->regex, PCRE2_INFO_JITSIZE, &jitsize) == 0 && jitsize > 0;
    }
    ri->mlens = *pool;
    for (char **m = r->method_names; m && *m; m++)
        (*pool)[ri->nmnames++] = strlen(*m);
    *pool += ri->nmnames;
    ri->hlens = *pool;
    for (size_t i = 0; i < r->nheaders; i++) {
        (*pool)[2 * i] = strlen(r->headers[i].name);
        (*pool)[2 * i + 1] = strlen(r->headers[i].value);
    }
    *pool += 2 * r->nheaders;
}

static bool same_names(const rinfo_t *a, const rinfo_t *b)
{
    for (size_t i = 0; i < a->nmnames; i++) {
        size_t j = 0;
        while (j < b->nmnames && strcmp(a->route->method_names[i], b->route->method_names[j]) != 0)
            j++;
        if (j == b->nmnames)
            return false;
    }
    return true;
}

static bool headers_in(const tg_route_t *a, const tg_route_t *b)
{
    for (size_t i = 0; i < a->nheaders; i++) {
        size_t j = 0;
        while (j < b->nheaders && (ci_cmp(a->headers[i].name, strlen(a->headers[i].name),
                                          b->headers[j].name, strlen(b->headers[j].name)) != 0 ||
                                   strcmp(a->headers[i].value, b->headers[j].value) != 0))
            j++;
        if (j == b->nheaders)
            return false;
    }
    return true;
}

/* Same method and header conditions (as sets): the later route is unreachable. */
static bool same_conds(const rinfo_t *a, const rinfo_t *b)
{
    const tg_route_t *ra = a->route, *rb = b->route;
    if (ra->methods != rb->methods || ra->nheaders != rb->nheaders)
        return false;
    if ((ra->methods & TG_METHOD_OTHER) && (!same_names(a, b) || !same_names(b, a)))
        return false;
    return headers_in(ra, rb) && headers_in(rb, ra);
}

/* Whether a and b (same group, adjacent in precedence order) have the same
 * path condition. Regexes are not compared: equal patterns are not detectable
 * from compiled code. */
static bool same_path(const rinfo_t *a, const rinfo_t *b)
{
    tg_path_match_t k = a->route->path_kind;
    if (k != b->route->path_kind || k == TG_PATH_REGEX)
        return false;
    if (k == TG_PATH_ANY)
        return true;
    return a->path_len == b->path_len && memcmp(a->route->path, b->route->path, a->path_len) == 0;
}

/* Reports a route shadowed by an earlier one with identical conditions.
 * Routes with the same path kind and key are contiguous within a group, the
 * earlier in file order first. */
static int check_duplicates(const rinfo_t *const *cand, size_t n, tg_conf_err_t *err)
{
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j-- > 0 && same_path(cand[j], cand[i]);) {
            if (!same_conds(cand[j], cand[i]))
                continue;
            char what[300];
            snprintf(what, sizeof(what),
                     "same host, path, methods and headers as route '%s': it can never match",
                     cand[j]->route->name ? cand[j]->route->name : "?");
            return route_error(err, cand[i]->route, what);
        }
    }
    return 0;
}

static void init_group(group_t *g, const rinfo_t *const *cand, size_t n)
{
    g->host = cand[0]->route->host;
    g->host_len = cand[0]->host_len;
    g->cand = cand;
    for (size_t i = 0; i < n; i++) {
        switch (cand[i]->route->path_kind) {
        case TG_PATH_EXACT:
            g->nexact++;
            break;
        case TG_PATH_PREFIX:
            g->nprefix++;
            break;
        case TG_PATH_REGEX:
            g->nregex++;
            break;
        default:
            g->nany++;
        }
    }
}

static bool same_group(const rinfo_t *a, const rinfo_t *b)
{
    return a->host_class == b->host_class &&
           (a->host_class == HOST_ANY ||
            ci_cmp(a->route->host, a->host_len, b->route->host, b->host_len) == 0);
}

/* Splits the sorted order into host groups. */
static int make_groups(tg_router_t *rt, size_t n, tg_conf_err_t *err)
{
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) {
        const rinfo_t *ri = rt->order[i];
        if (ri->host_class != HOST_ANY && (i == 0 || !same_group(rt->order[i - 1], ri)))
            ng++;
    }
    rt->groups = calloc(ng ? ng : 1, sizeof(*rt->groups));
    if (rt->groups == NULL)
        return route_error(err, rt->order[0]->route, "out of memory");
    for (size_t i = 0, end; i < n; i = end) {
        for (end = i + 1; end < n && same_group(rt->order[i], rt->order[end]); end++)
            ;
        const rinfo_t *const *slice = rt->order + i;
        int cls = rt->order[i]->host_class;
        group_t *g = cls == HOST_ANY ? &rt->any : &rt->groups[rt->nexact_groups + rt->nwild_groups];
        init_group(g, slice, end - i);
        if (cls == HOST_EXACT)
            rt->nexact_groups++;
        else if (cls == HOST_WILD)
            rt->nwild_groups++;
        if (check_duplicates(slice, end - i, err) < 0)
            return -1;
    }
    return 0;
}

static int build(tg_router_t *rt, tg_config_t *cfg, tg_conf_err_t *err)
{
    size_t n = cfg->nroutes;
    for (size_t i = 0; i < n; i++)
        if (check_route(&cfg->routes[i], err) < 0)
            return -1;
    rt->info = calloc(n, sizeof(*rt->info));
    rt->order = calloc(n, sizeof(*rt->order));
    rt->lens = calloc(count_lens(cfg) + 1, sizeof(*rt->lens));
    if (rt->info == NULL || rt->order == NULL || rt->lens == NULL) {
        snprintf(err->msg, sizeof(err->msg), "router: out of memory");
        return -1;
    }
    size_t *pool = rt->lens;
    for (size_t i = 0; i < n; i++) {
        fill_info(&rt->info[i], &cfg->routes[i], i, &pool);
        rt->order[i] = &rt->info[i];
    }
    qsort(rt->order, n, sizeof(*rt->order), order_cmp);
    return make_groups(rt, n, err);
}

int tg_router_build(tg_config_t *cfg, tg_conf_err_t *err)
{
    tg_router_t *rt = calloc(1, sizeof(*rt));
    if (rt == NULL) {
        snprintf(err->msg, sizeof(err->msg), "router: out of memory");
        return -1;
    }
    if (cfg->nroutes > 0 && build(rt, cfg, err) < 0) {
        tg_router_free(rt);
        return -1;
    }
    tg_router_free(cfg->router);
    cfg->router = rt;
    return 0;
}

void tg_router_free(tg_router_t *rt)
{
    if (rt == NULL)
        return;
    free(rt->groups);
    free(rt->lens);
    free(rt->order);
    free(rt->info);
    free(rt);
}
