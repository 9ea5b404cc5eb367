/*
 * libFuzzer target for tg_path_normalize. Every input is normalized in both
 * modes (encoded slashes rejected, and kept). Checks the output invariants of
 * src/path_norm.h (idempotence; no "//", "/./", "/../"; no raw byte that is not
 * allowed raw; nothing left encoded that should have been decoded; upper-case
 * hex) and compares with a deliberately naive reference written straight from
 * RFC 3986 (decode, split, segment stack), so both "accepts what it should
 * not" and "produces a different path" are caught.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "path_norm.h"

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

static bool is_unreserved(int c)
{
    return c > 0 && c < 128 &&
           strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789-._~",
                  c) != NULL;
}

/* pchar without ";" and without "%" (RFC 3986 section 3.3): allowed raw in a segment */
static bool is_seg_char(int c)
{
    return is_unreserved(c) || (c > 0 && strchr("!$&'()*+,=:@", c) != NULL);
}

static bool is_plain(int c)
{
    return is_seg_char(c) || c == '/';
}

static int hex(int c)
{
    const char *digits = "0123456789abcdef0123456789ABCDEF";
    const char *p = c > 0 ? strchr(digits, c) : NULL;
    return p ? (int)((p - digits) & 15) : -1;
}

static bool rejected_encoding(int v, bool keep)
{
    return (v == '/' && !keep) || v == '\\' || v == 0 || v == ';' || v == '#';
}

/* Percent-decoding pass of the reference; returns the decoded length or -1.
 * A kept %2F is copied as its three bytes, so the split on "/" below never
 * sees it. */
static long ref_decode(const uint8_t *in, size_t len, bool keep, char *d)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] != '%') {
            if (!is_plain(in[i]))
                return -1;
            d[n++] = (char)in[i];
            continue;
        }
        if (i + 2 >= len || hex(in[i + 1]) < 0 || hex(in[i + 2]) < 0)
            return -1;
        int v = hex(in[i + 1]) * 16 + hex(in[i + 2]);
        if (rejected_encoding(v, keep))
            return -1;
        if (is_seg_char(v)) {
            d[n++] = (char)v;
        } else {
            n += (size_t)sprintf(d + n, "%%%02X", v);
        }
        i += 2;
    }
    return (long)n;
}

/* Reference normalizer: 0 and the result in out, or -1. */
static int ref_normalize(const uint8_t *in, size_t len, bool keep, char *out, size_t *out_len)
{
    if (len == 0 || in[0] != '/')
        return -1;
    char *d = malloc(len + 2); /* sprintf's NUL */
    long dn = ref_decode(in, len, keep, d);
    if (dn < 0) {
        free(d);
        return -1;
    }
    /* segments of d[1..dn) as (start, length); empty ones merged away */
    size_t *st = malloc(sizeof(size_t) * (len + 1)), *sl = malloc(sizeof(size_t) * (len + 1));
    size_t depth = 0, s = 1;
    bool trailing = false;
    for (size_t i = 1; i <= (size_t)dn; i++) {
        if (i < (size_t)dn && d[i] != '/')
            continue;
        size_t n = i - s;
        bool dot = n == 1 && d[s] == '.', dotdot = n == 2 && d[s] == '.' && d[s + 1] == '.';
        trailing = n == 0 || dot || dotdot;
        if (dotdot && depth > 0)
            depth--;
        else if (n > 0 && !dot && !dotdot) {
            st[depth] = s;
            sl[depth++] = n;
        }
        s = i + 1;
    }
    size_t o = 0;
    out[o++] = '/';
    for (size_t k = 0; k < depth; k++) {
        memcpy(out + o, d + st[k], sl[k]);
        o += sl[k];
        if (k + 1 < depth || trailing)
            out[o++] = '/';
    }
    *out_len = o;
    free(d);
    free(st);
    free(sl);
    return 0;
}

static bool contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0)
            return true;
    return false;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static void check_output(const char *out, size_t n, size_t in_len, bool keep)
{
    CHECK(n <= in_len + 1);
    CHECK(n >= 1 && out[0] == '/');
    CHECK(!contains(out, n, "//"));
    CHECK(!contains(out, n, "/./"));
    CHECK(!contains(out, n, "/../"));
    CHECK(!ends_with(out, n, "/.") && !ends_with(out, n, "/.."));
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c != '%') {
            CHECK(is_plain(c));
            continue;
        }
        /* what stays encoded is well-formed, upper-case, and could not be raw */
        CHECK(i + 2 < n && hex(out[i + 1]) >= 0 && hex(out[i + 2]) >= 0);
        CHECK(!(out[i + 1] >= 'a' && out[i + 1] <= 'f') &&
              !(out[i + 2] >= 'a' && out[i + 2] <= 'f'));
        int v = hex(out[i + 1]) * 16 + hex(out[i + 2]);
        CHECK(!is_seg_char(v) && !rejected_encoding(v, keep));
        i += 2;
    }
}

/* Normalizes in one mode, checks everything; returns rc, output in out. */
static int run_mode(const uint8_t *data, const char *in, size_t size, bool keep, char *out,
                    size_t *n)
{
    unsigned flags = keep ? TG_PATH_KEEP_ENCODED_SLASH : 0;
    char *again = malloc(size + 2);
    char *ref = malloc(size + 1);
    size_t n2 = 0, rn = 0;
    const char *reason = NULL;
    int rc = tg_path_normalize(in, size, flags, out, n, &reason);
    int ref_rc = ref_normalize(data, size, keep, ref, &rn);
    CHECK(rc == ref_rc);
    if (rc != 0) {
        CHECK(rc == -1 && reason != NULL && reason[0] != '\0');
    } else {
        check_output(out, *n, size, keep);
        CHECK(rn == *n && memcmp(ref, out, *n) == 0);
        /* idempotent */
        reason = NULL;
        CHECK(tg_path_normalize(out, *n, flags, again, &n2, &reason) == 0);
        CHECK(n2 == *n && memcmp(again, out, *n) == 0);
    }
    free(again);
    free(ref);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size heap buffers so that ASan sees any overrun. */
    char *in = malloc(size ? size : 1);
    char *out = malloc(size + 1);
    char *out_keep = malloc(size + 1);
    if (size)
        memcpy(in, data, size);
    size_t n = 0, nk = 0;
    int rc = run_mode(data, in, size, false, out, &n);
    int rck = run_mode(data, in, size, true, out_keep, &nk);
    /* keep only adds %2F to what is accepted; without one, both agree */
    if (rc == 0)
        CHECK(rck == 0 && nk == n && memcmp(out, out_keep, n) == 0);
    if (rck != 0)
        CHECK(rc != 0);
    /* every "%" of an accepted input starts an encoding: no %2F in it, same result */
    if (rck == 0 && !contains(in, size, "%2F") && !contains(in, size, "%2f"))
        CHECK(rc == 0);
    free(in);
    free(out);
    free(out_keep);
    return 0;
}
