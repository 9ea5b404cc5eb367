/* Internal side of the per-request arena: creation, reuse and destruction. */
#ifndef TG_ARENA_INTERNAL_H
#define TG_ARENA_INTERNAL_H

#include "tollgate/arena.h"

/* first_block: bytes of the first block, kept across resets so that a
 * keep-alive connection's requests allocate nothing from malloc in the common case. */
tg_arena_t *tg_arena_create(size_t first_block);
/* Runs cleanups, frees every block but the first, and rewinds. */
void tg_arena_reset(tg_arena_t *a);
void tg_arena_destroy(tg_arena_t *a);
/* Bytes handed out since the last reset (tests, metrics). */
size_t tg_arena_used(const tg_arena_t *a);

#endif
