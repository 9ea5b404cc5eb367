/*
 * Per-worker counters (metrics.c, traffic_metrics.c): one writer each (its
 * worker), so a relaxed load and store instead of a read-modify-write, and a
 * scrape on another thread still reads whole values.
 */
#ifndef TG_COUNTER_H
#define TG_COUNTER_H

#include <stdatomic.h>
#include <stdint.h>

typedef atomic_uint_least64_t tg_counter_t;

static inline void tg_counter_add(tg_counter_t *c, uint64_t delta)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + delta,
                          memory_order_relaxed);
}

static inline uint64_t tg_counter_get(const tg_counter_t *c)
{
    return atomic_load_explicit((tg_counter_t *)c, memory_order_relaxed);
}

#endif
