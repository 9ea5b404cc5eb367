/* cors plugin: origins, configured and sent (origin.h). */
#include "origin.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The parts of a serialized origin, spans of the input. */
typedef struct {
    const char *scheme, *host, *port; /* port: after ":"; NULL when absent */
    size_t scheme_len, host_len, port_len;
} parts_t;

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
static bool scheme_valid(const char *s, size_t len)
{
    if (len == 0 || !is_alpha(s[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '+' && s[i] != '-' && s[i] != '.')
            return false;
    return true;
}

/* A DNS name or IPv4 literal as a browser serializes it: labels of letters,
 * digits and "-", separated by single dots, no empty label (and so no
 * leading or trailing dot); or an IPv6 literal in brackets. Anything a URL
 * parser would have percent-decoded or punycoded is refused. */
static bool host_valid(const char *h, size_t len)
{
    if (len == 0)
        return false;
    if (h[0] == '[') {
        if (len < 4 || h[len - 1] != ']')
            return false;
        for (size_t i = 1; i + 1 < len; i++)
            if (!is_digit(h[i]) && !strchr("abcdefABCDEF:.", h[i]))
                return false;
        return true;
    }
    bool label_start = true;
    for (size_t i = 0; i < len; i++) {
        char c = h[i];
        if (c == '.') {
            if (label_start)
                return false;
            label_start = true;
        } else if (is_alpha(c) || is_digit(c) || c == '-') {
            label_start = false;
        } else {
            return false;
        }
    }
    return !label_start;
}

/* 1-5 digits, no leading zero, at most 65535 (a browser writes it so). */
static bool port_valid(const char *p, size_t len)
{
    if (len == 0 || len > 5 || p[0] == '0')
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(p[i]))
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    return v <= 65535;
}

/* scheme "://" host [":" port], nothing more. */
static bool split(const char *s, size_t len, parts_t *out)
{
    const char *sep = len >= 3 ? memmem(s, len, "://", 3) : NULL;
    if (sep == NULL || !scheme_valid(s, (size_t)(sep - s)))
        return false;
    out->scheme = s;
    out->scheme_len = (size_t)(sep - s);
    const char *h = sep + 3, *end = s + len;
    /* The port's ":" is the last one, after an IPv6 literal's "]". */
    const char *close = memchr(h, ']', (size_t)(end - h));
    const char *from = close ? close : h;
    const char *colon = memchr(from, ':', (size_t)(end - from));
    out->host = h;
    out->host_len = (size_t)((colon ? colon : end) - h);
    out->port = colon ? colon + 1 : NULL;
    out->port_len = colon ? (size_t)(end - colon - 1) : 0;
    return host_valid(out->host, out->host_len) &&
           (out->port == NULL || port_valid(out->port, out->port_len));
}

static bool default_port(const parts_t *p)
{
    return p->port != NULL && ((p->scheme_len == 5 && strncasecmp(p->scheme, "https", 5) == 0 &&
                                p->port_len == 3 && memcmp(p->port, "443", 3) == 0) ||
                               (p->scheme_len == 4 && strncasecmp(p->scheme, "http", 4) == 0 &&
                                p->port_len == 2 && memcmp(p->port, "80", 2) == 0));
}

static char *lower_dup(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++)
        out[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
    out[len] = '\0';
    return out;
}

void tg_cors_origin_free(tg_cors_origin_t *o)
{
    free(o->text);
    free(o->suffix);
    free(o->port);
    memset(o, 0, sizeof(*o));
}

/* "scheme://\*.suffix[:port]": the wildcard label is replaced by a valid one
 * to check the rest with the same rules as a browser's origin. */
static int parse_wildcard(const char *s, size_t len, const char *star, tg_cors_origin_t *out,
                          const char **why)
{
    char buf[TG_CORS_ORIGIN_MAX + 1];
    memcpy(buf, s, len);
    buf[star - s] = 'x';
    parts_t p;
    if (!split(buf, len, &p) || p.host[0] == '[') {
        *why = "invalid wildcard origin (expected scheme://*.example.com[:port])";
        return -1;
    }
    const char *suffix = s + (p.host - buf) + 1; /* ".example.com" */
    size_t suffix_len = p.host_len - 1;
    const char *last = memrchr(suffix, '.', suffix_len) + 1;
    if (last == suffix + 1) {
        *why = "a wildcard needs at least two labels after it (*.example.com)";
        return -1;
    }
    if (strspn(last, "0123456789") == (size_t)(suffix + suffix_len - last)) {
        *why = "a wildcard covers DNS names, not IP addresses";
        return -1;
    }
    bool dflt = default_port(&p);
    out->text = lower_dup(s, p.scheme_len + 3);
    out->text_len = p.scheme_len + 3;
    out->suffix = lower_dup(suffix, suffix_len);
    out->suffix_len = suffix_len;
    out->port_len = p.port && !dflt ? p.port_len + 1 : 0;
    out->port = lower_dup(p.port && !dflt ? p.port - 1 : "", out->port_len);
    if (out->text == NULL || out->suffix == NULL || out->port == NULL) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}

int tg_cors_origin_parse(const char *s, tg_cors_origin_t *out, const char **why)
{
    size_t len = strlen(s);
    memset(out, 0, sizeof(*out));
    *why = "out of memory";
    if (strcmp(s, "null") == 0) {
        out->text_len = 4;
        return (out->text = strdup("null")) != NULL ? 0 : -1;
    }
    if (len > TG_CORS_ORIGIN_MAX) {
        *why = "origin too long";
        return -1;
    }
    const char *sep = strstr(s, "://");
    const char *star = strchr(s, '*');
    if (star != NULL) {
        if (sep == NULL || star != sep + 3 || star[1] != '.' || strchr(star + 1, '*') != NULL) {
            *why = "a wildcard is one leading label: scheme://*.example.com[:port]";
            return -1;
        }
        return parse_wildcard(s, len, star, out, why);
    }
    parts_t p;
    if (!split(s, len, &p)) {
        *why = sep != NULL && strchr(sep + 3, '/') != NULL
                   ? "an origin has no path: scheme://host[:port], e.g. https://app.example.com"
                   : "invalid origin (expected scheme://host[:port], \"null\" or \"*\")";
        return -1;
    }
    /* A browser never sends the default port: drop it so the entry matches. */
    out->text_len = default_port(&p) ? (size_t)(p.port - 1 - s) : len;
    if ((out->text = lower_dup(s, out->text_len)) == NULL)
        return -1;
    return 0;
}

bool tg_cors_origin_match(const tg_cors_origin_t *e, const char *o, size_t len)
{
    if (len > TG_CORS_ORIGIN_MAX)
        return false;
    if (e->suffix == NULL) {
        /* "null" is exactly that; an origin, as valid as the entry once equal. */
        if (e->text_len == 4 && memcmp(e->text, "null", 4) == 0)
            return len == 4 && memcmp(o, "null", 4) == 0;
        return len == e->text_len && strncasecmp(o, e->text, len) == 0;
    }
    parts_t p;
    if (!split(o, len, &p) || p.host[0] == '[')
        return false;
    size_t port_len = p.port ? p.port_len + 1 : 0;
    const char *port = p.port ? p.port - 1 : "";
    /* host = 1*(label ".") suffix: split() checked the labels, so a host
     * longer than the suffix, ending with it, has a label before its dot. */
    return p.scheme_len + 3 == e->text_len && strncasecmp(o, e->text, e->text_len) == 0 &&
           p.host_len > e->suffix_len &&
           strncasecmp(p.host + p.host_len - e->suffix_len, e->suffix, e->suffix_len) == 0 &&
           port_len == e->port_len && memcmp(port, e->port, port_len) == 0;
}
