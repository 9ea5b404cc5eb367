/*
 * SIGHUP with an answer: how `tollgate -s reload` (systemd's ExecReload)
 * learns whether the running gateway took the new config.
 *
 * A plain `kill -HUP` reloads as always and nobody is answered. The
 * requester instead queues SIGHUP with sigqueue(3) and a cookie in its
 * value; the gateway's handler notes the sender's pid (si_pid, filled by
 * the kernel, so it cannot be forged to point at a third process), the main
 * loop reloads, and answers each requester with TG_RELOAD_REPLY_SIGNAL
 * carrying 1 (the new config runs) or 0 (it failed; the old one runs; the
 * reason is in the gateway's log). No socket, no file: systemd gives
 * ExecReload the main pid ($MAINPID).
 *
 * Requests that arrive during a reload are answered by the next one, which
 * reads the file as it is then.
 */
#ifndef TG_RELOAD_SIGNAL_H
#define TG_RELOAD_SIGNAL_H

#include <stdbool.h>
#include <sys/types.h>

struct event_base;

#define TG_RELOAD_COOKIE 0x7467 /* "tg" */
#define TG_RELOAD_REPLY_SIGNAL (SIGRTMIN + 1)

/* Server side: catches SIGHUP from now on and calls reload(arg) on base's
 * loop for each batch of them; its result (0 = reloaded) is sent to every
 * requester of the batch. Returns 0, or -1 (errno). */
int tg_reload_signal_start(struct event_base *base, int (*reload)(void *arg), void *arg);
/* Restores SIGHUP's default and frees what start made. */
void tg_reload_signal_stop(void);

/* Client side: asks pid to reload and waits up to timeout_ms for the
 * answer. Run as root against a gateway of another user, it becomes that
 * user for good first (the answer is a signal, which only reaches a process
 * of the gateway's own user). Returns 0 (reloaded), 1 (the reload failed), or -1 with a reason
 * in why (no such process, not permitted, no answer in time). */
int tg_reload_request(pid_t pid, unsigned timeout_ms, char *why, size_t whylen);

#endif
