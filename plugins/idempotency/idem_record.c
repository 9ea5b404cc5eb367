/*
 * Records of the idempotency plugin, read back from a store (the layout is in
 * idempotency.h). A store holds only what this plugin wrote, but Redis is
 * shared: anything that does not parse is refused (the request then gets a
 * 500 naming the plugin) rather than replayed.
 */
#include <string.h>

#include "idempotency.h"

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static int parse_status(const char *p)
{
    int s = 0;
    for (int i = 0; i < 3; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        s = s * 10 + (p[i] - '0');
    }
    return s >= 200 && s <= 599 ? s : -1;
}

/* The header block of a 'C' record: walks it once to find where the body
 * starts. */
static int parse_fields(tg_idem_record_t *out, const uint8_t *p, const uint8_t *end)
{
    if (end - p < 4)
        return -1;
    out->nfields = get_u32(p);
    p += 4;
    out->fields = p;
    for (uint32_t i = 0; i < out->nfields; i++) {
        if (end - p < 8)
            return -1;
        uint64_t n = (uint64_t)get_u32(p) + get_u32(p + 4);
        p += 8;
        if ((uint64_t)(end - p) < n)
            return -1;
        p += n;
    }
    out->body = (const char *)p;
    out->body_len = (size_t)(end - p);
    return 0;
}

int tg_idem_record_parse(const char *v, size_t len, tg_idem_record_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len < 1 + TG_IDEM_HASH)
        return -1;
    out->kind = v[0];
    out->fp = (const uint8_t *)v + 1;
    const char *rest = v + 1 + TG_IDEM_HASH;
    size_t rest_len = len - 1 - TG_IDEM_HASH;
    switch (out->kind) {
    case 'P':
        return rest_len == TG_IDEM_TOKEN_HEX ? 0 : -1;
    case 'N':
        if (rest_len != 3)
            return -1;
        out->status = parse_status(rest);
        return out->status < 0 ? -1 : 0;
    case 'C':
        if (rest_len < 3 || (out->status = parse_status(rest)) < 0)
            return -1;
        return parse_fields(out, (const uint8_t *)rest + 3, (const uint8_t *)v + len);
    default:
        return -1;
    }
}

bool tg_idem_record_field(const tg_idem_record_t *rec, uint32_t i, const char **name,
                          size_t *name_len, const char **value, size_t *value_len)
{
    if (i >= rec->nfields)
        return false;
    const uint8_t *p = rec->fields;
    for (uint32_t k = 0;; k++) {
        uint32_t nl = get_u32(p), vl = get_u32(p + 4);
        if (k == i) {
            *name = (const char *)p + 8;
            *name_len = nl;
            *value = (const char *)p + 8 + nl;
            *value_len = vl;
            return true;
        }
        p += 8 + (size_t)nl + vl;
    }
}
