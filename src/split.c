#include "split.h"

#include <string.h>

#include "tollgate/clock.h"
#include "tollgate/request.h"
#include "tollgate/text.h"

typedef struct {
    const tg_conf_node_t *upstream;
    uint32_t weight;
} side_keys_t;

static const tg_conf_field_t side_fields[] = {
    {"upstream", TG_CONF_FIELD_NODE, TG_CONF_AT(side_keys_t, upstream), .flags = TG_CONF_REQUIRED},
    {"weight", TG_CONF_FIELD_UINT, TG_CONF_AT(side_keys_t, weight), .max = 10000,
     .flags = TG_CONF_REQUIRED},
    TG_CONF_END,
};

static int get_upstream(tg_config_t *cfg, const tg_conf_node_t *n, tg_upstream_conf_t **out,
                        tg_conf_err_t *err)
{
    const char *s;
    if (tg_conf_get_string(n, &s, err) < 0)
        return -1;
    *out = tg_config_upstream(cfg, s);
    return *out ? 0 : tg_conf_error(err, n, "unknown upstream '%s'", s);
}

static int parse_sides(tg_config_t *cfg, tg_arena_t *arena, const tg_conf_node_t *n, tg_split_t *sp,
                       tg_conf_err_t *err)
{
    if (n->type != TG_CONF_SEQ || n->count < 2)
        return tg_conf_error(err, n,
                             "split: expected a list of at least two "
                             "{upstream, weight}");
    sp->sides = tg_arena_calloc(arena, n->count * sizeof(*sp->sides));
    for (size_t i = 0; i < n->count; i++) {
        side_keys_t k = {0};
        if (tg_conf_read(n->items[i], side_fields, "split", &k, err) < 0 ||
            get_upstream(cfg, k.upstream, &sp->sides[i].upstream, err) < 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (sp->sides[j].upstream == sp->sides[i].upstream)
                return tg_conf_error(err, k.upstream, "split: upstream '%s' is listed twice",
                                     sp->sides[i].upstream->name);
        sp->sides[i].weight = k.weight;
        sp->total += k.weight;
        sp->nsides++;
    }
    if (sp->total == 0)
        return tg_conf_error(err, n, "split: the weights add up to 0");
    return 0;
}

typedef struct {
    const tg_conf_node_t *header, *value, *upstream;
} override_keys_t;

static const tg_conf_field_t override_fields[] = {
    {"header", TG_CONF_FIELD_NODE, TG_CONF_AT(override_keys_t, header), .flags = TG_CONF_REQUIRED},
    {"value", TG_CONF_FIELD_NODE, TG_CONF_AT(override_keys_t, value), .flags = TG_CONF_REQUIRED},
    {"upstream", TG_CONF_FIELD_NODE, TG_CONF_AT(override_keys_t, upstream),
     .flags = TG_CONF_REQUIRED},
    TG_CONF_END,
};

static int parse_override(tg_config_t *cfg, tg_arena_t *arena, const tg_conf_node_t *n,
                          tg_split_t *sp, tg_conf_err_t *err)
{
    override_keys_t k = {0};
    const char *h, *v;
    if (tg_conf_read(n, override_fields, "split_override", &k, err) < 0 ||
        tg_conf_get_string(k.header, &h, err) < 0 || tg_conf_get_string(k.value, &v, err) < 0 ||
        get_upstream(cfg, k.upstream, &sp->override_upstream, err) < 0)
        return -1;
    if (!tg_token_valid(h, strlen(h)))
        return tg_conf_error(err, k.header, "invalid header name '%s'", h);
    sp->override_header = tg_arena_strndup(arena, h, strlen(h));
    sp->override_value = tg_arena_strndup(arena, v, strlen(v));
    return 0;
}

int tg_split_parse(tg_config_t *cfg, tg_arena_t *arena, const tg_conf_node_t *route, tg_route_t *r,
                   tg_conf_err_t *err)
{
    const tg_conf_node_t *n = tg_conf_map_get(route, "split");
    const tg_conf_node_t *o = tg_conf_map_get(route, "split_override");
    const tg_conf_node_t *st = tg_conf_map_get(route, "sticky");
    if (n == NULL) {
        const tg_conf_node_t *stray = o ? o : st;
        return stray ? tg_conf_error(err, stray, "%s needs split", o ? "split_override" : "sticky")
                     : 0;
    }
    tg_split_t *sp = tg_arena_calloc(arena, sizeof(*sp));
    if (parse_sides(cfg, arena, n, sp, err) < 0 ||
        (o != NULL && parse_override(cfg, arena, o, sp, err) < 0) ||
        (st != NULL && tg_key_spec_parse(st, arena, &sp->sticky, err) < 0))
        return -1;
    size_t heavy = 0;
    for (size_t i = 1; i < sp->nsides; i++)
        if (sp->sides[i].weight > sp->sides[heavy].weight)
            heavy = i;
    r->upstream = sp->sides[heavy].upstream;
    r->split = sp;
    return 0;
}

/* A point in [0, total) walks the cumulative weights in the order written. */
static const tg_upstream_conf_t *side_at(const tg_split_t *s, uint64_t point)
{
    for (size_t i = 0; i < s->nsides; i++) {
        if (point < s->sides[i].weight)
            return s->sides[i].upstream;
        point -= s->sides[i].weight;
    }
    return s->sides[s->nsides - 1].upstream;
}

static uint64_t rng(void)
{
    static _Thread_local uint64_t x;
    if (x == 0)
        x = tg_now_us() | 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return x * 0x2545f4914f6cdd1dull;
}

const tg_upstream_conf_t *tg_split_choose(const tg_split_t *s, const tg_request_t *req)
{
    size_t len;
    if (s->override_header != NULL) {
        const char *v = tg_request_header(req, s->override_header, &len);
        if (v != NULL && len == strlen(s->override_value) && memcmp(v, s->override_value, len) == 0)
            return s->override_upstream;
    }
    if (s->sticky.kind != TG_KEY_NONE) {
        const char *k = tg_key_get(&s->sticky, req, &len);
        /* The key's place in [0, 1), scaled to the weights: a client keeps
         * its place whatever the weights are. */
        if (k != NULL)
            return side_at(s, (tg_hash64(k, len, 0x73706c6974) >> 32) * s->total >> 32);
    }
    return side_at(s, rng() % s->total);
}
