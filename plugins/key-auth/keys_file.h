/*
 * key-auth plugin: the keys file and the constant-time key lookup.
 *
 *   consumers:
 *     - name: alice                  # 1-128 visible ASCII bytes, unique
 *       sha256: "9f86d081...0a08"    # hex SHA-256 of the key; a list while rotating
 *       scopes: [orders:read]        # optional
 *
 * Only digests are stored, never keys: the file can be read by whoever
 * deploys it without leaking a credential. It is read at config load, so a
 * reload (SIGHUP, POST /reload) picks up added and revoked keys; an empty
 * `consumers: []` is valid (every key is refused), so that revoking the last
 * key never makes the reload fail and leave the old keys in force.
 */
#ifndef TG_KA_KEYS_FILE_H
#define TG_KA_KEYS_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "tollgate/conf.h"

#define TG_KA_DIGEST 32    /* SHA-256 */
#define TG_KA_NAME_MAX 128 /* consumer names: visible ASCII, so they fit a header and a log */

typedef struct {
    char *name;    /* consumer name (NUL-terminated) */
    char **scopes; /* NULL-terminated, or NULL */
    size_t n_scopes;
    char **digests; /* as written (hex); the lookup uses tg_ka_keys_t.keys */
    size_t n_digests;
} tg_ka_consumer_t;

typedef struct {
    unsigned char digest[TG_KA_DIGEST];
    uint32_t consumer; /* index in consumers */
} tg_ka_key_t;

/* Most keys in one file (the index stays under a few hundred MiB). */
#define TG_KA_KEYS_MAX (1 << 22)

/* Slots per bucket of the index: every lookup compares exactly this many. */
#define TG_KA_SLOTS 8

typedef struct {
    tg_ka_consumer_t *consumers;
    size_t n_consumers;
    tg_ka_key_t *keys; /* every digest of every consumer, each once; then one
                        * all-zero digest that empty slots point to */
    size_t n_keys;
    uint32_t *slots; /* the index: (mask + 1) buckets of TG_KA_SLOTS indexes into keys */
    uint32_t mask;
} tg_ka_keys_t;

/* Loads path. Returns 0, or -1 with err at the keys file's FILE:LINE:COL
 * (a duplicate digest or name, a digest that is not 64 hex digits, a bad
 * name, an unknown key). out is then half-filled: free it either way. */
int tg_ka_keys_load(const char *path, tg_ka_keys_t *out, tg_conf_err_t *err);
void tg_ka_keys_free(tg_ka_keys_t *k);

/* The consumer whose key has this digest, or NULL. The digest's first bytes
 * pick a bucket; the digest is compared (CRYPTO_memcmp, no early exit) with
 * all TG_KA_SLOTS slots of it, empty ones included, so the time taken is the
 * same for every digest: it depends neither on which stored digest matched,
 * nor on how many bytes of one did, nor on how full the bucket is. */
const tg_ka_consumer_t *tg_ka_keys_match(const tg_ka_keys_t *k,
                                         const unsigned char digest[TG_KA_DIGEST]);

#endif
