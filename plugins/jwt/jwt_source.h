/*
 * jwt plugin: finding a token cookie in a Cookie header, and writing the
 * header back without it (strip_token). Pure byte functions over the
 * caller's buffers: no allocation, no request. Query parameters are found
 * and removed by the public tg_query_find() / tg_query_without()
 * (tollgate/text.h), which count names the same way.
 *
 * A name that occurs twice is the caller's to refuse: the gateway would
 * verify one copy and the upstream might read the other. So the finder
 * counts every spelling an upstream could take for the same name: cookie
 * names with the white space around them trimmed.
 */
#ifndef TG_JWT_SOURCE_H
#define TG_JWT_SOURCE_H

#include <stddef.h>

#include "tollgate/request.h"
#include "tollgate/text.h"

/* Longest query parameter or cookie name a source may read. */
#define TG_JWT_SOURCE_NAME_MAX TG_SENSITIVE_NAME_MAX

/* Cookies named name in one Cookie header value (RFC 6265 4.2.1: pairs
 * separated by ";"; white space around a pair, its name and its value is
 * trimmed). Names compare exactly (RFC 6265 5.4). Returns how many there
 * are; *value is the first one's value without surrounding DQUOTEs. */
size_t tg_jwt_cookie_find(const char *v, size_t len, const char *name, tg_span_t *value);

/* Appends to out, after its first olen bytes, the pairs of Cookie header
 * value v that are not named name, each as written, joined by "; " (RFC 6265
 * 4.2.1). out needs room for olen + 2 * len + 2 bytes. Returns the new
 * length of out. */
size_t tg_jwt_cookie_without(const char *v, size_t len, const char *name, char *out, size_t olen);

#endif
