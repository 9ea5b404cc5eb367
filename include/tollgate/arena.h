/*
 * tollgate public API: the per-request arena.
 *
 * Everything a request allocates comes from its arena and is released in one
 * step when the request ends; cleanups registered on the arena (timers, pending
 * Redis replies) run first, in reverse order of registration. An arena is used
 * by one worker thread only.
 */
#ifndef TOLLGATE_ARENA_H
#define TOLLGATE_ARENA_H

#include <stddef.h>

typedef struct tg_arena_s tg_arena_t;

/* Aligned to 16 bytes. Never returns NULL: out of memory aborts the process
 * (a gateway that cannot allocate a few bytes cannot answer anyway). */
void *tg_arena_alloc(tg_arena_t *a, size_t size);
void *tg_arena_calloc(tg_arena_t *a, size_t size);
char *tg_arena_strndup(tg_arena_t *a, const char *s, size_t len);
/* printf into the arena; returns the NUL-terminated string. */
char *tg_arena_printf(tg_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs fn(data) when the arena is reset or destroyed. */
void tg_arena_on_cleanup(tg_arena_t *a, void (*fn)(void *data), void *data);

#endif
