/*
 * tollgate public API: numbers, durations and sizes written as text, the
 * syntax of the config (tg_conf_get_uint / tg_conf_get_duration_ms /
 * tg_conf_get_size read nodes with these),
 * for plugins that meet one elsewhere: in a header value, in a key spec, in
 * a list. Pure functions: no allocation, any thread; s is len bytes, and any
 * byte outside the syntax (a NUL, white space, a sign) fails it.
 */
#ifndef TOLLGATE_UNITS_H
#define TOLLGATE_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Returned by the parsers below besides 0. */
#define TG_UNITS_SYNTAX (-1)    /* not a duration / a size */
#define TG_UNITS_OVERFLOW (-2)  /* well formed, but does not fit in 64 bits */
#define TG_UNITS_PRECISION (-3) /* a duration finer than a millisecond ("0.5ms") */

/* A plain decimal number ("0", "42", "007"): digits only, no sign, no white
 * space. Returns 0 with *out set, or TG_UNITS_SYNTAX / TG_UNITS_OVERFLOW with
 * *out untouched. */
int tg_uint_parse(const char *s, size_t len, uint64_t *out);

/* "250ms", "10s", "1m", "2h", "1d" and concatenations such as "1m30s" (each
 * part a decimal number and a unit; parts add up), in milliseconds. A part's
 * number may have a fraction of up to 9 digits ("1.5s", "0.25s", "1.5h")
 * when the part comes to whole milliseconds ("0.5ms", "1.0001s" are
 * TG_UNITS_PRECISION). A number without a unit is a syntax error: the unit is
 * never guessed. Returns 0 with *ms set, or TG_UNITS_SYNTAX /
 * TG_UNITS_OVERFLOW / TG_UNITS_PRECISION with *ms untouched. */
int tg_duration_parse_ms(const char *s, size_t len, uint64_t *ms);

/* A decimal number of bytes with an optional unit: none or "B" (bytes);
 * "KiB", "MiB", "GiB" (1024-based); "KB", "MB", "GB" (1000-based); nginx's
 * "k"/"K", "m"/"M", "g"/"G" (1024-based). Returns 0 with *bytes set, or
 * TG_UNITS_SYNTAX / TG_UNITS_OVERFLOW with *bytes untouched. */
int tg_size_parse(const char *s, size_t len, uint64_t *bytes);

#endif
