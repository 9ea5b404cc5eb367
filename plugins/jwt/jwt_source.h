/*
 * jwt plugin: finding a token parameter in a query string or a cookie in a
 * Cookie header, and writing them back without it (strip_token). Pure byte
 * functions over the caller's buffers: no allocation, no request.
 *
 * A name that occurs twice is the caller's to refuse: the gateway would
 * verify one copy and the upstream might read the other. So the finders
 * count every spelling an upstream could take for the same name: query
 * parameter names after percent-decoding ("%61ccess_token" is
 * "access_token"), cookie names with the white space around them trimmed.
 */
#ifndef TG_JWT_SOURCE_H
#define TG_JWT_SOURCE_H

#include <stddef.h>

#include "tollgate/request.h"

/* Longest query parameter or cookie name a source may read. */
#define TG_JWT_SOURCE_NAME_MAX TG_SENSITIVE_NAME_MAX

typedef struct {
    const char *p;
    size_t len;
} tg_jwt_span_t;

/* Parameters of query q ("&"-separated name[=value], WHATWG URL / RFC 3986
 * 3.4) whose percent-decoded name is name (at most TG_JWT_SOURCE_NAME_MAX
 * bytes). Returns how many there are; for the first, *param is its whole
 * text and *value its raw (still encoded) value, empty for a bare name. */
size_t tg_jwt_query_find(const char *q, size_t len, const char *name, tg_jwt_span_t *param,
                         tg_jwt_span_t *value);

/* q without param (a span of q) and one "&" next to it, the other bytes as
 * they were, into out (room for len bytes). Returns the new length. */
size_t tg_jwt_query_without(const char *q, size_t len, tg_jwt_span_t param, char *out);

/* Cookies named name in one Cookie header value (RFC 6265 4.2.1: pairs
 * separated by ";"; white space around a pair, its name and its value is
 * trimmed). Names compare exactly (RFC 6265 5.4). Returns how many there
 * are; *value is the first one's value without surrounding DQUOTEs. */
size_t tg_jwt_cookie_find(const char *v, size_t len, const char *name, tg_jwt_span_t *value);

/* Appends to out, after its first olen bytes, the pairs of Cookie header
 * value v that are not named name, each as written, joined by "; " (RFC 6265
 * 4.2.1). out needs room for olen + 2 * len + 2 bytes. Returns the new
 * length of out. */
size_t tg_jwt_cookie_without(const char *v, size_t len, const char *name, char *out, size_t olen);

#endif
