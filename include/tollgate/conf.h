/*
 * tollgate public API: configuration nodes.
 *
 * The YAML config is loaded once into an immutable tree of tg_conf_node_t, each
 * node remembering where it was written, so every consumer (the core and every
 * plugin's config parser) can report errors as "FILE:LINE:COL: message".
 * `${ENV_VAR}` references in scalars are already substituted when a node is
 * seen here. Nodes live only while the config is being parsed: copy what you keep.
 */
#ifndef TOLLGATE_CONF_H
#define TOLLGATE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    TG_CONF_NULL = 0, /* empty value or `~` / `null` */
    TG_CONF_SCALAR,
    TG_CONF_MAP,
    TG_CONF_SEQ,
} tg_conf_type_t;

typedef struct tg_conf_node_s tg_conf_node_t;

struct tg_conf_node_s {
    tg_conf_type_t type;
    const char *file;       /* path of the file the node was read from */
    unsigned line;          /* 1-based line of the node's first character */
    unsigned col;           /* 1-based column of the node's first character */
    const char *value;      /* scalars: NUL-terminated text after ${ENV} substitution */
    size_t len;             /* scalars: length of value */
    bool quoted;            /* scalars: written with quotes (so "null"/"true" are strings) */
    size_t count;           /* maps: number of pairs; sequences: number of items */
    tg_conf_node_t **keys;  /* maps: the key nodes (always scalars), count of them */
    tg_conf_node_t **items; /* maps: the value of keys[i]; sequences: the items */
};

/* Error text filled by the functions below, already prefixed "FILE:LINE:COL: ". */
typedef struct {
    char msg[512];
} tg_conf_err_t;

/* Formats "FILE:LINE:COL: <fmt>" into err for node; always returns -1 so that
 * callers can `return tg_conf_error(...)`. */
int tg_conf_error(tg_conf_err_t *err, const tg_conf_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- a YAML file of the plugin's own (key-auth's keys_file) --------------
 * Read with the rules of the main config (src/conf_node.h: one document,
 * scalar keys, no duplicate keys, anchors, aliases and `<<` merge keys
 * resolved, `${ENV}`
 * substituted in values), so that its errors read "FILE:LINE:COL: message"
 * too. From create() (or any thread: nothing is shared). */
typedef struct tg_conf_doc_s tg_conf_doc_t;

/* Reads and parses path. Returns 0 with *out set, or -1 with err holding
 * "FILE:LINE:COL: message" ("FILE: cannot open: ..." when unreadable). */
int tg_conf_doc_load(const char *path, tg_conf_doc_t **out, tg_conf_err_t *err);

/* The document's root node (valid until tg_conf_doc_free); an empty
 * document gives a TG_CONF_NULL node at 1:1. */
const tg_conf_node_t *tg_conf_doc_root(const tg_conf_doc_t *doc);

/* Frees the document and every node in it. NULL is allowed. */
void tg_conf_doc_free(tg_conf_doc_t *doc);

/* Value of `key` in a map node, or NULL when absent or when map is not a map. */
const tg_conf_node_t *tg_conf_map_get(const tg_conf_node_t *map, const char *key);

/* Fails (-1) when a key of map is not in the NULL-terminated list allowed
 * (every such key is reported while the core collects all errors of its
 * config, the first one otherwise), and when map is not a map. The message names a close allowed key
 * ("unknown key 'brust' (did you mean 'burst'?)") or lists them all
 * ("unknown key 'foo' (known: a, b)"). */
int tg_conf_check_keys(const tg_conf_node_t *map, const char *const *allowed, tg_conf_err_t *err);

/* Typed scalar readers: 0 on success, -1 with err filled otherwise. The
 * syntax of numbers, durations and sizes is tollgate/units.h's, whose parsers
 * read the same text outside a config node. */
int tg_conf_get_string(const tg_conf_node_t *n, const char **out, tg_conf_err_t *err);
int tg_conf_get_bool(const tg_conf_node_t *n, bool *out, tg_conf_err_t *err);
int tg_conf_get_uint(const tg_conf_node_t *n, uint64_t min, uint64_t max, uint64_t *out,
                     tg_conf_err_t *err);
/* "250ms", "10s", "1m", "2h", "1d", combinations like "1m30s"; plain numbers are
 * rejected (the unit is never guessed). Result in milliseconds. */
int tg_conf_get_duration_ms(const tg_conf_node_t *n, uint64_t *out_ms, tg_conf_err_t *err);
/* "512", "512B", "16KiB", "10MiB", "1GiB" (1024-based), "16KB"/"10MB"/"1GB"
 * (1000-based), nginx-style "16k"/"10m"/"1g" (1024-based). Result in bytes. */
int tg_conf_get_size(const tg_conf_node_t *n, uint64_t *out, tg_conf_err_t *err);

/* ---- table-driven reading of a map ---------------------------------------
 *
 * A parser declares the keys of a map once, as a table of fields, and reads
 * the whole map with one call:
 *
 *   typedef struct { char *tag; uint64_t status; uint64_t pause_ms; } conf_t;
 *   static const tg_conf_field_t fields[] = {
 *       {"tag", TG_CONF_FIELD_STRING, TG_CONF_AT(conf_t, tag), .max = 31, .def_str = ""},
 *       {"status", TG_CONF_FIELD_UINT, TG_CONF_AT(conf_t, status), .min = 200, .max = 599,
 *        .def = 418},
 *       {"pause", TG_CONF_FIELD_DURATION, TG_CONF_AT(conf_t, pause_ms)},
 *       TG_CONF_END,
 *   };
 *   if (tg_conf_read(node, fields, NULL, conf, err) < 0) ...
 *   ...
 *   tg_conf_fields_free(fields, conf);   (in destroy(): the strings it copied)
 *
 * Every error is "FILE:LINE:COL: message": a key that is not in the table at
 * the key ("unknown key 'brust' (did you mean 'burst'?)", otherwise the known
 * keys are listed), a missing required key at the map, a wrong type or an
 * out-of-bounds value at the value. */

typedef enum {
    TG_CONF_FIELD_STRING = 1, /* char *: a malloc'ed copy; max (when not 0): most bytes */
    TG_CONF_FIELD_BOOL,       /* bool: true/false, yes/no, on/off */
    TG_CONF_FIELD_UINT,       /* unsigned integer member of 1, 2, 4 or 8 bytes, in [min, max] */
    TG_CONF_FIELD_DURATION,   /* milliseconds ("1m30s"), unsigned member, in [min, max] */
    TG_CONF_FIELD_SIZE,       /* bytes ("16KiB"), unsigned member, in [min, max] */
    TG_CONF_FIELD_ENUM,       /* one of names: its index, stored as an unsigned or enum member */
    TG_CONF_FIELD_STRINGS,    /* a string or a list of strings: char ** (NULL-terminated,
                               * malloc'ed) at offset, its count (size_t) at count_offset;
                               * between min and max items (max 0: any number); absent:
                               * both left as they are */
    TG_CONF_FIELD_NODE,       /* const tg_conf_node_t *: the value itself (NULL when absent),
                               * for the caller to read later; valid while parsing only */
    TG_CONF_FIELD_CUSTOM,     /* parse(value, member, err) reads anything else; without
                               * TG_CONF_AT the member is the whole struct (offset 0) */
} tg_conf_field_type_t;

/* flags */
#define TG_CONF_REQUIRED 0x1u /* absent: "missing required key 'k'" at the map */
#define TG_CONF_NONEMPTY 0x2u /* STRING: not ""; STRINGS: no item is "" */
#define TG_CONF_ABSENT 0x4u   /* CUSTOM: parse also runs when the key is absent (n NULL) */

/* Reads one value into out (the member at offset). n is the value node (of
 * any type, TG_CONF_NULL included; NULL only with TG_CONF_ABSENT). Returns 0,
 * or -1 with err filled (tg_conf_error() at the offending node). */
typedef int (*tg_conf_parse_fn)(const tg_conf_node_t *n, void *out, tg_conf_err_t *err);

typedef struct {
    const char *name;          /* the key; NULL ends the table (TG_CONF_END) */
    tg_conf_field_type_t type; /* what the value is and how the member is written */
    size_t offset;             /* offsetof() the member in the caller's struct */
    size_t size;               /* sizeof the member (TG_CONF_AT fills both) */
    unsigned flags;            /* TG_CONF_REQUIRED, TG_CONF_NONEMPTY, TG_CONF_ABSENT */
    uint64_t min, max;         /* inclusive bounds (see the types); max 0: the member's largest
                                * value, which is a bound for every number type */
    uint64_t def;              /* BOOL, UINT, DURATION, SIZE, ENUM: value written when absent */
    const char *def_str;       /* STRING: copied when absent (NULL: the member stays NULL) */
    const char *const *names;  /* ENUM: the accepted words, NULL-terminated */
    size_t count_offset;       /* STRINGS: offsetof() the size_t count */
    tg_conf_parse_fn parse;    /* CUSTOM: the reader */
    const char *help;          /* optional: what the value is, added to "missing" errors */
} tg_conf_field_t;

#define TG_CONF_AT(type, member) \
    .offset = offsetof(type, member), .size = sizeof(((type *)0)->member)
#define TG_CONF_END  \
    {                \
        .name = NULL \
    }

/* Reads map (TG_CONF_NULL, or NULL, counts as an empty map) into out:
 *   1. map must be a map ("expected a map");
 *   2. every key must be in fields ("unknown key 'k'", "... in <where>" when
 *      where is not NULL), and no key written twice;
 *   3. fields in table order (so a later field may depend on an earlier one):
 *      a present key is read into its member; an absent one gets its default
 *      (CUSTOM: nothing is written unless TG_CONF_ABSENT) or, when required,
 *      fails at the map.
 * Returns -1 with err filled on an error. Stops at the first error, except
 * while the core loads its config and collects every error of the file:
 * then every unknown key and every failed value of the map is reported, and
 * a CUSTOM field after a failed value is not read (it may depend on it).
 * Members already written stay written (STRING and STRINGS copies included):
 * free them with tg_conf_fields_free() either way. */
int tg_conf_read(const tg_conf_node_t *map, const tg_conf_field_t *fields, const char *where,
                 void *out, tg_conf_err_t *err);

/* A table mistake (a member size that does not fit the type, an ENUM without
 * names, a CUSTOM without parse, min above max) fails tg_conf_read() with
 * "field table: 'k' is not a valid field" at the map, before anything is
 * written. */

/* Frees the STRING and STRINGS members of out that fields describe and sets
 * them to NULL (their counts to 0); other members are left alone. Safe on a
 * zeroed struct and after a failed tg_conf_read(). */
void tg_conf_fields_free(const tg_conf_field_t *fields, void *out);

#endif
