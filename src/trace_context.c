/* W3C traceparent parsing and writing (trace_context.h). */
#include "trace_context.h"

#include <string.h>

/* Lower-case hex only: trace-context 3.2.2.2 ("HEXDIGLC"); upper-case is
 * invalid, not folded, since a value that differs from what the sender
 * meant would continue the wrong trace. */
static int lchex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int read_hex(const char *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = lchex(s[2 * i]), lo = lchex(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

bool tg_trace_id_zero(const uint8_t *b, size_t n)
{
    uint8_t any = 0;
    for (size_t i = 0; i < n; i++)
        any |= b[i];
    return any == 0;
}

int tg_traceparent_parse(const char *v, size_t len, tg_traceparent_t *out)
{
    uint8_t version;
    if (v == NULL || len < TG_TRACEPARENT_LEN || read_hex(v, 1, &version) < 0 || version == 0xff)
        return -1;
    /* Version 00 is exactly 55 bytes; a later version may append fields
     * after a '-' (3.3: parse what version 00 defines, ignore the rest). */
    if (version == 0 ? len != TG_TRACEPARENT_LEN
                     : len > TG_TRACEPARENT_LEN && v[TG_TRACEPARENT_LEN] != '-')
        return -1;
    if (v[2] != '-' || v[35] != '-' || v[52] != '-')
        return -1;
    if (read_hex(v + 3, 16, out->trace_id) < 0 || read_hex(v + 36, 8, out->parent_id) < 0 ||
        read_hex(v + 53, 1, &out->flags) < 0)
        return -1;
    if (tg_trace_id_zero(out->trace_id, 16) || tg_trace_id_zero(out->parent_id, 8))
        return -1;
    return 0;
}

/* Two hex digits per byte value: every request formats a traceparent (and
 * a logged one its ids again), one lookup per byte instead of two. */
#define H4(x)                                                                                     \
#x "0" #x "1" #x "2" #x "3" #x "4" #x "5" #x "6" #x "7" #x "8" #x "9" #x "a" #x "b" #x "c" #x \
       "d" #x "e" #x "f"
static const char hexpairs[512 + 1] =
    H4(0) H4(1) H4(2) H4(3) H4(4) H4(5) H4(6) H4(7) H4(8) H4(9) H4(a) H4(b) H4(c) H4(d) H4(e) H4(f);
#undef H4

void tg_trace_hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        memcpy(out + 2 * i, hexpairs + 2 * b[i], 2);
    out[2 * n] = '\0';
}

void tg_traceparent_format(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags,
                           char out[TG_TRACEPARENT_LEN + 1])
{
    out[0] = '0';
    out[1] = '0';
    out[2] = '-';
    tg_trace_hex(trace_id, 16, out + 3);
    out[35] = '-';
    tg_trace_hex(span_id, 8, out + 36);
    out[52] = '-';
    tg_trace_hex(&flags, 1, out + 53);
}

bool tg_trace_ratio_sampled(const uint8_t trace_id[16], double ratio)
{
    if (!(ratio > 0.0))
        return false;
    if (ratio >= 1.0)
        return true;
    uint64_t x = 0;
    for (int i = 9; i < 16; i++)
        x = x << 8 | trace_id[i];
    return (double)x < ratio * 72057594037927936.0; /* 2^56 */
}
