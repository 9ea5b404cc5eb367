/*
 * Writing a message head into space reserved at its exact upper bound
 * (evbuffer_reserve_space): one reservation, plain memcpy, one commit.
 */
#ifndef TG_HEAD_WRITE_H
#define TG_HEAD_WRITE_H

#include <stdint.h>
#include <string.h>

#include "http_parser.h"

static inline void tg_put(char **w, const void *s, size_t n)
{
    memcpy(*w, s, n);
    *w += n;
}

/* lit must be a string literal (sizeof of a pointer would be wrong). */
#define TG_PUT_LIT(w, lit) tg_put(w, "" lit, sizeof(lit) - 1)

/* Decimal, without printf (heads are written per request). */
static inline void tg_put_u64(char **w, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do
        tmp[sizeof(tmp) - ++n] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    tg_put(w, tmp + sizeof(tmp) - n, n);
}

/* A status code as three digits (100..999; the parser and the setters
 * refuse anything else). */
static inline void tg_put_status(char **w, int status)
{
    (*w)[0] = (char)('0' + status / 100 % 10);
    (*w)[1] = (char)('0' + status / 10 % 10);
    (*w)[2] = (char)('0' + status % 10);
    *w += 3;
}

static inline void tg_put_header(char **w, const tg_http_header_t *h)
{
    tg_put(w, h->name, h->name_len);
    TG_PUT_LIT(w, ": ");
    tg_put(w, h->value, h->value_len);
    TG_PUT_LIT(w, "\r\n");
}

#endif
