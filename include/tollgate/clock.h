/*
 * tollgate public API: clocks.
 *
 * Monotonic clocks measure intervals (timeouts, durations, rate limits) and
 * never jump; the wall clock says when something happened. Any thread may
 * call them; on Linux they are read through the vDSO, without a system call.
 */
#ifndef TOLLGATE_CLOCK_H
#define TOLLGATE_CLOCK_H

#include <stdint.h>
#include <sys/time.h>

/* Monotonic milliseconds, coarse: CLOCK_MONOTONIC_COARSE, which advances once
 * per kernel tick (1-4 ms) and costs a memory read instead of a timer read.
 * For what is counted in milliseconds anyway and read on every request:
 * passive health, idle and keep-alive deadlines, refresh intervals (libevent's
 * own timers run on this clock unless EVENT_BASE_FLAG_PRECISE_TIMER). */
uint64_t tg_now_ms(void);

/* Monotonic microseconds, precise (CLOCK_MONOTONIC): request timings, rate
 * limiting, anything compared at sub-millisecond resolution. */
uint64_t tg_now_us(void);

/* Wall clock microseconds since the epoch (CLOCK_REALTIME): timestamps for
 * logs, JWT exp/nbf. May jump when the system time is set. */
uint64_t tg_wall_us(void);

/* ms as a struct timeval, for event_add() / evtimer_add() timeouts. */
struct timeval tg_timeval_ms(uint64_t ms);

#endif
