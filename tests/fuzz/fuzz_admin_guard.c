/*
 * libFuzzer target for src/admin_guard.c. The input is one header value;
 * tg_admin_host_ok() is compared with a reference written straight from the
 * rules in admin_guard.h (split at the port, then a closed list of names and
 * addresses), and the Bearer and Content-Type checks must agree with simple
 * restatements of their own rules.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin_guard.h"

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

static const char *const TOKEN = "fuzz-admin-token-0123";

/* "a.b.c.d", each part 0..255 in decimal without a leading zero. */
static bool dotted_quad(const char *s, unsigned char out[4])
{
    for (int i = 0; i < 4; i++) {
        if (!isdigit((unsigned char)*s) || (s[0] == '0' && isdigit((unsigned char)s[1])))
            return false;
        unsigned v = 0;
        int n = 0;
        while (isdigit((unsigned char)*s) && n < 4) {
            v = v * 10 + (unsigned)(*s++ - '0');
            n++;
        }
        if (v > 255 || n > 3)
            return false;
        out[i] = (unsigned char)v;
        if (i < 3 && *s++ != '.')
            return false;
    }
    return *s == '\0';
}

static bool good_port(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 5 || strspn(p, "0123456789") != n)
        return false;
    long v = strtol(p, NULL, 10);
    return v >= 1 && v <= 65535;
}

/* The rules of tg_admin_host_ok, conf_host "admin.internal", local 10.0.0.5. */
static bool reference_host(const char *h)
{
    char name[300];
    const char *port = NULL;
    size_t len = strlen(h);
    if (len >= sizeof(name))
        return false;
    if (h[0] == '[') {
        const char *close = strchr(h, ']');
        if (close == NULL)
            return false;
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] != '\0')
            return false;
        memcpy(name, h + 1, (size_t)(close - h - 1));
        name[close - h - 1] = '\0';
        struct in6_addr a;
        if ((port && !good_port(port)) || inet_pton(AF_INET6, name, &a) != 1)
            return false;
        static const unsigned char one[16] = {[15] = 1};
        static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
        const unsigned char *b = a.s6_addr;
        return memcmp(b, one, 16) == 0 ||
               (memcmp(b, mapped, 12) == 0 &&
                (b[12] == 127 || (b[12] == 10 && b[13] == 0 && b[14] == 0 && b[15] == 5)));
    }
    const char *colon = strchr(h, ':');
    size_t nl = colon ? (size_t)(colon - h) : len;
    memcpy(name, h, nl);
    name[nl] = '\0';
    if (colon && !good_port(colon + 1))
        return false;
    unsigned char q[4];
    if (dotted_quad(name, q))
        return q[0] == 127 || (q[0] == 10 && q[1] == 0 && q[2] == 0 && q[3] == 5);
    return strcasecmp(name, "localhost") == 0 || strcasecmp(name, "admin.internal") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    if (strlen(s) != size) { /* header values hold no NUL */
        free(s);
        return 0;
    }
    struct sockaddr_in local = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.0.0.5", &local.sin_addr);
    bool got = tg_admin_host_ok(s, "admin.internal", (const struct sockaddr *)&local);
    CHECK(got == reference_host(s));

    static unsigned char want[TG_ADMIN_DIGEST_LEN];
    static bool init;
    if (!init) {
        tg_admin_token_digest(TOKEN, strlen(TOKEN), want);
        init = true;
    }
    if (tg_admin_bearer_ok(s, want)) {
        /* "Bearer" (any case), spaces, the token, then only spaces or tabs. */
        CHECK(strncasecmp(s, "Bearer ", 7) == 0);
        const char *p = s + 7 + strspn(s + 7, " ");
        CHECK(strncmp(p, TOKEN, strlen(TOKEN)) == 0);
        p += strlen(TOKEN);
        CHECK(strspn(p, " \t") == strlen(p));
    }
    if (tg_admin_reload_type_ok(s, 1)) {
        const char *p = s + strspn(s, " \t");
        CHECK(strncasecmp(p, "application/json", 16) == 0);
        p += 16;
        CHECK(p[strspn(p, " \t")] == '\0' || p[strspn(p, " \t")] == ';');
    }
    tg_admin_token_valid(s);
    free(s);
    return 0;
}
