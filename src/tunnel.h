/* WebSocket / Upgrade pass-through after a 101 (see tunnel.c). */
#ifndef TG_TUNNEL_H
#define TG_TUNNEL_H

#include "request.h"

/* The 101 head went to the client: join the two connections. */
void tg_tunnel_start(tg_request_t *req);

/* Client side events while the connection is a tunnel. */
void tg_tunnel_client_readable(tg_request_t *req);
void tg_tunnel_client_drained(tg_request_t *req);
void tg_tunnel_client_event(tg_request_t *req, short what);
/* The connection's timer fired: closes the tunnel once no byte moved either
 * way for limits.idle_timeout, else re-arms it for the rest. */
void tg_tunnel_timer(tg_request_t *req);

#endif
