#include "io.h"

#include <errno.h>

/* Under TLS each evbuffer chain becomes its own SSL_write: a response head and
 * a small body in separate chains cost two records and two write(2)s. */
#define TLS_COALESCE_MAX 16384

void tg_io_send(struct bufferevent *bev, struct evbuffer *src, bool plain)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    if (!plain && evbuffer_get_length(src) <= TLS_COALESCE_MAX)
        evbuffer_pullup(src, -1);
    if (plain && evbuffer_get_length(out) == 0 && evbuffer_get_length(src) > 0) {
        evutil_socket_t fd = bufferevent_getfd(bev);
        /* A short or failed write leaves the rest to the bufferevent, which
         * retries on EPOLLOUT and reports errors through its event callback. */
        if (fd >= 0)
            (void)evbuffer_write(src, fd);
    }
    if (evbuffer_get_length(src) > 0)
        evbuffer_add_buffer(out, src);
}
