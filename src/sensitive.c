/* The per-config set of credential names (sensitive.h). A handful of names,
 * searched linearly: cheaper than hashing at this size. */
#include "sensitive.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tollgate/plugin.h"

typedef struct {
    tg_sensitive_kind_t kind;
    char *name;
    size_t len;
} entry_t;

struct tg_sensitive_s {
    entry_t *items;
    size_t n;
};

tg_sensitive_t *tg_sensitive_new(void)
{
    return calloc(1, sizeof(tg_sensitive_t));
}

void tg_sensitive_free(tg_sensitive_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i].name);
    free(s->items);
    free(s);
}

bool tg_sensitive_has(const tg_sensitive_t *s, tg_sensitive_kind_t kind, const char *name,
                      size_t len)
{
    for (size_t i = 0; s != NULL && i < s->n; i++) {
        const entry_t *e = &s->items[i];
        if (e->kind != kind || e->len != len)
            continue;
        /* Header names are case-insensitive (RFC 9110 5.1); cookie names
         * (RFC 6265 5.4) and query parameter names are not. */
        if (kind == TG_SENSITIVE_HEADER ? strncasecmp(e->name, name, len) == 0
                                        : memcmp(e->name, name, len) == 0)
            return true;
    }
    return false;
}

int tg_sensitive_add(tg_sensitive_t *s, tg_sensitive_kind_t kind, const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (s == NULL || len == 0 || len > TG_SENSITIVE_NAME_MAX ||
        (kind != TG_SENSITIVE_QUERY && kind != TG_SENSITIVE_COOKIE && kind != TG_SENSITIVE_HEADER))
        return -1;
    if (tg_sensitive_has(s, kind, name, len))
        return 0;
    entry_t *items = realloc(s->items, (s->n + 1) * sizeof(*items));
    if (items == NULL)
        return -1;
    s->items = items;
    char *copy = strdup(name);
    if (copy == NULL)
        return -1;
    s->items[s->n++] = (entry_t){.kind = kind, .name = copy, .len = len};
    return 0;
}
