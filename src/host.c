#include "host.h"

#include <arpa/inet.h>
#include <string.h>

#include "tollgate/text.h"

/* RFC 1035 section 2.3.4 (a name as text, without the trailing dot). */
#define MAX_NAME 253

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 3986 section 2.3. */
static bool is_unreserved(char c)
{
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

/* port = 1*5DIGIT, 1..65535 (port 0 cannot be connected to). */
static bool port_valid(const char *p, size_t n)
{
    unsigned v = 0;
    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

/* inet_pton on a NUL-terminated copy; the characters are checked first so
 * that an embedded NUL cannot end the copy early. */
static bool addr_valid(int af, const char *s, size_t n, const char *allowed)
{
    char buf[INET6_ADDRSTRLEN];
    unsigned char out[sizeof(struct in6_addr)];
    if (n == 0 || n >= sizeof(buf))
        return false;
    for (size_t i = 0; i < n; i++)
        if (tg_hex_value((unsigned char)s[i]) < 0 &&
            (s[i] == '\0' || strchr(allowed, s[i]) == NULL))
            return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(af, buf, out) == 1;
}

/* WHATWG URL "ends in a number": the last label (after one trailing dot) is
 * digits or 0x + hex. Browsers and many HTTP libraries read such a name as an
 * IPv4 address (127.1, 0x7f.1, 2130706433 are all 127.0.0.1), so it must be
 * a plain dotted quad, or two parsers would see two different hosts. */
static bool ends_in_number(const char *s, size_t n)
{
    size_t i;
    if (n > 0 && s[n - 1] == '.')
        n--;
    for (i = n; i > 0 && s[i - 1] != '.'; i--)
        ;
    const char *l = s + i;
    size_t ln = n - i, j = 0;
    if (ln == 0)
        return false;
    if (ln >= 2 && l[0] == '0' && (l[1] | 0x20) == 'x') {
        for (j = 2; j < ln && tg_hex_value((unsigned char)l[j]) >= 0; j++)
            ;
        return j == ln;
    }
    while (j < ln && is_digit(l[j]))
        j++;
    return j == ln;
}

/* reg-name of unreserved characters, labels not empty (one trailing dot is
 * the root label), or an IPv4 address. */
static bool name_valid(const char *s, size_t n)
{
    size_t body = n > 0 && s[n - 1] == '.' ? n - 1 : n;
    if (body == 0 || body > MAX_NAME)
        return false;
    for (size_t i = 0; i < body; i++) {
        if (!is_unreserved(s[i]))
            return false;
        if (s[i] == '.' && (i == 0 || s[i - 1] == '.'))
            return false; /* empty label */
    }
    if (s[body - 1] == '.')
        return false; /* "a.." */
    return !ends_in_number(s, n) || addr_valid(AF_INET, s, n, ".");
}

bool tg_host_valid(const char *s, size_t len)
{
    const char *end = s + len, *host_end;
    if (len == 0)
        return false;
    if (s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (rb == NULL || !addr_valid(AF_INET6, s + 1, (size_t)(rb - s - 1), ":."))
            return false;
        host_end = rb + 1;
    } else {
        host_end = memchr(s, ':', len);
        if (host_end == NULL)
            host_end = end;
        if (!name_valid(s, (size_t)(host_end - s)))
            return false;
    }
    if (host_end == end)
        return true;
    return *host_end == ':' && port_valid(host_end + 1, (size_t)(end - host_end - 1));
}
