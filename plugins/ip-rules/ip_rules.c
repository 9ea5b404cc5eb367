/*
 * ip-rules: lets a request through or refuses it by the client's address.
 *
 *   - name: ip-rules
 *     config:
 *       allow: ["10.0.0.0/8", "2001:db8::/32"]   # or deny: [...]; exactly one of them
 *       status: 403                              # the refusal's status (400-599)
 *       message: forbidden                       # its JSON error text
 *
 * The address is the real client's (tg_request_client_addr: the peer, or
 * behind trusted_proxies the X-Forwarded-For address the core settled on),
 * never a header read here. IPv4-mapped IPv6 peers (::ffff:a.b.c.d on a
 * dual-stack listener) match IPv4 blocks. The blocks are the core's own
 * (tollgate/cidr.h): one parser and one matcher for trusted_proxies and this.
 */
#include <stdlib.h>
#include <string.h>

#include "tollgate/plugin.h"
#include "tollgate/trace.h"

typedef struct {
    tg_cidr_t *blocks;
    size_t n;
    bool allow; /* allow: listed addresses pass; deny: listed addresses are refused */
    uint64_t status;
    char *message;
    /* read by the table, then turned into blocks */
    const tg_conf_node_t *allow_node, *deny_node;
} ip_rules_t;

static const tg_conf_field_t fields[] = {
    {"allow", TG_CONF_FIELD_NODE, TG_CONF_AT(ip_rules_t, allow_node)},
    {"deny", TG_CONF_FIELD_NODE, TG_CONF_AT(ip_rules_t, deny_node)},
    {"status", TG_CONF_FIELD_UINT, TG_CONF_AT(ip_rules_t, status), .min = 400, .max = 599,
     .def = 403},
    {"message", TG_CONF_FIELD_STRING, TG_CONF_AT(ip_rules_t, message), .flags = TG_CONF_NONEMPTY,
     .max = 256, .def_str = "forbidden"},
    TG_CONF_END,
};

static void destroy(void *instance)
{
    ip_rules_t *c = instance;
    if (c == NULL)
        return;
    tg_conf_fields_free(fields, c);
    free(c->blocks);
    free(c);
}

/* A list of blocks (one string is a list of one), each an error at its own node. */
static int parse_blocks(ip_rules_t *c, const tg_conf_node_t *n, tg_conf_err_t *err)
{
    size_t count = n->type == TG_CONF_SEQ ? n->count : 1;
    if (n->type != TG_CONF_SEQ && n->type != TG_CONF_SCALAR)
        return tg_conf_error(err, n, "expected an address block or a list of them");
    if (count == 0)
        return tg_conf_error(err, n, "expected at least one address block");
    if ((c->blocks = calloc(count, sizeof(*c->blocks))) == NULL)
        return tg_conf_error(err, n, "out of memory");
    for (; c->n < count; c->n++) {
        const tg_conf_node_t *item = n->type == TG_CONF_SEQ ? n->items[c->n] : n;
        const char *s;
        if (tg_conf_get_string(item, &s, err) < 0)
            return -1;
        if (tg_cidr_parse(s, &c->blocks[c->n]) < 0)
            return tg_conf_error(err, item,
                                 "invalid address block \"%s\" (expected IP or IP/prefix, "
                                 "IPv4 or IPv6)",
                                 s);
    }
    return 0;
}

static int create(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **instance,
                  tg_conf_err_t *err)
{
    (void)env;
    ip_rules_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return tg_conf_error(err, node, "out of memory");
    if (tg_conf_read(node, fields, NULL, c, err) < 0)
        goto fail;
    if (c->allow_node != NULL && c->deny_node != NULL) {
        tg_conf_error(err, c->deny_node,
                      "\"allow\" and \"deny\" together: write one list (allow: only these pass; "
                      "deny: all but these pass)");
        goto fail;
    }
    if (c->allow_node == NULL && c->deny_node == NULL) {
        tg_conf_error(err, node, "ip-rules needs \"allow\" or \"deny\" (a list of address blocks)");
        goto fail;
    }
    c->allow = c->allow_node != NULL;
    if (parse_blocks(c, c->allow ? c->allow_node : c->deny_node, err) < 0)
        goto fail;
    c->allow_node = c->deny_node = NULL;
    *instance = c;
    return 0;
fail:
    destroy(c);
    return -1;
}

/* Whether the rules let addr through. */
static bool passes(const ip_rules_t *c, const struct sockaddr *addr)
{
    return tg_cidr_list_contains(c->blocks, c->n, addr) == c->allow;
}

static tg_filter_status_t request_head(tg_request_t *r, const tg_filter_t *f)
{
    const ip_rules_t *c = f->instance;
    if (passes(c, tg_request_client_addr(r)))
        return TG_FILTER_CONTINUE;
    tg_request_var_set_str(r, "auth.error", "ip_denied", 9);
    tg_request_span_event(r, "ip_rules.denied", NULL, NULL);
    tg_request_respond_error(r, (int)c->status, c->message);
    return TG_FILTER_RESPONDED;
}

TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = TG_PLUGIN_ABI,
    .name = "ip-rules",
    .version = TG_VERSION,
    .create = create,
    .destroy = destroy,
    .request_head = request_head,
};
