/* Text inside the JSON the gateway writes itself (error bodies). */
#ifndef TG_JSON_ESCAPE_H
#define TG_JSON_ESCAPE_H

#include <event2/buffer.h>
#include <stddef.h>
#include <string.h>

/* Appends s as the inside of a JSON string: '"' and '\\' get a backslash,
 * control characters, DEL and every byte >= 0x80 become \u00XX (the byte's
 * value: the output is pure ASCII, whatever encoding s was in). */
void tg_json_escape(struct evbuffer *out, const char *s, size_t len);

/* The same into out, which has room for 6 * len bytes; returns the bytes
 * written (no NUL). */
size_t tg_json_escape_buf(char *out, const char *s, size_t len);

#endif
