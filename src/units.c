/* Numbers, durations and sizes as text (include/tollgate/units.h). */
#include "tollgate/units.h"

#include <string.h>

typedef struct {
    const char *name;
    uint64_t mult;
} unit_t;

/* "ms" before "m" so that the longer unit wins. */
static const unit_t duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400 * 1000},
};

static const unit_t size_units[] = {
    {"", 1},
    {"B", 1},
    {"KiB", 1ull << 10},
    {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},
    {"KB", 1000},
    {"MB", 1000000},
    {"GB", 1000000000},
    {"k", 1ull << 10},
    {"K", 1ull << 10},
    {"m", 1ull << 20},
    {"M", 1ull << 20},
    {"g", 1ull << 30},
    {"G", 1ull << 30},
};

#define NUNITS(a) (sizeof(a) / sizeof((a)[0]))

/* Leading decimal digits of s: *used = how many (0: none). Returns 0, or
 * TG_UNITS_OVERFLOW when they do not fit (*used still counts them all). */
static int digits(const char *s, size_t len, size_t *used, uint64_t *out)
{
    uint64_t v = 0;
    int rc = 0;
    size_t i = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
            rc = TG_UNITS_OVERFLOW;
    *used = i;
    *out = v;
    return rc;
}

int tg_uint_parse(const char *s, size_t len, uint64_t *out)
{
    size_t used;
    uint64_t v;
    int rc = digits(s, len, &used, &v);
    if (used == 0 || used != len)
        return TG_UNITS_SYNTAX;
    if (rc < 0)
        return rc;
    *out = v;
    return 0;
}

/* The unit at the start of s (the longest listed first). */
static const unit_t *duration_unit(const char *s, size_t len)
{
    for (size_t i = 0; i < NUNITS(duration_units); i++) {
        size_t ul = strlen(duration_units[i].name);
        if (ul <= len && memcmp(s, duration_units[i].name, ul) == 0)
            return &duration_units[i];
    }
    return NULL;
}

/* Most digits after a decimal point: 10^9 times the largest unit (a day in
 * ms) still fits in 64 bits, and nobody writes a nanosecond of a day. */
#define MAX_FRACTION 9

/* ".5" after a part's whole number: *num / *den is the fraction (0/1 when
 * there is none). Returns the bytes used, or -1 for a point without digits
 * or too many of them. */
static int fraction(const char *s, size_t len, uint64_t *num, uint64_t *den)
{
    *num = 0;
    *den = 1;
    if (len == 0 || s[0] != '.')
        return 0;
    size_t i = 1;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        if (i > MAX_FRACTION)
            return -1;
        *num = *num * 10 + (uint64_t)(s[i] - '0');
        *den *= 10;
    }
    return i == 1 ? -1 : (int)i;
}

/* One part, "10s" or "1.5s", at s: adds its milliseconds to *total. */
static int duration_part(const char *s, size_t len, size_t *used, uint64_t *total, int *rc)
{
    size_t n;
    uint64_t v, num, den;
    if (digits(s, len, &n, &v) < 0)
        *rc = TG_UNITS_OVERFLOW;
    if (n == 0)
        return TG_UNITS_SYNTAX;
    int f = fraction(s + n, len - n, &num, &den);
    if (f < 0)
        return TG_UNITS_SYNTAX;
    n += (size_t)f;
    const unit_t *u = duration_unit(s + n, len - n);
    if (u == NULL)
        return TG_UNITS_SYNTAX;
    n += strlen(u->name);
    *used = n;
    /* A fraction must come to whole milliseconds: "1.5s" is 1500 ms, "0.5ms"
     * would have to be rounded, and the config never guesses. */
    uint64_t part = num * u->mult;
    if (part % den != 0 && *rc == 0)
        *rc = TG_UNITS_PRECISION;
    if (__builtin_mul_overflow(v, u->mult, &v) || __builtin_add_overflow(v, part / den, &v) ||
        __builtin_add_overflow(*total, v, total))
        *rc = TG_UNITS_OVERFLOW;
    return 0;
}

int tg_duration_parse_ms(const char *s, size_t len, uint64_t *ms)
{
    uint64_t total = 0;
    int rc = 0;
    size_t i = 0;
    if (len == 0)
        return TG_UNITS_SYNTAX;
    while (i < len) {
        size_t used = 0;
        if (duration_part(s + i, len - i, &used, &total, &rc) < 0)
            return TG_UNITS_SYNTAX;
        i += used;
    }
    /* Syntax first: "99999999999999999999x" is not a duration at all. */
    if (rc < 0)
        return rc;
    *ms = total;
    return 0;
}

int tg_size_parse(const char *s, size_t len, uint64_t *bytes)
{
    size_t used;
    uint64_t v;
    int rc = digits(s, len, &used, &v);
    if (used == 0)
        return TG_UNITS_SYNTAX;
    for (size_t i = 0; i < NUNITS(size_units); i++) {
        const char *name = size_units[i].name;
        if (strlen(name) != len - used || memcmp(s + used, name, len - used) != 0)
            continue;
        if (rc < 0 || __builtin_mul_overflow(v, size_units[i].mult, &v))
            return TG_UNITS_OVERFLOW;
        *bytes = v;
        return 0;
    }
    return TG_UNITS_SYNTAX;
}
