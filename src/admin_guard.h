/*
 * Who may use the admin endpoint: the checks that keep a browser page (form
 * POST, DNS rebinding) or a server tricked into fetching a URL (SSRF) from
 * reading /config or calling POST /reload. Pure: header values in, verdict
 * out; src/admin.c applies them (see docs/design.md, "Admin endpoint").
 *
 * All strings are NUL-terminated header values as received (NULL = absent).
 */
#ifndef TG_ADMIN_GUARD_H
#define TG_ADMIN_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define TG_ADMIN_TOKEN_MIN 16
#define TG_ADMIN_DIGEST_LEN 32 /* SHA-256 */

/* Whether host (a Host header value, "name[:port]" or "[v6][:port]") names
 * this admin endpoint: "localhost", a loopback literal (127.0.0.0/8, [::1],
 * [::ffff:127.x.x.x]), the IP literal of local (the address the connection
 * arrived on), or conf_host (the host part of admin.address as configured,
 * compared case-insensitively; NULL, "" or "*" add nothing). The port, when
 * present, must be a number from 1 to 65535 but may be any: port forwards and
 * NAT change it, and a rebinding page cannot choose the name, only the port.
 * A name a page's DNS controls ("evil.example:9901") is always refused. */
bool tg_admin_host_ok(const char *host, const char *conf_host, const struct sockaddr *local);

/* The host part of admin.address ("127.0.0.1:9901" -> "127.0.0.1",
 * "[::1]:9901" -> "::1", ":9901" -> ""), into out (outlen bytes). */
void tg_admin_conf_host(const char *address, char *out, size_t outlen);

/* Whether token is acceptable as admin.token: at least TG_ADMIN_TOKEN_MIN
 * characters of RFC 6750 b64token syntax (what a Bearer header can carry). */
bool tg_admin_token_valid(const char *token);

/* SHA-256 of token: what the config keeps instead of the token. */
void tg_admin_token_digest(const char *token, size_t len, unsigned char out[TG_ADMIN_DIGEST_LEN]);

/* Whether authorization ("Bearer <token>", scheme case-insensitive) carries
 * the token whose digest is want. The comparison is of digests, with
 * CRYPTO_memcmp: its time does not depend on where the tokens differ. */
bool tg_admin_bearer_ok(const char *authorization, const unsigned char want[TG_ADMIN_DIGEST_LEN]);

/* Whether a POST /reload with this Content-Type and body length is accepted:
 * no Content-Type and no body, or application/json (parameters allowed).
 * Everything else, the CORS "simple" types a page can send cross-site without
 * a preflight (application/x-www-form-urlencoded, multipart/form-data,
 * text/plain) first, is refused. */
bool tg_admin_reload_type_ok(const char *content_type, size_t body_len);

#endif
