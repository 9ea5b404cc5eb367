/*
 * tg_request_read_body() (request.h): a plugin has the request body read
 * whole before the chain goes on. The dispatch step feeds client input here
 * instead of to the upstream client while such a read runs.
 */
#ifndef TG_BODY_READ_H
#define TG_BODY_READ_H

#include "request.h"

/* Moves what the client sent into the kept body; when it is whole, hands it
 * to the upstream exchange (up.tries.body) and calls the plugin's done. */
void tg_body_read_pump(tg_request_t *req);

#endif
