/*
 * Optimistic writes. A bufferevent queues output and writes it on the next
 * loop iteration, toggling EPOLLOUT twice per response (two epoll_ctl) on the
 * way. When nothing is queued on a plain socket, tg_io_send() writes at once
 * and hands only what the kernel did not take to the bufferevent: the common
 * small response costs one writev and no epoll_ctl, as in nginx.
 */
#ifndef TG_IO_H
#define TG_IO_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdbool.h>

/* Moves all of src to bev (src ends up empty). plain: bev is a plain socket
 * (not TLS) that is connected. */
void tg_io_send(struct bufferevent *bev, struct evbuffer *src, bool plain);

#endif
