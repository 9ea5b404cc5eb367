/* Pieces of the responses the gateway writes itself (conn.c, request_api.c). */
#ifndef TG_HTTP_RESPONSE_H
#define TG_HTTP_RESPONSE_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stddef.h>

/* Standard reason phrase, "Unknown" for codes we never send. */
const char *tg_http_reason(int status);

/* Appends s as the inside of a JSON string (quotes, backslashes, control
 * characters and non-ASCII bytes escaped). */
void tg_json_escape(struct evbuffer *out, const char *s, size_t len);

#endif
