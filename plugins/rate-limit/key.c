/*
 * The `key` expression: whose bucket a request draws from.
 *
 *   key: ip | route | consumer | jwt.<claim> | header:<Name> | [a list of these]
 *
 * Each part is tagged with its kind ("i:", "r:", "j:", "h:", "c:") so a client
 * cannot pick a header value equal to someone else's IP fallback, and joined
 * with '|' (escaped inside values) so two different lists never give the same
 * text. Long values are hashed: Redis keys stay short and a client sending an
 * 8 KiB header does not store 8 KiB per bucket.
 */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rate_limit.h"
#include "tollgate/text.h"

#define RAW_MAX 64 /* longer key values are replaced by their SHA-1 */

static bool is_claim(const char *s)
{
    return *s != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789_-.:") == strlen(s);
}

static int parse_part(const tg_conf_node_t *n, tg_rl_key_t *key, tg_conf_err_t *err)
{
    const char *s;
    if (tg_conf_get_string(n, &s, err) < 0)
        return -1;
    tg_rl_key_part_t *p = &key->parts[key->nparts];
    if (strcmp(s, "ip") == 0) {
        p->kind = TG_RL_KEY_IP;
    } else if (strcmp(s, "route") == 0) {
        p->kind = TG_RL_KEY_ROUTE;
    } else if (strcmp(s, "consumer") == 0) {
        p->kind = TG_RL_KEY_CONSUMER;
        if (key->consumer_node == NULL)
            key->consumer_node = n;
    } else if (strncmp(s, "jwt.", 4) == 0 && is_claim(s + 4)) {
        p->kind = TG_RL_KEY_JWT;
        p->name = strdup(s); /* "jwt.sub": the claim after "jwt." (tg_request_claim) */
        if (!key->uses_jwt)
            key->jwt_node = n;
        key->uses_jwt = true;
    } else if (strncmp(s, "header:", 7) == 0 && tg_token_valid(s + 7, strlen(s + 7))) {
        p->kind = TG_RL_KEY_HEADER;
        p->name = strdup(s + 7);
    } else {
        return tg_conf_error(err, n,
                             "invalid key '%s': expected ip, route, consumer, jwt.<claim>, "
                             "header:<Name> or a list of these",
                             s);
    }
    if ((p->kind == TG_RL_KEY_JWT || p->kind == TG_RL_KEY_HEADER) && p->name == NULL)
        return tg_conf_error(err, n, "out of memory");
    key->nparts++;
    return 0;
}

int tg_rl_key_parse(const tg_conf_node_t *n, tg_rl_key_t *key, tg_conf_err_t *err)
{
    memset(key, 0, sizeof(*key));
    if (n->type != TG_CONF_SEQ)
        return parse_part(n, key, err);
    if (n->count == 0 || n->count > TG_RL_MAX_KEY_PARTS)
        return tg_conf_error(err, n, "expected 1 to %d key parts", TG_RL_MAX_KEY_PARTS);
    for (size_t i = 0; i < n->count; i++)
        if (parse_part(n->items[i], key, err) < 0)
            return -1;
    return 0;
}

void tg_rl_key_free(tg_rl_key_t *key)
{
    for (size_t i = 0; i < key->nparts; i++)
        free(key->parts[i].name);
    key->nparts = 0;
}

size_t tg_rl_key_describe(const tg_rl_key_t *key, char *buf, size_t cap)
{
    static const char *const kinds[] = {"ip", "jwt:", "header:", "route", "consumer"};
    size_t used = 0;
    for (size_t i = 0; i < key->nparts && used < cap; i++) {
        const tg_rl_key_part_t *p = &key->parts[i];
        int n = snprintf(buf + used, cap - used, "%s%s%s", i ? "|" : "", kinds[p->kind],
                         p->name ? p->name : "");
        used += n > 0 ? (size_t)n : 0;
    }
    return used < cap ? used : cap;
}

/* The raw value of one part and its tag; a missing claim, header or consumer
 * is the IP. */
static const char *part_value(tg_request_t *r, const tg_rl_key_part_t *p, size_t *len, char *tag)
{
    const char *v = NULL;
    *tag = "ijhrc"[p->kind];
    if (p->kind == TG_RL_KEY_CONSUMER)
        v = tg_request_consumer(r, len);
    else if (p->kind == TG_RL_KEY_JWT)
        v = tg_request_claim(r, p->name + 4, len);
    else if (p->kind == TG_RL_KEY_HEADER)
        v = tg_request_header(r, p->name, len);
    else if (p->kind == TG_RL_KEY_ROUTE) {
        v = tg_request_route(r);
        *len = v != NULL ? strlen(v) : 0;
        return v != NULL ? v : "";
    }
    if (v != NULL)
        return v;
    *tag = 'i';
    v = tg_request_client_ip(r);
    *len = strlen(v);
    return v;
}

static size_t put_escaped(char *out, const char *v, size_t len, bool escape)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (escape && (v[i] == '|' || v[i] == '\\'))
            out[o++] = '\\';
        out[o++] = v[i];
    }
    return o;
}

const char *tg_rl_key_value(tg_request_t *r, const tg_rl_key_t *key, size_t *len)
{
    const char *vals[TG_RL_MAX_KEY_PARTS];
    size_t lens[TG_RL_MAX_KEY_PARTS], total = 0;
    char tags[TG_RL_MAX_KEY_PARTS];
    for (size_t i = 0; i < key->nparts; i++) {
        vals[i] = part_value(r, &key->parts[i], &lens[i], &tags[i]);
        total += 2 * lens[i] + 3;
    }
    char *buf = tg_arena_alloc(tg_request_arena(r), total + 1);
    size_t o = 0;
    bool escape = key->nparts > 1;
    for (size_t i = 0; i < key->nparts; i++) {
        if (i > 0)
            buf[o++] = '|';
        buf[o++] = tags[i];
        buf[o++] = ':';
        o += put_escaped(buf + o, vals[i], lens[i], escape);
    }
    buf[o] = '\0';
    if (o > RAW_MAX) {
        unsigned char md[SHA_DIGEST_LENGTH];
        SHA1((const unsigned char *)buf, o, md);
        buf[0] = '#';
        for (size_t i = 0; i < SHA_DIGEST_LENGTH; i++)
            snprintf(buf + 1 + 2 * i, 3, "%02x", md[i]);
        o = 1 + 2 * SHA_DIGEST_LENGTH;
    }
    *len = o;
    return buf;
}
