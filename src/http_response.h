/* Responses the gateway writes itself: small JSON errors. */
#ifndef TG_HTTP_RESPONSE_H
#define TG_HTTP_RESPONSE_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stddef.h>

/* Standard reason phrase, "Unknown" for codes we never send. */
const char *tg_http_reason(int status);

/* Writes a complete response with body {"error":"<msg>","request_id":"<id>"}. */
void tg_http_write_error(struct evbuffer *out, int status, const char *msg, const char *id,
                         size_t idlen, bool close, bool head_only);

/* Appends s as the inside of a JSON string (quotes, backslashes, control
 * characters and non-ASCII bytes escaped). */
void tg_json_escape(struct evbuffer *out, const char *s, size_t len);

#endif
