/*
 * Comma-separated field values (RFC 9110 section 5.6.1): Connection options,
 * Upgrade protocols, X-Forwarded-For addresses. Pure protocol code: bytes in,
 * spans out; nothing is allocated and nothing outside [v, v + len) is read.
 * Elements are trimmed of OWS (SP, HTAB) and empty elements are skipped, as
 * the RFC asks of a recipient. Quoted strings are not special: none of the
 * lists read here allows them, and a quoted element never equals a token.
 */
#ifndef TG_FIELD_LIST_H
#define TG_FIELD_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "tollgate/text.h" /* tg_span_t, and tg_list_next / tg_list_has, public */

/* Same from the right (start with *end = len): the last element before *end.
 * Returns false when no element is left; *end is then 0. */
bool tg_list_prev(const char *v, size_t len, size_t *end, tg_span_t *elem);

/* Upgrade (RFC 9110 section 7.8): protocol = token [ "/" token ].
 * Returns 1 when every element is a valid protocol and one of them is
 * "websocket" (any case, no version), 0 when the list is valid without it,
 * -1 when an element is not a protocol. */
int tg_list_upgrade_websocket(const char *v, size_t len);

/* Whether the list is valid and names "websocket" and nothing else (what an
 * upstream may answer in the Upgrade of its 101 to our websocket request). */
bool tg_list_only_websocket(const char *v, size_t len);

#endif
