/*
 * response-shape plugin: the JSON shaping engine, pure (libc only, no
 * tollgate API), so that it is unit tested and fuzzed on its own.
 *
 * A tg_shape_t holds the rules of one profile, compiled at load into a tree
 * with one node per path segment; applying it is one streaming pass over the
 * body that validates it and writes the output, nothing built per value.
 *
 * Paths are dotted keys: "id", "user.avatar_url". A segment ending in "[]"
 * stands for every element of the array under that key ("orders[].id",
 * "a[].b[].c"; "m[][]" for an array of arrays). A trailing "[]" on the last
 * segment means the key itself ("orders[]" == "orders"). "\." "\[" "\]" and "\\"
 * write a key holding those characters. Every path names keys of the INPUT
 * document, whatever the other rules do.
 *
 * Order: include, then exclude, then rename.
 *   include  keeps only the listed paths, their whole subtrees, and their
 *            ancestors. An ancestor that is not the container the path expects
 *            (an object for "a.b", an array for "a[].b") is removed, except
 *            null which is kept (an absent container, no data).
 *   exclude  removes the listed paths.
 *   rename   renames the last segment of a path, keeping the key's position;
 *            when the new name already exists in that object, the renamed
 *            value replaces it (at the first of the two positions); so does
 *            the later of two keys renamed to the same name.
 * A path that does not exist in a document is ignored.
 * A document whose root is an array: the paths apply to each element (and
 * with include, elements that are neither objects nor null are removed).
 * A scalar root is left alone.
 *
 * Output: compact (whitespace between tokens removed); every kept string,
 * number and key is the exact source text (escapes, "1e2", "-0.0" as they
 * came: nothing is re-encoded); renamed keys are written as JSON strings.
 * Duplicate keys in an object are kept as they come, each shaped on its own
 * (RFC 8259 section 4 leaves their meaning open), except that a key bearing
 * a new name that a rename already wrote in the object is dropped.
 */
#ifndef TG_SHAPE_H
#define TG_SHAPE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tg_shape_s tg_shape_t;

typedef enum {
    TG_SHAPE_INCLUDE,
    TG_SHAPE_EXCLUDE,
    TG_SHAPE_RENAME,
} tg_shape_rule_t;

/* Result of tg_shape_body(). */
typedef enum {
    TG_SHAPE_SHAPED,      /* the output holds the shaped document */
    TG_SHAPE_SCALAR,      /* valid JSON with a scalar root: nothing written */
    TG_SHAPE_INVALID,     /* not JSON (see tg_shape_body): nothing written */
    TG_SHAPE_WRITE_ERROR, /* the write callback failed (output incomplete), or
                             out of memory (nothing written) */
} tg_shape_result_t;

/* Receives serialized output; returns 0, or -1 to stop. */
typedef int (*tg_shape_write_fn)(const char *buf, size_t len, void *data);

/* NULL when out of memory. */
tg_shape_t *tg_shape_new(void);
void tg_shape_free(tg_shape_t *s);

/* Adds one rule. new_name: the new key for TG_SHAPE_RENAME (any non-empty
 * string, not a path), NULL otherwise. Returns 0, or -1 with a message in
 * err (bad path syntax, empty name, two renames of one path, out of memory). */
int tg_shape_add(tg_shape_t *s, tg_shape_rule_t rule, const char *path, const char *new_name,
                 char *err, size_t errlen);

/* True when no rule was added (the body is never touched). */
bool tg_shape_is_empty(const tg_shape_t *s);

/* Validates body as RFC 8259 JSON (any value at the root; UTF-8; numbers of
 * any size, copied as written) with three rules of its own: an escaped
 * surrogate comes as a pair, a key holds no "\u0000" (json_scan.h says why),
 * and nesting is at most 2048 deep (jansson's limit, a bound on the work);
 * and, for an object or array root,
 * writes the shaped document: in one pass, through one buffer of about the
 * body's size, and only once the whole body is known to be valid (in pieces
 * of at most 16 KiB). */
tg_shape_result_t tg_shape_body(const tg_shape_t *s, const char *body, size_t len,
                                tg_shape_write_fn write, void *data);

#endif
