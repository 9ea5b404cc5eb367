/*
 * Names of request parts that carry credentials (query parameters, cookies,
 * headers), registered by plugins at config load (tg_sensitive_add) and
 * consulted by whatever prints requests (tg_request_sensitive): the jwt
 * plugin marks its token sources, request-log masks their values. One set
 * per config: built on the main thread while the config loads, read-only
 * once workers see it.
 */
#ifndef TG_SENSITIVE_H
#define TG_SENSITIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "tollgate/request.h"

tg_sensitive_t *tg_sensitive_new(void);
void tg_sensitive_free(tg_sensitive_t *s);
/* name: len bytes, compared as tg_sensitive_kind_t says (query names already
 * decoded here: the caller decodes). */
bool tg_sensitive_has(const tg_sensitive_t *s, tg_sensitive_kind_t kind, const char *name,
                      size_t len);

#endif
