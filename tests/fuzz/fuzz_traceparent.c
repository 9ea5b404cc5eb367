/*
 * libFuzzer target for tg_traceparent_parse (src/trace_context.h): whatever
 * a client sends, the parser reads only len bytes, and what it accepts is
 * exactly what a naive reference written from W3C Trace Context section 3.2
 * accepts; an accepted value written back with the same ids and flags
 * parses to the same ids (version 00 round-trips byte for byte).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_context.h"

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

static bool lchex(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool zeros(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '0')
            return false;
    return true;
}

static bool reference(const uint8_t *v, size_t len)
{
    if (len < 55 || !lchex(v, 2) || (v[0] == 'f' && v[1] == 'f'))
        return false;
    bool v00 = v[0] == '0' && v[1] == '0';
    if (v00 && len != 55)
        return false;
    if (!v00 && len > 55 && v[55] != '-')
        return false;
    return v[2] == '-' && v[35] == '-' && v[52] == '-' && lchex(v + 3, 32) && lchex(v + 36, 16) &&
           lchex(v + 53, 2) && !zeros(v + 3, 32) && !zeros(v + 36, 16);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: ASan catches any read past len. */
    char *v = malloc(size ? size : 1);
    memcpy(v, data, size);
    tg_traceparent_t p;
    bool ok = tg_traceparent_parse(v, size, &p) == 0;
    CHECK(ok == reference(data, size));
    if (ok) {
        char out[TG_TRACEPARENT_LEN + 1];
        tg_traceparent_format(p.trace_id, p.parent_id, p.flags, out);
        tg_traceparent_t q;
        CHECK(tg_traceparent_parse(out, TG_TRACEPARENT_LEN, &q) == 0);
        CHECK(memcmp(&p, &q, sizeof(p)) == 0);
        if (size == 55 && data[0] == '0' && data[1] == '0')
            CHECK(memcmp(out, data, 55) == 0);
    }
    free(v);
    return 0;
}
