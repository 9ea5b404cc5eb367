/*
 * headers: request and response header transforms.
 *
 *   - name: headers
 *     config:
 *       request:
 *         set:    { X-Gateway: tollgate, X-User: "{jwt.sub}" }
 *         add:    { X-Tag: a }
 *         remove: [X-Debug]
 *         rename: { X-Old: X-New }
 *       response:
 *         set:    { Strict-Transport-Security: "max-age=31536000" }
 *         add:    { X-Served-By: "{route}" }
 *         remove: [Server, X-Powered-By]
 *
 * Values are templates (include/tollgate/template.h, header mode) rendered
 * per request; response templates read the request too. Request transforms
 * run in request_head, in the order remove, rename, set, add; response ones
 * in response_head (every response the client gets: the upstream's or a
 * generated one), in the order remove, set, add.
 *
 * `set` replaces every instance of the name (also a client's `_` spelling,
 * the core's setter folds them), so a client cannot smuggle a value in beside
 * the one set here. A value that cannot be rendered (a missing variable, or
 * one that is not a valid field value: CR, LF, NUL...) leaves the header out:
 * `set` still removes the other instances, `add` adds nothing. Never a 500 a
 * client could provoke, never a header the client chose. `rename` moves the
 * values of every instance to the new name, replacing that name's instances;
 * nothing happens when the old name is absent. Fields the gateway owns
 * (framing, Host, Expect, X-Request-Id, X-Forwarded-For toward the upstream;
 * framing and X-Request-Id toward the client) cannot be named anywhere: a
 * config error at load.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tollgate/plugin.h"

typedef struct {
    char *name;
    tg_template_t *value;
} tpl_header_t;

typedef struct {
    tpl_header_t *items;
    size_t n;
} tpl_list_t;

typedef struct {
    char **names;
    size_t n;
} name_list_t;

typedef struct {
    char **from, **to;
    size_t n;
} rename_list_t;

typedef struct {
    tpl_list_t set, add;
    name_list_t remove;
    rename_list_t rename;
} side_t;

typedef struct {
    side_t req, resp;
} headers_t;

/* ---- config ---- */

/* A name the side may touch: a token the gateway does not own. */
static int check_name(const tg_conf_node_t *n, bool response, tg_conf_err_t *err)
{
    if (n->type != TG_CONF_SCALAR)
        return tg_conf_error(err, n, "expected a header name");
    int rc = response ? tg_response_header_check(n->value, NULL, 0)
                      : tg_request_header_check(n->value, NULL, 0);
    if (rc == TG_EFORBIDDEN)
        return tg_conf_error(err, n,
                             "'%s' is a field the gateway owns (framing, Host, X-Request-Id...): "
                             "it cannot be changed here",
                             n->value);
    if (rc < 0)
        return tg_conf_error(err, n, "invalid header name '%s'", n->value);
    return 0;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        abort();
    return d;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (p == NULL)
        abort();
    return p;
}

static int parse_templates(const tg_conf_node_t *n, tpl_list_t *l, bool response,
                           tg_conf_err_t *err)
{
    if (n->type != TG_CONF_MAP)
        return tg_conf_error(err, n, "expected a map of header names to values");
    l->items = xcalloc(n->count, sizeof(*l->items));
    for (size_t i = 0; i < n->count; i++) {
        if (check_name(n->keys[i], response, err) < 0)
            return -1;
        for (size_t k = 0; k < i; k++)
            if (strcasecmp(n->keys[k]->value, n->keys[i]->value) == 0)
                return tg_conf_error(err, n->keys[i], "'%s' is written twice", n->keys[i]->value);
        tpl_header_t *h = &l->items[l->n++];
        h->name = xstrdup(n->keys[i]->value);
        h->value = tg_template_compile(n->items[i], TG_TEMPLATE_HEADER, err);
        if (h->value == NULL)
            return -1;
    }
    return 0;
}

static int parse_names(const tg_conf_node_t *n, name_list_t *l, bool response, tg_conf_err_t *err)
{
    bool seq = n->type == TG_CONF_SEQ; /* or one name */
    size_t count = seq ? n->count : 1;
    l->names = xcalloc(count, sizeof(char *));
    for (size_t i = 0; i < count; i++) {
        const tg_conf_node_t *item = seq ? n->items[i] : n;
        if (check_name(item, response, err) < 0)
            return -1;
        l->names[l->n++] = xstrdup(item->value);
    }
    return 0;
}

static int parse_renames(const tg_conf_node_t *n, rename_list_t *l, tg_conf_err_t *err)
{
    if (n->type != TG_CONF_MAP)
        return tg_conf_error(err, n, "expected a map of old names to new names");
    l->from = xcalloc(n->count, sizeof(char *));
    l->to = xcalloc(n->count, sizeof(char *));
    for (size_t i = 0; i < n->count; i++) {
        if (check_name(n->keys[i], false, err) < 0 || check_name(n->items[i], false, err) < 0)
            return -1;
        if (strcasecmp(n->keys[i]->value, n->items[i]->value) == 0)
            return tg_conf_error(err, n->items[i], "renames '%s' to itself", n->keys[i]->value);
        l->from[l->n] = xstrdup(n->keys[i]->value);
        l->to[l->n++] = xstrdup(n->items[i]->value);
    }
    return 0;
}

#define READER(fn, type, parse, response)                                 \
    static int fn(const tg_conf_node_t *n, void *out, tg_conf_err_t *err) \
    {                                                                     \
        return parse(n, (type *)out, response, err);                      \
    }
READER(req_set, tpl_list_t, parse_templates, false)
READER(resp_set, tpl_list_t, parse_templates, true)
READER(req_remove, name_list_t, parse_names, false)
READER(resp_remove, name_list_t, parse_names, true)

static int req_rename(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    return parse_renames(n, out, err);
}

static const tg_conf_field_t request_fields[] = {
    {"set", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(side_t, set), .parse = req_set},
    {"add", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(side_t, add), .parse = req_set},
    {"remove", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(side_t, remove), .parse = req_remove},
    {"rename", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(side_t, rename), .parse = req_rename},
    TG_CONF_END,
};

static const tg_conf_field_t response_fields[] = {
    {"set", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(side_t, set), .parse = resp_set},
    {"add", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(side_t, add), .parse = resp_set},
    {"remove", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(side_t, remove), .parse = resp_remove},
    TG_CONF_END,
};

static int read_request(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    return tg_conf_read(n, request_fields, "request", out, err);
}

static int read_response(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    return tg_conf_read(n, response_fields, "response", out, err);
}

static const tg_conf_field_t fields[] = {
    {"request", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(headers_t, req), .parse = read_request},
    {"response", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(headers_t, resp), .parse = read_response},
    TG_CONF_END,
};

static void free_side(side_t *s)
{
    tpl_list_t *lists[] = {&s->set, &s->add};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < lists[k]->n; i++) {
            free(lists[k]->items[i].name);
            tg_template_free(lists[k]->items[i].value);
        }
        free(lists[k]->items);
    }
    for (size_t i = 0; i < s->remove.n; i++)
        free(s->remove.names[i]);
    free(s->remove.names);
    for (size_t i = 0; i < s->rename.n; i++) {
        free(s->rename.from[i]);
        free(s->rename.to[i]);
    }
    free(s->rename.from);
    free(s->rename.to);
}

static void destroy(void *inst)
{
    headers_t *h = inst;
    free_side(&h->req);
    free_side(&h->resp);
    free(h);
}

static int create(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **out,
                  tg_conf_err_t *err)
{
    (void)env;
    headers_t *h = xcalloc(1, sizeof(*h));
    if (tg_conf_read(node, fields, NULL, h, err) < 0) {
        destroy(h);
        return -1;
    }
    *out = h;
    return 0;
}

/* ---- request ---- */

/* Moves every value of from to to (to's own instances go first). */
static void rename_header(tg_request_t *r, const char *from, const char *to)
{
    size_t flen = strlen(from), count = 0, nlen, vlen;
    const char *name, *value;
    for (size_t i = 0; tg_request_header_at(r, i, &name, &nlen, &value, &vlen); i++)
        count += nlen == flen && strncasecmp(name, from, flen) == 0;
    if (count == 0)
        return;
    const char **vals = tg_arena_alloc(tg_request_arena(r), count * sizeof(*vals));
    size_t *lens = tg_arena_alloc(tg_request_arena(r), count * sizeof(*lens));
    size_t k = 0;
    for (size_t i = 0; tg_request_header_at(r, i, &name, &nlen, &value, &vlen); i++) {
        if (nlen == flen && strncasecmp(name, from, flen) == 0) {
            vals[k] = value; /* in the arena: outlives the removal below */
            lens[k++] = vlen;
        }
    }
    tg_request_remove_header(r, from);
    tg_request_remove_header(r, to);
    for (size_t i = 0; i < count; i++)
        tg_request_add_header(r, to, vals[i], lens[i]);
}

static tg_filter_status_t request_head(tg_request_t *r, const tg_filter_t *f)
{
    const side_t *s = &((const headers_t *)f->instance)->req;
    const char *v;
    size_t len;
    for (size_t i = 0; i < s->remove.n; i++)
        tg_request_remove_header(r, s->remove.names[i]);
    for (size_t i = 0; i < s->rename.n; i++)
        rename_header(r, s->rename.from[i], s->rename.to[i]);
    for (size_t i = 0; i < s->set.n; i++) {
        const tpl_header_t *h = &s->set.items[i];
        if (tg_template_render(r, h->value, &v, &len) < 0 ||
            tg_request_set_header(r, h->name, v, len) < 0)
            tg_request_remove_header(r, h->name);
    }
    for (size_t i = 0; i < s->add.n; i++) {
        const tpl_header_t *h = &s->add.items[i];
        if (tg_template_render(r, h->value, &v, &len) == 0)
            tg_request_add_header(r, h->name, v, len);
    }
    return TG_FILTER_CONTINUE;
}

/* ---- response ---- */

static tg_filter_status_t response_head(tg_request_t *r, const tg_filter_t *f)
{
    const side_t *s = &((const headers_t *)f->instance)->resp;
    const char *v;
    size_t len;
    for (size_t i = 0; i < s->remove.n; i++)
        tg_response_remove_header(r, s->remove.names[i]);
    for (size_t i = 0; i < s->set.n; i++) {
        const tpl_header_t *h = &s->set.items[i];
        if (tg_template_render(r, h->value, &v, &len) < 0 ||
            tg_response_set_header(r, h->name, v, len) < 0)
            tg_response_remove_header(r, h->name);
    }
    for (size_t i = 0; i < s->add.n; i++) {
        const tpl_header_t *h = &s->add.items[i];
        if (tg_template_render(r, h->value, &v, &len) == 0)
            tg_response_add_header(r, h->name, v, len);
    }
    return TG_FILTER_CONTINUE;
}

TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = TG_PLUGIN_ABI,
    .name = "headers",
    .version = TG_VERSION,
    .create = create,
    .destroy = destroy,
    .request_head = request_head,
    .response_head = response_head,
};
