/*
 * systemd's service notification protocol (sd_notify(3)), written here in a
 * few lines rather than linking libsystemd: one datagram of "KEY=VALUE\n"
 * lines to the unix socket named by $NOTIFY_SOCKET (a path, or "@name" for
 * the abstract namespace). Without $NOTIFY_SOCKET (not started by systemd
 * with Type=notify) every call does nothing.
 *
 * tollgate sends READY=1 once its listeners and workers are up,
 * RELOADING=1 + MONOTONIC_USEC=... when a reload starts and READY=1 when it
 * ends (whatever its outcome: the old config keeps running on failure),
 * STOPPING=1 when it starts draining, and WATCHDOG=1 every WATCHDOG_USEC/2
 * from the main loop when systemd set WATCHDOG_USEC (WatchdogSec=) for this
 * process.
 */
#ifndef TG_SD_NOTIFY_H
#define TG_SD_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct event;

/* Sends state (lines of KEY=VALUE). Returns 0 when sent or when there is no
 * $NOTIFY_SOCKET, -1 (errno set) when the socket refused it. */
int tg_sd_notify(const char *state);

/* "RELOADING=1\nMONOTONIC_USEC=<now>": systemd 253+ uses the timestamp to
 * tell this reload from an earlier one. */
int tg_sd_notify_reloading(void);

/* The watchdog interval systemd asks for, in microseconds: WATCHDOG_USEC
 * when set and WATCHDOG_PID is absent or this process; 0 otherwise. */
uint64_t tg_sd_watchdog_usec(void);

/* Whether the process is healthy enough to pet the watchdog; when not, why
 * says what is stuck. */
typedef bool (*tg_sd_alive_fn)(void *arg, char *why, size_t whylen);

/* A timer on base that sends WATCHDOG=1 every half interval while alive(arg)
 * holds (a hung worker must not be hidden by a live main loop); NULL when no
 * watchdog is asked for. Free it with tg_sd_watchdog_stop(). */
struct tg_sd_watchdog_s;
struct tg_sd_watchdog_s *tg_sd_watchdog_start(struct event_base *base, tg_sd_alive_fn alive,
                                              void *arg);
void tg_sd_watchdog_stop(struct tg_sd_watchdog_s *wd);

#endif
