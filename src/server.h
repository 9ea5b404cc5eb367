/*
 * The process: listening sockets (one SO_REUSEPORT socket per listener per
 * worker, opened before any thread starts so that errors are reported at
 * startup), the worker threads, and signal handling in the main thread.
 */
#ifndef TG_SERVER_H
#define TG_SERVER_H

#include "config.h"

/* Runs until SIGTERM/SIGINT and a graceful drain. Returns the exit status. */
int tg_server_run(tg_config_t *cfg);

#endif
