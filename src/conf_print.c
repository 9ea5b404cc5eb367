/* `tollgate -T` (src/conf_print.h). */
#include "conf_print.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "conf_node.h"

typedef struct {
    const tg_conf_node_t *map; /* NULL: an absent section named by where */
    const tg_conf_field_t *fields;
    char *where;
} seen_t;

struct tg_conf_print_s {
    seen_t *seen;
    size_t n, cap;
};

static void observe(const tg_conf_node_t *map, const tg_conf_field_t *fields, const char *where,
                    void *arg)
{
    tg_conf_print_t *p = arg;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        seen_t *s = realloc(p->seen, cap * sizeof(*s));
        if (s == NULL)
            return; /* the dump shows fewer defaults, nothing worse */
        p->seen = s;
        p->cap = cap;
    }
    bool absent = map == NULL || map->type == TG_CONF_NULL;
    p->seen[p->n++] = (seen_t){
        .map = map, .fields = fields, .where = absent && where != NULL ? strdup(where) : NULL};
}

tg_conf_print_t *tg_conf_print_start(void)
{
    tg_conf_print_t *p = calloc(1, sizeof(*p));
    if (p != NULL)
        tg_conf_read_observe(observe, p);
    return p;
}

void tg_conf_print_free(tg_conf_print_t *p)
{
    if (p == NULL)
        return;
    tg_conf_read_observe(NULL, NULL);
    for (size_t i = 0; i < p->n; i++)
        free(p->seen[i].where);
    free(p->seen);
    free(p);
}

static const tg_conf_field_t *table_of(const tg_conf_print_t *p, const tg_conf_node_t *map)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->seen[i].map == map)
            return p->seen[i].fields;
    return NULL;
}

/* ---- YAML out ----------------------------------------------------------- */

typedef struct {
    const tg_conf_print_t *p;
    FILE *out;
} writer_t;

/* Plain when it reads back as the same string: no indicator first, nothing
 * YAML would take as null, a number-like key is still a string to us. */
static bool plain_ok(const tg_conf_node_t *n)
{
    const char *s = n->value;
    if (n->quoted || n->len == 0 || strchr("-?:,[]{}#&*!|>'\"%@`~ ", s[0]) != NULL)
        return false;
    if (strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0)
        return false;
    for (size_t i = 0; i < n->len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || strchr("#,[]{}\"'\\", c) != NULL)
            return false;
        if (c == ':' && (i + 1 == n->len || s[i + 1] == ' '))
            return false;
    }
    return true;
}

static void quoted(FILE *out, const char *s, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void scalar(FILE *out, const tg_conf_node_t *n)
{
    if (n->type == TG_CONF_NULL)
        fputs("~", out);
    else if (plain_ok(n))
        fputs(n->value, out);
    else
        quoted(out, n->value, n->len);
}

static void node(writer_t *w, const tg_conf_node_t *n, int indent, bool mask_values);
static void defaults(writer_t *w, const tg_conf_field_t *fields, const tg_conf_node_t *map,
                     int indent, bool first_inline);

static void pad(FILE *out, int indent)
{
    fprintf(out, "%*s", indent, "");
}

static bool is_empty_collection(const tg_conf_node_t *n)
{
    return (n->type == TG_CONF_MAP || n->type == TG_CONF_SEQ) && n->count == 0;
}

/* "key: value" or "key:" and the value below, at indent. */
static void entry(writer_t *w, const tg_conf_node_t *key, const tg_conf_node_t *v, int indent,
                  bool first_inline, bool mask_values, bool in_match)
{
    if (!first_inline)
        pad(w->out, indent);
    scalar(w->out, key);
    fputc(':', w->out);
    if (tg_admin_secret_name(key->value) || mask_values) {
        fputs(v->type == TG_CONF_NULL ? " ~\n" : " \"***\"\n", w->out);
        return;
    }
    /* Operators route on shared secrets (X-Internal-Key: ...): as /config. */
    bool mask_below = in_match && strcmp(key->value, "headers") == 0;
    if (v->type == TG_CONF_NULL && table_of(w->p, v) != NULL) { /* "limits:" left empty */
        fputc('\n', w->out);
        defaults(w, table_of(w->p, v), NULL, indent + 2, false);
        return;
    }
    if (v->type == TG_CONF_SCALAR || v->type == TG_CONF_NULL || is_empty_collection(v)) {
        fputc(' ', w->out);
        if (is_empty_collection(v))
            fputs(v->type == TG_CONF_MAP ? "{}" : "[]", w->out);
        else
            scalar(w->out, v);
        fputc('\n', w->out);
        return;
    }
    fputc('\n', w->out);
    if (v->type == TG_CONF_MAP && strcmp(key->value, "match") == 0) {
        for (size_t i = 0; i < v->count; i++)
            entry(w, v->keys[i], v->items[i], indent + 2, false, false, true);
        return;
    }
    node(w, v, indent + (v->type == TG_CONF_SEQ ? 0 : 2), mask_below);
}

static void defaults(writer_t *w, const tg_conf_field_t *fields, const tg_conf_node_t *map,
                     int indent, bool first_inline)
{
    for (const tg_conf_field_t *f = fields; f != NULL && f->name != NULL; f++) {
        char buf[128];
        if ((map != NULL && tg_conf_map_get(map, f->name) != NULL) ||
            !tg_conf_field_default(f, buf, sizeof(buf)))
            continue;
        if (!first_inline)
            pad(w->out, indent);
        first_inline = false;
        tg_conf_node_t k = {.type = TG_CONF_SCALAR, .value = f->name, .len = strlen(f->name)};
        tg_conf_node_t v = {.type = TG_CONF_SCALAR, .value = buf, .len = strlen(buf)};
        scalar(w->out, &k);
        fputs(": ", w->out);
        scalar(w->out, tg_admin_secret_name(f->name)
                           ? &(tg_conf_node_t){.type = TG_CONF_SCALAR, .value = "***", .len = 3}
                           : &v);
        fputs("  # default\n", w->out);
    }
}

static void map_body(writer_t *w, const tg_conf_node_t *n, int indent, bool first_inline,
                     bool mask_values)
{
    for (size_t i = 0; i < n->count; i++)
        entry(w, n->keys[i], n->items[i], indent, first_inline && i == 0, mask_values, false);
    defaults(w, table_of(w->p, n), n, indent, first_inline && n->count == 0);
}

static void node(writer_t *w, const tg_conf_node_t *n, int indent, bool mask_values)
{
    if (n->type == TG_CONF_MAP) {
        map_body(w, n, indent, false, mask_values);
        return;
    }
    for (size_t i = 0; i < n->count; i++) {
        const tg_conf_node_t *it = n->items[i];
        pad(w->out, indent);
        fputs("- ", w->out);
        if (it->type == TG_CONF_MAP && (it->count > 0 || table_of(w->p, it) != NULL)) {
            map_body(w, it, indent + 2, true, false);
        } else if (it->type == TG_CONF_SEQ && it->count > 0) {
            fputc('\n', w->out);
            node(w, it, indent + 2, false);
        } else {
            if (is_empty_collection(it))
                fputs(it->type == TG_CONF_MAP ? "{}" : "[]", w->out);
            else if (mask_values && it->type == TG_CONF_SCALAR)
                fputs("\"***\"", w->out);
            else
                scalar(w->out, it);
            fputc('\n', w->out);
        }
    }
}

void tg_conf_print_write(tg_conf_print_t *p, const tg_conf_node_t *root, const tg_config_t *cfg,
                         FILE *out)
{
    tg_conf_read_observe(NULL, NULL);
    writer_t w = {.p = p, .out = out};
    fprintf(out, "# tollgate -T: the effective configuration of %s\n", cfg->file);
    fputs("# (includes merged, anchors expanded, defaults filled, secrets masked)\n", out);
    const tg_conf_node_t *workers = tg_conf_map_get(root, "workers");
    fprintf(out, "workers: %u%s\n", cfg->workers,
            workers == NULL || workers->type == TG_CONF_NULL ? "  # default: auto"
            : strcmp(workers->value, "auto") == 0            ? "  # auto"
                                                             : "");
    for (size_t i = 0; root->type == TG_CONF_MAP && i < root->count; i++)
        if (strcmp(root->keys[i]->value, "workers") != 0)
            entry(&w, root->keys[i], root->items[i], 0, false, false, false);
    /* Sections the file left out whose defaults still apply (limits:). */
    for (size_t i = 0; i < p->n; i++) {
        const seen_t *s = &p->seen[i];
        if (s->where == NULL || strchr(s->where, ' ') != NULL ||
            (root->type == TG_CONF_MAP && tg_conf_map_get(root, s->where) != NULL))
            continue;
        fprintf(out, "%s:  # default\n", s->where);
        defaults(&w, s->fields, NULL, 2, false);
    }
}
