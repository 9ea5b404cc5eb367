/*
 * idempotency plugin: what its files share (internal; only tg_plugin is
 * exported from the module).
 */
#ifndef TG_IDEM_H
#define TG_IDEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "tollgate/plugin.h"

#define TG_IDEM_HASH 32      /* SHA-256 bytes */
#define TG_IDEM_KEY_MAX 255  /* longest key (the sf-string's content) */
#define TG_IDEM_SCOPE_MAX 8  /* parts of `scope` */
#define TG_IDEM_TOKEN_HEX 32 /* an in-progress record's owner token */

/* ---- scope (idem_scope.c) ---- */
typedef enum {
    TG_IDEM_SCOPE_ROUTE,
    TG_IDEM_SCOPE_IP,
    TG_IDEM_SCOPE_CONSUMER,
    TG_IDEM_SCOPE_SUBJECT,
    TG_IDEM_SCOPE_JWT,    /* name: the claim */
    TG_IDEM_SCOPE_HEADER, /* name: the header */
} tg_idem_scope_kind_t;

typedef struct {
    tg_idem_scope_kind_t kind;
    char *name;
} tg_idem_scope_part_t;

typedef struct {
    tg_idem_scope_part_t parts[TG_IDEM_SCOPE_MAX];
    size_t nparts;
    bool uses_jwt, uses_consumer;
} tg_idem_scope_t;

int tg_idem_scope_parse(const tg_conf_node_t *n, tg_idem_scope_t *s, tg_conf_err_t *err);
void tg_idem_scope_free(tg_idem_scope_t *s);
/* The record's key: SHA-256 over the instance's salt, every scope part and
 * the idempotency key, each length-prefixed; scope_out: the same without the
 * key (the client, for quotas). Returns 0, -1 with the first scope part the
 * request does not have written into missing ("jwt.sub"), or -2 when OpenSSL
 * could not allocate. */
int tg_idem_scope_hash(const tg_idem_scope_t *s, tg_request_t *r, const char *salt, const char *key,
                       size_t key_len, uint8_t out[TG_IDEM_HASH], uint8_t scope_out[TG_IDEM_HASH],
                       char *missing, size_t missing_size);

/* Adds p (len bytes) to md after its length (8 bytes): fields digested this
 * way cannot be shifted into each other. */
void tg_idem_digest_put(EVP_MD_CTX *md, const void *p, size_t len);

/* The sf-string content of an Idempotency-Key value (RFC 8941 section
 * 3.3.3: DQUOTE, printable ASCII with \" and \\ escapes, DQUOTE), unescaped
 * into out (TG_IDEM_KEY_MAX bytes). Returns its length (>= 1), or -1 for a
 * value that is not an sf-string, is empty or longer than TG_IDEM_KEY_MAX. */
int tg_idem_key_parse(const char *v, size_t len, char *out);

/* ---- records (idem_record.c) ----
 * One value per key, in Redis or the memory store:
 *   'P' fp[32] token[32]         in progress, owned by the request with token
 *   'C' fp[32] response          completed: replayed
 *   'N' fp[32] status[3]         completed, response too large to replay
 * response: status[3] then u32 header count, per header u32 name length,
 * u32 value length, name, value; then the body to the end. */
typedef struct {
    char kind; /* 'P', 'C' or 'N' */
    const uint8_t *fp;
    int status;            /* C, N */
    const uint8_t *fields; /* C: the header block */
    uint32_t nfields;
    const char *body;
    size_t body_len;
} tg_idem_record_t;

int tg_idem_record_parse(const char *v, size_t len, tg_idem_record_t *out);
/* tg_idem_record_parse()d 'C': the i-th header (false past the end). */
bool tg_idem_record_field(const tg_idem_record_t *rec, uint32_t i, const char **name,
                          size_t *name_len, const char **value, size_t *value_len);

/* ---- the memory store (idem_memory.c): one per process ---- */
/* One plugin instance's bounds for a scope (the records of one client, same
 * scope hash); 0: no bound. */
typedef struct {
    uint64_t keys;  /* live records (in progress or completed) */
    uint64_t bytes; /* their bytes, counted as the store counts them */
} tg_idem_quota_t;

#define TG_IDEM_MEM_FULL (-1)  /* no memory, or the store holds max_size */
#define TG_IDEM_MEM_QUOTA (-2) /* the scope holds its quota */

typedef struct tg_idem_mem_s tg_idem_mem_t;
/* Takes a reference on the process's store and sets its byte bound (the
 * latest caller's max_size applies to the whole store). */
tg_idem_mem_t *tg_idem_mem_acquire(uint64_t max_size);
void tg_idem_mem_release(tg_idem_mem_t *m);
/* Sets key (of scope) to value for ttl_ms when it is absent (returns 0) or
 * answers the value there (returns 1, *old malloc'ed, *old_len).
 * TG_IDEM_MEM_QUOTA: scope holds q's maximum (*retry_ms: until its earliest
 * record expires, a hint); TG_IDEM_MEM_FULL: no memory, or the store's bound.
 * Expired records are removed first; a live one never is. */
int tg_idem_mem_claim(tg_idem_mem_t *m, const uint8_t key[TG_IDEM_HASH],
                      const uint8_t scope[TG_IDEM_HASH], const tg_idem_quota_t *q,
                      const char *value, size_t len, uint64_t ttl_ms, char **old, size_t *old_len,
                      uint64_t *retry_ms);
/* When key holds expect (the owner's in-progress value): replaces it by value
 * for ttl_ms, or with value NULL removes it. Returns 1 done, 0 not the owner
 * (expired, taken over), -1 no memory, TG_IDEM_MEM_QUOTA when value would
 * take the store past 3/4 of its bound (the rest is kept for claims) or the
 * scope past q->bytes (the record is left as it was). */
int tg_idem_mem_swap(tg_idem_mem_t *m, const uint8_t key[TG_IDEM_HASH], const tg_idem_quota_t *q,
                     const char *expect, size_t expect_len, const char *value, size_t len,
                     uint64_t ttl_ms);
/* Bytes charged and live-or-unswept records (for tests and bounds). */
void tg_idem_mem_usage(tg_idem_mem_t *m, uint64_t *bytes, size_t *records);

#endif
