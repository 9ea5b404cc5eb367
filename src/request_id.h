/* X-Request-Id: generated when the client sent none (or an unusable one). */
#ifndef TG_REQUEST_ID_H
#define TG_REQUEST_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_REQUEST_ID_MAX 128 /* longer client ids are replaced */
#define TG_REQUEST_ID_BUF (TG_REQUEST_ID_MAX + 1)

typedef struct {
    uint64_t s[2]; /* xorshift128+ state, per worker: ids need uniqueness, not secrecy */
} tg_request_id_gen_t;

void tg_request_id_seed(tg_request_id_gen_t *g);
/* The next 64 random bits (trace and span ids use them too). */
uint64_t tg_request_id_u64(tg_request_id_gen_t *g);
/* Writes 32 lower-case hex digits and a NUL into out (33 bytes). */
void tg_request_id_generate(tg_request_id_gen_t *g, char out[33]);
/* A client-supplied id is passed on when it is 1..TG_REQUEST_ID_MAX visible
 * ASCII characters without quotes or backslashes (it lands in JSON logs). */
bool tg_request_id_valid(const char *id, size_t len);

#endif
