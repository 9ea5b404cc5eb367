/* key-auth plugin: the keys file and the constant-time lookup (keys_file.h). */
#include "keys_file.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/text.h"

static const tg_conf_field_t consumer_fields[] = {
    {"name", TG_CONF_FIELD_STRING, TG_CONF_AT(tg_ka_consumer_t, name),
     .flags = TG_CONF_REQUIRED | TG_CONF_NONEMPTY, .max = TG_KA_NAME_MAX},
    {"sha256", TG_CONF_FIELD_STRINGS, TG_CONF_AT(tg_ka_consumer_t, digests),
     .count_offset = offsetof(tg_ka_consumer_t, n_digests), .min = 1,
     .flags = TG_CONF_REQUIRED | TG_CONF_NONEMPTY, .help = "hex SHA-256 of the key"},
    {"scopes", TG_CONF_FIELD_STRINGS, TG_CONF_AT(tg_ka_consumer_t, scopes),
     .count_offset = offsetof(tg_ka_consumer_t, n_scopes), .flags = TG_CONF_NONEMPTY},
    TG_CONF_END,
};

/* The node of the i-th digest: sha256 is a scalar or a list. */
static const tg_conf_node_t *digest_node(const tg_conf_node_t *item, size_t i)
{
    const tg_conf_node_t *n = tg_conf_map_get(item, "sha256");
    return n->type == TG_CONF_SEQ ? n->items[i] : n;
}

static uint32_t bucket_of(const unsigned char d[TG_KA_DIGEST])
{
    return (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
}

static int parse_hex(const char *s, unsigned char out[TG_KA_DIGEST])
{
    if (strlen(s) != 2 * TG_KA_DIGEST)
        return -1;
    for (size_t i = 0; i < TG_KA_DIGEST; i++) {
        int hi = tg_hex_value((unsigned char)s[2 * i]),
            lo = tg_hex_value((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static bool name_valid(const char *s)
{
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

static int add_digests(tg_ka_keys_t *k, size_t ci, const tg_conf_node_t *item, tg_conf_err_t *err)
{
    const tg_ka_consumer_t *c = &k->consumers[ci];
    for (size_t i = 0; i < c->n_digests; i++) {
        tg_ka_key_t *key = &k->keys[k->n_keys];
        if (parse_hex(c->digests[i], key->digest) < 0)
            return tg_conf_error(err, digest_node(item, i),
                                 "expected the key's SHA-256 as 64 hex digits "
                                 "(printf %%s \"$KEY\" | sha256sum)");
        key->consumer = (uint32_t)ci;
        k->n_keys++;
    }
    return 0;
}

static int by_digest(const void *a, const void *b, void *arg)
{
    const tg_ka_key_t *keys = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int c = memcmp(keys[x].digest, keys[y].digest, TG_KA_DIGEST);
    return c != 0 ? c : (x > y) - (x < y);
}

/* Digests are unique in the file: two consumers with one key could not be
 * told apart, and the lookup picks one match. Sorted, so that a file of many
 * keys loads in n log n; the error names the later copy. */
static int check_unique(const tg_ka_keys_t *k, const tg_conf_node_t *seq, tg_conf_err_t *err)
{
    if (k->n_keys < 2)
        return 0;
    uint32_t *order = malloc(k->n_keys * sizeof(*order));
    if (order == NULL)
        return tg_conf_error(err, seq, "out of memory");
    for (size_t i = 0; i < k->n_keys; i++)
        order[i] = (uint32_t)i;
    qsort_r(order, k->n_keys, sizeof(*order), by_digest, k->keys); /* glibc's, _GNU_SOURCE */
    for (size_t i = 1; i < k->n_keys; i++) {
        const tg_ka_key_t *a = &k->keys[order[i - 1]], *b = &k->keys[order[i]];
        if (memcmp(a->digest, b->digest, TG_KA_DIGEST) != 0)
            continue;
        size_t first = order[i]; /* the later copy: its place among its consumer's digests */
        while (first > 0 && k->keys[first - 1].consumer == b->consumer)
            first--;
        free(order);
        return tg_conf_error(
            err, digest_node(seq->items[b->consumer], (size_t)(b - k->keys) - first),
            "this digest is already the key of consumer \"%s\"", k->consumers[a->consumer].name);
    }
    free(order);
    return 0;
}

static int parse_consumer(tg_ka_keys_t *k, const tg_conf_node_t *item, size_t *n_keys_cap,
                          tg_conf_err_t *err)
{
    tg_ka_consumer_t *c = &k->consumers[k->n_consumers++];
    if (tg_conf_read(item, consumer_fields, "a consumer", c, err) < 0)
        return -1;
    const tg_conf_node_t *name_n = tg_conf_map_get(item, "name");
    if (!name_valid(c->name))
        return tg_conf_error(err, name_n, "a consumer name is visible ASCII without spaces");
    for (size_t i = 0; i + 1 < k->n_consumers; i++)
        if (strcmp(k->consumers[i].name, c->name) == 0)
            return tg_conf_error(err, name_n, "consumer \"%s\" is already defined", c->name);
    /* + 1: room for the all-zero digest of empty slots (build_index) */
    tg_ka_key_t *keys = realloc(k->keys, (*n_keys_cap + c->n_digests + 1) * sizeof(*keys));
    if (keys == NULL)
        return tg_conf_error(err, item, "out of memory");
    k->keys = keys;
    *n_keys_cap += c->n_digests;
    return add_digests(k, k->n_consumers - 1, item, err);
}

static int parse_consumers(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    tg_ka_keys_t *k = out;
    if (n->type != TG_CONF_SEQ)
        return tg_conf_error(err, n, "\"consumers\" must be a list of {name, sha256, scopes}");
    if (n->count > UINT32_MAX)
        return tg_conf_error(err, n, "too many consumers");
    if (n->count > 0 && (k->consumers = calloc(n->count, sizeof(*k->consumers))) == NULL)
        return tg_conf_error(err, n, "out of memory");
    size_t cap = 0;
    for (size_t i = 0; i < n->count; i++)
        if (parse_consumer(k, n->items[i], &cap, err) < 0)
            return -1;
    if (k->n_keys > TG_KA_KEYS_MAX)
        return tg_conf_error(err, n, "more than %d keys", TG_KA_KEYS_MAX);
    return check_unique(k, n, err);
}

/* Buckets: a power of two, at least one per key, doubled until no bucket
 * holds more than TG_KA_SLOTS keys (SHA-256 digests spread evenly: with one
 * key per bucket on average, a ninth key in one bucket is a one-in-a-million
 * event per bucket). Empty slots point to the all-zero digest at keys[n_keys]. */
static int build_index(tg_ka_keys_t *k)
{
    uint64_t nb = 1;
    while (nb < k->n_keys)
        nb <<= 1;
    for (; nb <= 4 * (uint64_t)TG_KA_KEYS_MAX; nb <<= 1) {
        uint32_t *slots = malloc(nb * TG_KA_SLOTS * sizeof(*slots));
        if (slots == NULL)
            return -1;
        for (uint64_t i = 0; i < nb * TG_KA_SLOTS; i++)
            slots[i] = (uint32_t)k->n_keys;
        bool full = false;
        for (size_t i = 0; i < k->n_keys && !full; i++) {
            uint32_t *b = &slots[(bucket_of(k->keys[i].digest) & (nb - 1)) * TG_KA_SLOTS];
            size_t s = 0;
            while (s < TG_KA_SLOTS && b[s] != k->n_keys)
                s++;
            full = s == TG_KA_SLOTS;
            if (!full)
                b[s] = (uint32_t)i;
        }
        if (!full) {
            k->slots = slots;
            k->mask = (uint32_t)(nb - 1);
            return 0;
        }
        free(slots);
    }
    return -1;
}

static const tg_conf_field_t file_fields[] = {
    {"consumers", TG_CONF_FIELD_CUSTOM, .parse = parse_consumers, .flags = TG_CONF_REQUIRED,
     .help = "a list of {name, sha256, scopes}; [] refuses every key"},
    TG_CONF_END,
};

int tg_ka_keys_load(const char *path, tg_ka_keys_t *out, tg_conf_err_t *err)
{
    tg_conf_doc_t *doc = NULL;
    memset(out, 0, sizeof(*out));
    if (tg_conf_doc_load(path, &doc, err) < 0)
        return -1;
    int rc = tg_conf_read(tg_conf_doc_root(doc), file_fields, "the keys file", out, err);
    const tg_conf_node_t *root = tg_conf_doc_root(doc);
    if (rc == 0 && out->keys == NULL && (out->keys = calloc(1, sizeof(*out->keys))) == NULL)
        rc = tg_conf_error(err, root, "out of memory");
    if (rc == 0) {
        memset(&out->keys[out->n_keys], 0, sizeof(*out->keys));
        out->keys[out->n_keys].consumer = UINT32_MAX;
        if (build_index(out) < 0)
            rc = tg_conf_error(err, root, "cannot index %zu keys", out->n_keys);
    }
    tg_conf_doc_free(doc);
    return rc;
}

void tg_ka_keys_free(tg_ka_keys_t *k)
{
    for (size_t i = 0; i < k->n_consumers; i++)
        tg_conf_fields_free(consumer_fields, &k->consumers[i]);
    free(k->consumers);
    free(k->keys);
    free(k->slots);
    memset(k, 0, sizeof(*k));
}

const tg_ka_consumer_t *tg_ka_keys_match(const tg_ka_keys_t *k,
                                         const unsigned char digest[TG_KA_DIGEST])
{
    /* hit is the matching key's index + 1, selected with a mask instead of
     * a branch; digests are unique, so at most one comparison is equal (the
     * all-zero digest of empty slots is no SHA-256 anyone can find). */
    const uint32_t *b = &k->slots[(bucket_of(digest) & k->mask) * TG_KA_SLOTS];
    size_t hit = 0;
    for (size_t s = 0; s < TG_KA_SLOTS; s++) {
        const tg_ka_key_t *key = &k->keys[b[s]];
        size_t eq = (size_t)(CRYPTO_memcmp(key->digest, digest, TG_KA_DIGEST) == 0);
        hit |= ((size_t)b[s] + 1) & (0 - eq);
    }
    if (hit == 0 || hit > k->n_keys)
        return NULL;
    return &k->consumers[k->keys[hit - 1].consumer];
}
