#include "admin_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- Host --------------------------------------------------------------- */

/* RFC 3986 section 3.2.3: port = *DIGIT; here 1 to 65535, nothing after. */
static bool valid_port(const char *p)
{
    unsigned long v = 0;
    size_t n = 0;
    for (; p[n] >= '0' && p[n] <= '9' && n < 5; n++)
        v = v * 10 + (unsigned long)(p[n] - '0');
    return n > 0 && p[n] == '\0' && v >= 1 && v <= 65535;
}

/* "name[:port]" or "[v6][:port]" (RFC 9110 section 7.2): the name without
 * brackets into name. false on bad syntax or an empty or overlong name. */
static bool split_host(const char *host, char *name, size_t namelen, bool *bracketed)
{
    const char *start = host, *end, *port = NULL;
    *bracketed = host[0] == '[';
    if (*bracketed) {
        start = host + 1;
        end = strchr(start, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return false;
        port = end[1] == ':' ? end + 2 : NULL;
    } else {
        end = strchr(host, ':');
        port = end != NULL ? end + 1 : NULL;
        end = end != NULL ? end : host + strlen(host);
    }
    size_t len = (size_t)(end - start);
    if (len == 0 || len >= namelen || (port != NULL && !valid_port(port)))
        return false;
    memcpy(name, start, len);
    name[len] = '\0';
    return true;
}

/* An IPv4 or IPv6 address as 16 bytes, IPv4 mapped to ::ffff:a.b.c.d. */
static bool addr16_of_text(const char *name, bool bracketed, uint8_t out[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (bracketed)
        return inet_pton(AF_INET6, name, out) == 1;
    memcpy(out, mapped, sizeof(mapped));
    return inet_pton(AF_INET, name, out + 12) == 1;
}

static bool addr16_of_sockaddr(const struct sockaddr *sa, uint8_t out[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (sa != NULL && sa->sa_family == AF_INET) {
        memcpy(out, mapped, sizeof(mapped));
        memcpy(out + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return true;
    }
    if (sa != NULL && sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

static bool is_loopback(const uint8_t a[16])
{
    static const uint8_t v6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, v6, 16) == 0 || (memcmp(a, mapped, 12) == 0 && a[12] == 127);
}

bool tg_admin_host_ok(const char *host, const char *conf_host, const struct sockaddr *local)
{
    char name[256];
    bool bracketed;
    uint8_t a[16], l[16];
    if (host == NULL || !split_host(host, name, sizeof(name), &bracketed))
        return false;
    if (addr16_of_text(name, bracketed, a))
        return is_loopback(a) || (addr16_of_sockaddr(local, l) && memcmp(a, l, 16) == 0);
    if (bracketed) /* not an IPv6 literal: "[evil.example]", zone ids */
        return false;
    if (strcasecmp(name, "localhost") == 0)
        return true;
    /* The operator's own name for the endpoint (admin.address). */
    return conf_host != NULL && conf_host[0] != '\0' && strcmp(conf_host, "*") != 0 &&
           strcasecmp(name, conf_host) == 0;
}

void tg_admin_conf_host(const char *address, char *out, size_t outlen)
{
    bool bracketed;
    out[0] = '\0';
    /* admin.address was validated at load: only the wildcard forms fail here. */
    if (!split_host(address, out, outlen, &bracketed))
        out[0] = '\0';
}

/* ---- token -------------------------------------------------------------- */

bool tg_admin_token_valid(const char *token)
{
    /* RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" /
     * "~" / "+" / "/" ) *"=" */
    size_t n = strspn(token, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "0123456789-._~+/");
    if (n == 0)
        return false;
    n += strspn(token + n, "=");
    return token[n] == '\0' && n >= TG_ADMIN_TOKEN_MIN;
}

void tg_admin_token_digest(const char *token, size_t len, unsigned char out[TG_ADMIN_DIGEST_LEN])
{
    unsigned int outlen = 0;
    if (EVP_Digest(token, len, out, &outlen, EVP_sha256(), NULL) != 1 ||
        outlen != TG_ADMIN_DIGEST_LEN)
        /* Out of memory in OpenSSL: no token's digest is all zeros. */
        memset(out, 0, TG_ADMIN_DIGEST_LEN);
}

bool tg_admin_bearer_ok(const char *authorization, const unsigned char want[TG_ADMIN_DIGEST_LEN])
{
    unsigned char got[TG_ADMIN_DIGEST_LEN];
    unsigned int outlen = 0;
    const char *p = authorization;
    /* RFC 9110 section 11.4: credentials = auth-scheme 1*SP token68; the
     * scheme is case-insensitive (section 11.1). */
    if (p == NULL || strncasecmp(p, "Bearer", 6) != 0 || p[6] != ' ')
        return false;
    p += 6;
    p += strspn(p, " ");
    size_t len = strlen(p);
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    if (len == 0 || EVP_Digest(p, len, got, &outlen, EVP_sha256(), NULL) != 1 ||
        outlen != TG_ADMIN_DIGEST_LEN)
        return false;
    return CRYPTO_memcmp(got, want, TG_ADMIN_DIGEST_LEN) == 0;
}

/* ---- POST /reload body -------------------------------------------------- */

bool tg_admin_reload_type_ok(const char *content_type, size_t body_len)
{
    if (content_type == NULL)
        return body_len == 0;
    /* RFC 9110 section 8.3.1: media-type = type "/" subtype parameters,
     * case-insensitive; OWS around it. */
    const char *p = content_type + strspn(content_type, " \t");
    size_t n = strcspn(p, ";");
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    return n == 16 && strncasecmp(p, "application/json", 16) == 0;
}
