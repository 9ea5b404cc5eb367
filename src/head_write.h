/*
 * Writing a message head into space reserved at its exact upper bound
 * (evbuffer_reserve_space): one reservation, plain memcpy, one commit.
 */
#ifndef TG_HEAD_WRITE_H
#define TG_HEAD_WRITE_H

#include <string.h>

#include "http_parser.h"

static inline void tg_put(char **w, const void *s, size_t n)
{
    memcpy(*w, s, n);
    *w += n;
}

/* lit must be a string literal (sizeof of a pointer would be wrong). */
#define TG_PUT_LIT(w, lit) tg_put(w, "" lit, sizeof(lit) - 1)

static inline void tg_put_header(char **w, const tg_http_header_t *h)
{
    tg_put(w, h->name, h->name_len);
    TG_PUT_LIT(w, ": ");
    tg_put(w, h->value, h->value_len);
    TG_PUT_LIT(w, "\r\n");
}

#endif
