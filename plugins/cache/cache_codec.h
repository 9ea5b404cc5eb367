/*
 * A stored response as one byte string (storage: redis): head and body in
 * one value, so that an instance reads an entry with one GET.
 */
#ifndef TG_CACHE_CODEC_H
#define TG_CACHE_CODEC_H

#include <event2/buffer.h>
#include <stddef.h>

#include "cache_entry.h"

/* Appends e to out. 0, or -1 out of memory. */
int tg_cache_encode(const tg_cache_entry_t *e, struct evbuffer *out);
/* A new entry (one reference) from len bytes, NULL when they are not one
 * (another version's format, a truncated value) or memory ran out. */
tg_cache_entry_t *tg_cache_decode(const char *p, size_t len);

#endif
