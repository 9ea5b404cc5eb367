/*
 * The template engine's compiled form (include/tollgate/template.h), and the
 * compiler the core's route templates use: with the route at hand, named
 * groups of its path_regex and the shape of {path_rest} are checked at load.
 */
#ifndef TG_TEMPLATE_H
#define TG_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "tollgate/template.h"

typedef enum {
    TG_TPL_LITERAL = 0,
    TG_TPL_JWT,        /* {jwt.<claim>}: tg_request_claim */
    TG_TPL_QUERY,      /* {query.<name>}: decoded */
    TG_TPL_HEADER,     /* {header.<Name>} */
    TG_TPL_PATH,       /* {path.<group>} or {<group>}: decoded */
    TG_TPL_VAR,        /* {var.<key>} */
    TG_TPL_CLIENT_IP,  /* {client_ip} */
    TG_TPL_ROUTE,      /* {route} */
    TG_TPL_REQUEST_ID, /* {request_id} */
    TG_TPL_CONSUMER,   /* {consumer}: key-auth's consumer (tg_request_consumer) */
    TG_TPL_PATH_REST,  /* {path_rest} */
} tg_tpl_kind_t;

typedef struct {
    tg_tpl_kind_t kind;
    char *text;    /* literal text, or the name after the prefix (NUL-terminated) */
    size_t len;    /* of text */
    char *spelled; /* the variable as written between the braces, for messages */
    int group;     /* TG_TPL_PATH: the group's number in the route's regex */
    bool in_path;  /* PATH/URL modes: before the template's first literal "?" */
} tg_tpl_part_t;

struct tg_template_s {
    tg_template_mode_t mode;
    tg_tpl_part_t *parts;
    size_t nparts;
    bool has_group; /* some part is TG_TPL_PATH: the regex runs once per render */
    bool has_query; /* PATH/URL modes: a literal "?" */
};

/* tg_template_compile() for a route's own template: route (may be NULL, as
 * for a plugin) lets {path.<group>}, bare {<group>} and {path_rest} be
 * checked against it. */
tg_template_t *tg_template_compile_route(const tg_conf_node_t *node, tg_template_mode_t mode,
                                         const tg_route_t *route, tg_conf_err_t *err);

#endif
