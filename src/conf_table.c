/*
 * Table-driven reading of a config map (include/tollgate/conf.h): the one
 * reader behind the core's sections and every plugin's config.
 *
 * Values go through the typed readers of conf_node.c, so a duration or a
 * size means the same everywhere; this file adds what a table knows and a
 * single reader does not: the member's width, bounds named after the key,
 * defaults, required keys and the list of known keys.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_errors.h"
#include "conf_node.h"

/* Tables of more fields than this build their key list on the heap. */
#define STACK_NAMES 64

/* ---- members ------------------------------------------------------------ */

static void *member(void *out, size_t offset)
{
    return (char *)out + offset;
}

/* Largest value an unsigned member of size bytes holds (0 for a bad size). */
static uint64_t width_max(size_t size)
{
    switch (size) {
    case 1:
        return UINT8_MAX;
    case 2:
        return UINT16_MAX;
    case 4:
        return UINT32_MAX;
    case 8:
        return UINT64_MAX;
    default:
        return 0;
    }
}

static void store_uint(void *dst, size_t size, uint64_t v)
{
    uint8_t u8 = (uint8_t)v;
    uint16_t u16 = (uint16_t)v;
    uint32_t u32 = (uint32_t)v;
    switch (size) {
    case 1:
        memcpy(dst, &u8, 1);
        break;
    case 2:
        memcpy(dst, &u16, 2);
        break;
    case 4:
        memcpy(dst, &u32, 4);
        break;
    default:
        memcpy(dst, &v, 8);
        break;
    }
}

static uint64_t field_max(const tg_conf_field_t *f)
{
    uint64_t wmax = width_max(f->size);
    return f->max != 0 && f->max < wmax ? f->max : wmax;
}

/* ---- bounds ------------------------------------------------------------- */

/* v as it would be written in the config: "90s", "1m", "16KiB", "12". */
static void format_value(tg_conf_field_type_t type, uint64_t v, char *buf, size_t cap)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } durations[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}},
      sizes[] = {{"GiB", 1ull << 30}, {"MiB", 1ull << 20}, {"KiB", 1ull << 10}};
    const char *last = "";
    if (type == TG_CONF_FIELD_DURATION && v != 0) {
        for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++)
            if (v % durations[i].mult == 0) {
                snprintf(buf, cap, "%" PRIu64 "%s", v / durations[i].mult, durations[i].unit);
                return;
            }
        last = "ms";
    } else if (type == TG_CONF_FIELD_DURATION) {
        last = "s";
    } else if (type == TG_CONF_FIELD_SIZE) {
        for (size_t i = 0; v != 0 && i < sizeof(sizes) / sizeof(sizes[0]); i++)
            if (v % sizes[i].mult == 0) {
                snprintf(buf, cap, "%" PRIu64 "%s", v / sizes[i].mult, sizes[i].unit);
                return;
            }
        last = "B";
    }
    snprintf(buf, cap, "%" PRIu64 "%s", v, last);
}

static int bounds_error(const tg_conf_field_t *f, const tg_conf_node_t *n, tg_conf_err_t *err)
{
    uint64_t max = field_max(f);
    bool open_above = max == UINT64_MAX; /* a narrower member's largest value is a bound */
    char lo[32], hi[32];
    format_value(f->type, f->min, lo, sizeof(lo));
    format_value(f->type, max, hi, sizeof(hi));
    if (open_above && f->min == 1)
        return tg_conf_error(err, n, "%s must be greater than 0", f->name);
    if (open_above && f->min > 1)
        return tg_conf_error(err, n, "%s must be at least %s", f->name, lo);
    if (f->min == 0)
        return tg_conf_error(err, n, "%s must be at most %s", f->name, hi);
    return tg_conf_error(err, n, "%s must be between %s and %s", f->name, lo, hi);
}

/* ---- one value ---------------------------------------------------------- */

static bool all_digits(const tg_conf_node_t *n)
{
    return n->type == TG_CONF_SCALAR && n->len > 0 && strspn(n->value, "0123456789") == n->len;
}

static int read_number(const tg_conf_field_t *f, const tg_conf_node_t *n, void *dst,
                       tg_conf_err_t *err)
{
    uint64_t v;
    int rc;
    if (f->type == TG_CONF_FIELD_DURATION) {
        rc = tg_conf_get_duration_ms(n, &v, err);
    } else if (f->type == TG_CONF_FIELD_SIZE) {
        rc = tg_conf_get_size(n, &v, err);
    } else {
        rc = tg_conf_get_uint(n, 0, UINT64_MAX, &v, err);
        /* Digits past 2^64 are out of bounds, not "not an integer". */
        if (rc < 0 && all_digits(n))
            return bounds_error(f, n, err);
    }
    if (rc < 0)
        return -1;
    if (v < f->min || v > field_max(f))
        return bounds_error(f, n, err);
    store_uint(dst, f->size, v);
    return 0;
}

static int read_bool(const tg_conf_node_t *n, void *dst, tg_conf_err_t *err)
{
    bool b;
    if (tg_conf_get_bool(n, &b, err) < 0)
        return -1;
    memcpy(dst, &b, sizeof(b));
    return 0;
}

/* "a", "a or b", "a, b or c" */
static void join_names(const char *const *names, char *buf, size_t cap)
{
    size_t count = 0, used = 0;
    while (names[count] != NULL)
        count++;
    buf[0] = '\0';
    for (size_t i = 0; i < count && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%s",
                                 i == 0           ? ""
                                 : i + 1 == count ? " or "
                                                  : ", ",
                                 names[i]);
}

static int read_enum(const tg_conf_field_t *f, const tg_conf_node_t *n, void *dst,
                     tg_conf_err_t *err)
{
    const char *s;
    if (tg_conf_get_string(n, &s, err) < 0)
        return -1;
    for (size_t i = 0; f->names[i] != NULL; i++)
        if (strcmp(s, f->names[i]) == 0) {
            store_uint(dst, f->size, i);
            return 0;
        }
    char list[300];
    join_names(f->names, list, sizeof(list));
    return tg_conf_error(err, n, "%s must be %s, got '%s'", f->name, list, s);
}

static int copy_string(const tg_conf_field_t *f, const tg_conf_node_t *n, char **dst,
                       tg_conf_err_t *err)
{
    const char *s;
    if (tg_conf_get_string(n, &s, err) < 0)
        return -1;
    if ((f->flags & TG_CONF_NONEMPTY) && *s == '\0')
        return tg_conf_error(err, n, "%s must not be empty", f->name);
    if (f->type == TG_CONF_FIELD_STRING && f->max != 0 && n->len > f->max)
        return tg_conf_error(err, n, "%s must be at most %" PRIu64 " bytes", f->name, f->max);
    if ((*dst = strdup(s)) == NULL)
        return tg_conf_error(err, n, "out of memory");
    return 0;
}

static int read_strings(const tg_conf_field_t *f, const tg_conf_node_t *n, void *out,
                        tg_conf_err_t *err)
{
    char ***items = member(out, f->offset);
    size_t *count = member(out, f->count_offset);
    bool one = n->type == TG_CONF_SCALAR;
    if (!one && n->type != TG_CONF_SEQ)
        return tg_conf_error(err, n, "expected a string or a list of strings");
    size_t k = one ? 1 : n->count, max = f->max != 0 ? (size_t)f->max : SIZE_MAX;
    if (k < f->min || k > max) {
        if (max == SIZE_MAX)
            return tg_conf_error(err, n, "%s needs at least %" PRIu64 " item%s", f->name, f->min,
                                 f->min == 1 ? "" : "s");
        return tg_conf_error(err, n, "%s needs between %" PRIu64 " and %zu items", f->name, f->min,
                             max);
    }
    if ((*items = calloc(k + 1, sizeof(char *))) == NULL)
        return tg_conf_error(err, n, "out of memory");
    *count = 0;
    for (size_t i = 0; i < k; i++) {
        if (copy_string(f, one ? n : n->items[i], &(*items)[i], err) < 0)
            return -1;
        (*count)++;
    }
    return 0;
}

static int read_value(const tg_conf_field_t *f, const tg_conf_node_t *n, void *out,
                      tg_conf_err_t *err)
{
    void *dst = member(out, f->offset);
    switch (f->type) {
    case TG_CONF_FIELD_STRING:
        return copy_string(f, n, dst, err);
    case TG_CONF_FIELD_BOOL:
        return read_bool(n, dst, err);
    case TG_CONF_FIELD_UINT:
    case TG_CONF_FIELD_DURATION:
    case TG_CONF_FIELD_SIZE:
        return read_number(f, n, dst, err);
    case TG_CONF_FIELD_ENUM:
        return read_enum(f, n, dst, err);
    case TG_CONF_FIELD_STRINGS:
        return read_strings(f, n, out, err);
    case TG_CONF_FIELD_NODE:
        memcpy(dst, &n, sizeof(n));
        return 0;
    case TG_CONF_FIELD_CUSTOM:
        return f->parse(n, dst, err);
    }
    return -1; /* check_table() let no other type through */
}

/* Writes the default of an absent key. */
static int read_absent(const tg_conf_field_t *f, const tg_conf_node_t *map, void *out,
                       tg_conf_err_t *err)
{
    void *dst = member(out, f->offset);
    bool b = f->def != 0;
    const tg_conf_node_t *none = NULL;
    if (f->flags & TG_CONF_REQUIRED)
        return tg_conf_error(err, map, "missing required key '%s'%s%s%s", f->name,
                             f->help ? " (" : "", f->help ? f->help : "", f->help ? ")" : "");
    switch (f->type) {
    case TG_CONF_FIELD_STRING:
        if (f->def_str != NULL && (*(char **)dst = strdup(f->def_str)) == NULL)
            return tg_conf_error(err, map, "out of memory");
        return 0;
    case TG_CONF_FIELD_BOOL:
        memcpy(dst, &b, sizeof(b));
        return 0;
    case TG_CONF_FIELD_UINT:
    case TG_CONF_FIELD_DURATION:
    case TG_CONF_FIELD_SIZE:
    case TG_CONF_FIELD_ENUM:
        store_uint(dst, f->size, f->def);
        return 0;
    case TG_CONF_FIELD_NODE:
        memcpy(dst, &none, sizeof(none));
        return 0;
    case TG_CONF_FIELD_CUSTOM:
        return (f->flags & TG_CONF_ABSENT) ? f->parse(NULL, dst, err) : 0;
    case TG_CONF_FIELD_STRINGS:
        return 0;
    }
    return 0;
}

/* ---- the map ------------------------------------------------------------ */

static int check_duplicates(const tg_conf_node_t *map, tg_conf_err_t *err)
{
    /* The YAML loader refuses them already; a hand-built tree is checked too. */
    for (size_t i = 1; i < map->count; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(map->keys[i]->value, map->keys[j]->value) == 0)
                return tg_conf_error(err, map->keys[i],
                                     "duplicate key '%s' (first defined at line %u)",
                                     map->keys[i]->value, map->keys[j]->line);
    return 0;
}

static int check_keys(const tg_conf_node_t *map, const tg_conf_field_t *fields, size_t nfields,
                      const char *where, tg_conf_err_t *err)
{
    const char *stack[STACK_NAMES + 1];
    const char **names = nfields <= STACK_NAMES ? stack : calloc(nfields + 1, sizeof(*names));
    if (names == NULL)
        return tg_conf_error(err, map, "out of memory");
    for (size_t i = 0; i < nfields; i++)
        names[i] = fields[i].name;
    names[nfields] = NULL;
    int rc = tg_conf_check_keys_in(map, names, where, err);
    if (names != stack)
        free(names);
    return rc;
}

/* A table mistake (a member of the wrong size, no names, no parse) is the
 * plugin author's, but it is reported like a config error rather than
 * writing past a member. */
static int check_table(const tg_conf_node_t *map, const tg_conf_field_t *f, tg_conf_err_t *err)
{
    bool ok;
    switch (f->type) {
    case TG_CONF_FIELD_STRING:
    case TG_CONF_FIELD_STRINGS:
        ok = f->size == sizeof(char *);
        break;
    case TG_CONF_FIELD_BOOL:
        ok = f->size == sizeof(bool);
        break;
    case TG_CONF_FIELD_UINT:
    case TG_CONF_FIELD_DURATION:
    case TG_CONF_FIELD_SIZE:
        ok = width_max(f->size) != 0 && f->min <= field_max(f);
        break;
    case TG_CONF_FIELD_ENUM:
        ok = width_max(f->size) != 0 && f->names != NULL;
        break;
    case TG_CONF_FIELD_NODE:
        ok = f->size == sizeof(const tg_conf_node_t *);
        break;
    case TG_CONF_FIELD_CUSTOM:
        ok = f->parse != NULL;
        break;
    default:
        ok = false;
    }
    return ok ? 0 : tg_conf_error(err, map, "field table: '%s' is not a valid field", f->name);
}

static _Thread_local tg_conf_read_hook_fn observer;
static _Thread_local void *observer_arg;

void tg_conf_read_observe(tg_conf_read_hook_fn fn, void *arg)
{
    observer = fn;
    observer_arg = arg;
}

/* When the load collects every error (src/conf_errors.h), a failed key is
 * recorded and the map read on: unknown keys change no member, and the
 * built-in types read only their own value. A CUSTOM field after a failed
 * value is skipped, since its reader may depend on an earlier member (the
 * table order is there for that). The result is -1 if anything failed. */
int tg_conf_read(const tg_conf_node_t *map, const tg_conf_field_t *fields, const char *where,
                 void *out, tg_conf_err_t *err)
{
    size_t nfields = 0;
    for (; fields[nfields].name != NULL; nfields++)
        if (check_table(map, &fields[nfields], err) < 0)
            return -1;
    if (observer != NULL)
        observer(map, fields, where, observer_arg);
    bool empty = map == NULL || map->type == TG_CONF_NULL, failed = false, value_failed = false;
    if (!empty &&
        (check_keys(map, fields, nfields, where, err) < 0 || check_duplicates(map, err) < 0)) {
        if (map->type != TG_CONF_MAP || tg_conf_errors_recover(err) < 0)
            return -1;
        failed = true;
    }
    for (size_t i = 0; i < nfields; i++) {
        const tg_conf_field_t *f = &fields[i];
        if (value_failed && f->type == TG_CONF_FIELD_CUSTOM)
            continue;
        const tg_conf_node_t *n = empty ? NULL : tg_conf_map_get(map, f->name);
        if ((n != NULL ? read_value(f, n, out, err) : read_absent(f, map, out, err)) < 0) {
            if (tg_conf_errors_recover(err) < 0)
                return -1;
            failed = value_failed = true;
        }
    }
    return failed ? -1 : 0;
}

bool tg_conf_field_default(const tg_conf_field_t *f, char *buf, size_t cap)
{
    if (f->flags & TG_CONF_REQUIRED)
        return false;
    switch (f->type) {
    case TG_CONF_FIELD_STRING:
        if (f->def_str == NULL)
            return false;
        snprintf(buf, cap, "%s", f->def_str);
        return true;
    case TG_CONF_FIELD_BOOL:
        snprintf(buf, cap, "%s", f->def ? "true" : "false");
        return true;
    case TG_CONF_FIELD_UINT:
    case TG_CONF_FIELD_DURATION:
    case TG_CONF_FIELD_SIZE:
        format_value(f->type, f->def, buf, cap);
        return true;
    case TG_CONF_FIELD_ENUM:
        for (uint64_t i = 0; f->names != NULL && f->names[i] != NULL; i++)
            if (i == f->def) {
                snprintf(buf, cap, "%s", f->names[i]);
                return true;
            }
        return false;
    default:
        return false;
    }
}

void tg_conf_fields_free(const tg_conf_field_t *fields, void *out)
{
    for (const tg_conf_field_t *f = fields; f->name != NULL; f++) {
        if (f->type == TG_CONF_FIELD_STRING) {
            char **s = member(out, f->offset);
            free(*s);
            *s = NULL;
        } else if (f->type == TG_CONF_FIELD_STRINGS) {
            char ***items = member(out, f->offset);
            size_t *count = member(out, f->count_offset);
            for (size_t i = 0; *items != NULL && (*items)[i] != NULL; i++)
                free((*items)[i]);
            free(*items);
            *items = NULL;
            *count = 0;
        }
    }
}
