/*
 * Templates (include/tollgate/template.h): "{variable}" text compiled at load
 * into parts, rendered per request into the request's arena with the
 * placement rules of its mode.
 */
#include "template.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "host.h"
#include "request.h"
#include "tollgate/text.h"

/* ---- compiling ---- */

static const struct {
    const char *prefix;
    tg_tpl_kind_t kind;
} prefixed[] = {
    {"jwt.", TG_TPL_JWT},   {"query.", TG_TPL_QUERY}, {"header.", TG_TPL_HEADER},
    {"path.", TG_TPL_PATH}, {"var.", TG_TPL_VAR},
};

static const struct {
    const char *name;
    tg_tpl_kind_t kind;
} named[] = {
    {"client_ip", TG_TPL_CLIENT_IP},   {"route", TG_TPL_ROUTE},
    {"request_id", TG_TPL_REQUEST_ID}, {"consumer", TG_TPL_CONSUMER},
    {"path_rest", TG_TPL_PATH_REST},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    tg_template_t *t;
    const tg_conf_node_t *node;
    const tg_route_t *route; /* NULL: a plugin's template */
    tg_conf_err_t *err;
} compile_t;

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL)
        abort(); /* as everywhere at load: out of memory is not a config error */
    return q;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = strndup(s, n);
    if (d == NULL)
        abort();
    return d;
}

static tg_tpl_part_t *add_part(tg_template_t *t, tg_tpl_kind_t kind, const char *s, size_t len)
{
    t->parts = xrealloc(t->parts, (t->nparts + 1) * sizeof(*t->parts));
    tg_tpl_part_t *p = &t->parts[t->nparts++];
    *p = (tg_tpl_part_t){.kind = kind, .text = xstrndup(s, len), .len = len};
    p->in_path = !t->has_query;
    if (kind == TG_TPL_LITERAL && t->mode != TG_TEMPLATE_HEADER && memchr(s, '?', len))
        t->has_query = true;
    return p;
}

/* The number of group name in the route's regex; 0 when bare and there is
 * no such group (the caller then says "unknown variable"). */
static int find_group(const compile_t *c, const char *name, bool bare)
{
    if (c->route == NULL) {
        if (bare)
            return 0;
        return tg_conf_error(c->err, c->node,
                             "{path.%s}: path groups exist only in route templates (aggregate, "
                             "rewrite, redirect, respond)",
                             name);
    }
    if (c->route->regex == NULL) {
        if (bare)
            return 0;
        return tg_conf_error(c->err, c->node,
                             "{path.%s} needs a path_regex with a (?<%s>...) group", name, name);
    }
    int n = pcre2_substring_number_from_name(c->route->regex, (PCRE2_SPTR)name);
    if (n > 0)
        return n;
    if (bare)
        return 0;
    return tg_conf_error(c->err, c->node, "path_regex has no group named '%s'", name);
}

static int unknown(const compile_t *c, const char *v, size_t len)
{
    return tg_conf_error(c->err, c->node,
                         "unknown template variable {%.*s}: use jwt.<claim>, query.<name>, "
                         "header.<Name>, path.<group>, var.<key>, client_ip, route, request_id, "
                         "consumer, path_rest or a named group of the route's path_regex",
                         (int)len, v);
}

static int parse_var(compile_t *c, const char *v, size_t len)
{
    tg_template_t *t = c->t;
    tg_tpl_part_t *p = NULL;
    for (size_t i = 0; i < COUNT(named) && p == NULL; i++)
        if (strlen(named[i].name) == len && memcmp(v, named[i].name, len) == 0)
            p = add_part(t, named[i].kind, v, len);
    for (size_t i = 0; i < COUNT(prefixed) && p == NULL; i++) {
        size_t pl = strlen(prefixed[i].prefix);
        if (len > pl && strncmp(v, prefixed[i].prefix, pl) == 0)
            p = add_part(t, prefixed[i].kind, v + pl, len - pl);
    }
    bool bare = p == NULL;
    if (bare) {
        /* Not a variable: a group of the route's regex, or nothing. */
        char *name = xstrndup(v, len);
        int n = find_group(c, name, true);
        free(name);
        if (n <= 0)
            return unknown(c, v, len);
        p = add_part(t, TG_TPL_PATH, v, len);
    }
    p->spelled = xstrndup(v, len);
    if (p->kind == TG_TPL_HEADER && !tg_token_valid(p->text, p->len))
        return tg_conf_error(c->err, c->node, "invalid header name in {%s}", p->spelled);
    if (p->kind != TG_TPL_PATH)
        return 0;
    t->has_group = true;
    p->group = find_group(c, p->text, bare);
    return p->group < 0 ? -1 : 0;
}

static int parse_parts(compile_t *c, const char *s)
{
    while (*s) {
        const char *open = strchr(s, '{');
        if (open == NULL) {
            add_part(c->t, TG_TPL_LITERAL, s, strlen(s));
            return 0;
        }
        if (open > s)
            add_part(c->t, TG_TPL_LITERAL, s, (size_t)(open - s));
        const char *close = strchr(open, '}');
        if (close == NULL)
            return tg_conf_error(c->err, c->node, "unterminated '{' in template");
        if (parse_var(c, open + 1, (size_t)(close - open - 1)) < 0)
            return -1;
        s = close + 1;
    }
    return 0;
}

static int check_literals(const compile_t *c)
{
    const tg_template_t *t = c->t;
    for (size_t i = 0; i < t->nparts; i++) {
        const tg_tpl_part_t *p = &t->parts[i];
        if (p->kind != TG_TPL_LITERAL)
            continue;
        bool ok = t->mode == TG_TEMPLATE_HEADER ? tg_field_value_valid(p->text, p->len)
                                                : tg_query_bytes_valid(p->text, p->len);
        if (!ok)
            return tg_conf_error(c->err, c->node,
                                 t->mode == TG_TEMPLATE_HEADER
                                     ? "template text is not a valid header value (control "
                                       "characters)"
                                     : "template text holds a space, a control character or '#'");
    }
    return 0;
}

/* Whether {path_rest} of the route can start with "/": a prefix that does not
 * end with "/" leaves "/..." or "", a route without a path condition the
 * whole path. */
static bool rest_may_start_with_slash(const tg_route_t *r)
{
    return r->path_kind == TG_PATH_ANY ||
           (r->path_kind == TG_PATH_PREFIX && r->path[r->path_len - 1] != '/');
}

/* {path_rest} in a path is inserted as it is: where it goes must not make
 * "//" (a protocol-relative redirect, an empty segment upstream). */
static int check_path_rest(const compile_t *c, size_t i)
{
    const tg_template_t *t = c->t;
    const tg_route_t *r = c->route;
    if (r == NULL)
        return t->mode == TG_TEMPLATE_HEADER
                   ? 0
                   : tg_conf_error(c->err, c->node,
                                   "{path_rest} in a path exists only in route templates");
    if (r->path_kind == TG_PATH_REGEX)
        return tg_conf_error(c->err, c->node,
                             "{path_rest} needs a path or path_prefix route: on a path_regex "
                             "route, use its named groups");
    if (t->mode == TG_TEMPLATE_HEADER || !t->parts[i].in_path || i == 0)
        return 0;
    const tg_tpl_part_t *prev = &t->parts[i - 1];
    if (prev->kind == TG_TPL_LITERAL && prev->text[prev->len - 1] == '/' &&
        rest_may_start_with_slash(r))
        return tg_conf_error(c->err, c->node,
                             "{path_rest} starts with '/' on this route: drop the '/' before it");
    return 0;
}

/* "https://host" and no "/" or "?" yet: the authority ends where the first
 * variable starts, which must then be a {path_rest} that starts with "/" or
 * is empty, so that no value can extend the host. */
static int check_authority(const compile_t *c, const char *start)
{
    const tg_template_t *t = c->t;
    const tg_tpl_part_t *first = &t->parts[0];
    const char *end = first->text + first->len;
    const char *stop = start + strcspn(start, "/?");
    if (!tg_host_valid(start, (size_t)(stop - start)))
        return tg_conf_error(c->err, c->node, "invalid host in redirect URL");
    if (stop < end || t->nparts == 1)
        return 0;
    const tg_tpl_part_t *next = &t->parts[1];
    if (next->kind != TG_TPL_PATH_REST)
        return tg_conf_error(c->err, c->node,
                             "a template variable cannot be part of the URL's host: put a '/' "
                             "after the host");
    if (c->route != NULL && c->route->path_kind == TG_PATH_PREFIX &&
        c->route->path[c->route->path_len - 1] == '/')
        return tg_conf_error(c->err, c->node,
                             "{path_rest} does not start with '/' on this route (its prefix ends "
                             "with '/'): write \"/{path_rest}\"");
    return 0;
}

static int check_start(const compile_t *c)
{
    const tg_template_t *t = c->t;
    const tg_tpl_part_t *first = t->nparts ? &t->parts[0] : NULL;
    const char *s = first && first->kind == TG_TPL_LITERAL ? first->text : "";
    if (t->mode == TG_TEMPLATE_PATH) {
        if (s[0] != '/')
            return tg_conf_error(c->err, c->node, "a path template must start with \"/\"");
        return 0;
    }
    /* Browsers read "/\host" as "//host": both name another site. */
    if (s[0] == '/' && s[1] != '/' && s[1] != '\\')
        return 0;
    if (strncasecmp(s, "http://", 7) == 0)
        return check_authority(c, s + 7);
    if (strncasecmp(s, "https://", 8) == 0)
        return check_authority(c, s + 8);
    return tg_conf_error(c->err, c->node,
                         "a redirect URL must start with \"/\" (not \"//\" nor \"/\\\"), "
                         "\"http://\" or \"https://\"");
}

static int check(const compile_t *c)
{
    const tg_template_t *t = c->t;
    if (check_literals(c) < 0)
        return -1;
    if (t->mode != TG_TEMPLATE_HEADER && check_start(c) < 0)
        return -1;
    for (size_t i = 0; i < t->nparts; i++)
        if (t->parts[i].kind == TG_TPL_PATH_REST && check_path_rest(c, i) < 0)
            return -1;
    return 0;
}

tg_template_t *tg_template_compile_route(const tg_conf_node_t *node, tg_template_mode_t mode,
                                         const tg_route_t *route, tg_conf_err_t *err)
{
    const char *s;
    if (node == NULL || tg_conf_get_string(node, &s, err) < 0)
        return NULL;
    if (mode != TG_TEMPLATE_HEADER && mode != TG_TEMPLATE_PATH && mode != TG_TEMPLATE_URL) {
        tg_conf_error(err, node, "unknown template mode %d", (int)mode);
        return NULL;
    }
    tg_template_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        abort();
    t->mode = mode;
    compile_t c = {.t = t, .node = node, .route = route, .err = err};
    if (parse_parts(&c, s) < 0 || check(&c) < 0) {
        tg_template_free(t);
        return NULL;
    }
    return t;
}

tg_template_t *tg_template_compile(const tg_conf_node_t *node, tg_template_mode_t mode,
                                   tg_conf_err_t *err)
{
    return tg_template_compile_route(node, mode, NULL, err);
}

void tg_template_free(tg_template_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nparts; i++) {
        free(t->parts[i].text);
        free(t->parts[i].spelled);
    }
    free(t->parts);
    free(t);
}

bool tg_template_is_literal(const tg_template_t *t)
{
    return t->nparts == 0 || (t->nparts == 1 && t->parts[0].kind == TG_TPL_LITERAL);
}

/* ---- rendering ---- */

/* The route's regex, run at most once per render over the path it matched. */
typedef struct {
    bool tried;
    pcre2_match_data *md;
    const char *subject;
} groups_t;

static void *arena_malloc(PCRE2_SIZE size, void *arena)
{
    return tg_arena_alloc(arena, size);
}

static void arena_free(void *p, void *arena)
{
    (void)p; /* released with the request */
    (void)arena;
}

/* Values that arrive percent-encoded (query parameters, path segments) are
 * decoded, so that encoding them again is exact: "%2F" can never become a
 * "/", nor "%252F" a "%2F". */
static const char *decoded(tg_request_t *req, const char *raw, size_t raw_len, unsigned flags,
                           size_t *len)
{
    char *v = tg_arena_alloc(req->arena, raw_len + 1);
    *len = (size_t)tg_percent_decode_flags(raw, raw_len, v, flags);
    v[*len] = '\0';
    return v;
}

static const char *group_value(tg_request_t *req, groups_t *g, int number, size_t *len)
{
    const pcre2_code *re = req->route ? req->route->regex : NULL;
    if (re == NULL)
        return NULL;
    if (!g->tried) {
        g->tried = true;
        size_t n;
        g->subject = tg_request_client_path(req, &n);
        pcre2_general_context *gc =
            pcre2_general_context_create(arena_malloc, arena_free, req->arena);
        g->md = gc ? pcre2_match_data_create_from_pattern(re, gc) : NULL;
        if (g->md && pcre2_match(re, (PCRE2_SPTR)g->subject, n, 0, 0, g->md, NULL) <= 0)
            g->md = NULL;
    }
    if (g->md == NULL || (uint32_t)number >= pcre2_get_ovector_count(g->md))
        return NULL;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(g->md);
    if (ov[2 * number] == PCRE2_UNSET)
        return NULL;
    return decoded(req, g->subject + ov[2 * number], ov[2 * number + 1] - ov[2 * number], 0, len);
}

/* {path_rest}: see template.h. */
static const char *path_rest(const tg_request_t *req, size_t *len)
{
    const tg_route_t *rt = req->route;
    size_t n;
    const char *p = tg_request_client_path(req, &n);
    if (rt == NULL || p == NULL)
        return NULL;
    switch (rt->path_kind) {
    case TG_PATH_PREFIX:
        if (n < rt->path_len)
            return NULL;
        *len = n - rt->path_len;
        return p + rt->path_len;
    case TG_PATH_EXACT:
        *len = 0;
        return "";
    case TG_PATH_ANY:
        *len = n;
        return p;
    case TG_PATH_REGEX:
    default:
        return NULL;
    }
}

static const char *part_value(tg_request_t *req, const tg_tpl_part_t *p, groups_t *g, size_t *len)
{
    const char *v;
    *len = 0;
    switch (p->kind) {
    case TG_TPL_JWT:
        return tg_request_claim(req, p->text, len);
    case TG_TPL_QUERY:
        v = tg_request_query_param(req, p->text, len);
        return v ? decoded(req, v, *len, TG_PERCENT_PLUS, len) : NULL;
    case TG_TPL_HEADER:
        return tg_request_header(req, p->text, len);
    case TG_TPL_PATH:
        return group_value(req, g, p->group, len);
    case TG_TPL_VAR:
        return tg_request_var_str(req, p->text, len);
    case TG_TPL_CLIENT_IP:
        v = tg_request_client_ip(req);
        break;
    case TG_TPL_ROUTE:
        v = tg_request_route(req);
        break;
    case TG_TPL_REQUEST_ID:
        return tg_request_id(req, len);
    case TG_TPL_CONSUMER:
        return tg_request_consumer(req, len);
    case TG_TPL_PATH_REST:
        return path_rest(req, len);
    case TG_TPL_LITERAL:
    default:
        *len = p->len;
        return p->text;
    }
    if (v != NULL)
        *len = strlen(v);
    return v;
}

/* Why a value cannot be placed where the part sits; NULL when it can. In a
 * path, missing and "" would give "//", and "." and ".." survive encoding
 * (they are unreserved) and would be dot-segments upstream: checked on every
 * path value wherever it sits in its segment, so that two values, or a value
 * and a literal dot, can never add up to one either. */
static const char *refusal(const tg_template_t *t, const tg_tpl_part_t *p, const char *v,
                           size_t len)
{
    if (t->mode == TG_TEMPLATE_HEADER) {
        if (v == NULL)
            return "is missing";
        return tg_field_value_valid(v, len) ? NULL : "is not a valid header value";
    }
    if (!p->in_path)
        return NULL;
    if (v == NULL)
        return "is missing";
    if (p->kind == TG_TPL_PATH_REST) /* a canonical path: "" is fine, dots are gone */
        return NULL;
    if (len == 0)
        return "is empty";
    if (len == 1 && v[0] == '.')
        return "is '.'";
    if (len == 2 && v[0] == '.' && v[1] == '.')
        return "is '..'";
    return NULL;
}

/* Whether a part's value goes in as it is (else percent-encoded). */
static bool raw(const tg_template_t *t, const tg_tpl_part_t *p)
{
    return p->kind == TG_TPL_LITERAL || t->mode == TG_TEMPLATE_HEADER ||
           (p->kind == TG_TPL_PATH_REST && p->in_path);
}

typedef struct {
    const char *v;
    size_t len;
} span_t;

int tg_template_render(tg_request_t *req, const tg_template_t *t, const char **out, size_t *len)
{
    if (tg_template_is_literal(t)) {
        *out = t->nparts ? t->parts[0].text : "";
        *len = t->nparts ? t->parts[0].len : 0;
        return 0;
    }
    span_t *vals = tg_arena_alloc(req->arena, t->nparts * sizeof(*vals));
    groups_t g = {0};
    size_t cap = 1;
    for (size_t i = 0; i < t->nparts; i++) {
        const tg_tpl_part_t *p = &t->parts[i];
        vals[i].v = part_value(req, p, &g, &vals[i].len);
        const char *why = refusal(t, p, vals[i].v, vals[i].len);
        if (why != NULL) {
            *out = tg_arena_printf(req->arena, "template value {%s} %s", p->spelled, why);
            *len = strlen(*out);
            return -1;
        }
        cap += raw(t, p) ? vals[i].len : 3 * vals[i].len;
    }
    char *buf = tg_arena_alloc(req->arena, cap), *w = buf;
    for (size_t i = 0; i < t->nparts; i++) {
        if (vals[i].v == NULL || vals[i].len == 0)
            continue;
        if (raw(t, &t->parts[i])) {
            memcpy(w, vals[i].v, vals[i].len);
            w += vals[i].len;
        } else {
            w += tg_percent_encode(vals[i].v, vals[i].len, w);
        }
    }
    *w = '\0';
    *out = buf;
    *len = (size_t)(w - buf);
    return 0;
}
