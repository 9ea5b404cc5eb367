/*
 * tollgate public API: the request as plugins see it.
 *
 * Every pointer returned here stays valid until the request ends unless said
 * otherwise; strings are NOT NUL-terminated unless said otherwise (use the
 * length). Everything is called on the request's worker thread.
 */
#ifndef TOLLGATE_REQUEST_H
#define TOLLGATE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tollgate/arena.h"

typedef struct tg_request_s tg_request_t;

/* What the functions below that change a request or a response return when
 * they refuse: they then change nothing. */
#define TG_EINVAL (-1)     /* malformed: see each function */
#define TG_EFORBIDDEN (-2) /* a header field the gateway owns (tg_request_set_header) */
#define TG_ESTATE (-3)     /* not in this phase (tg_response_set_header) */

/* ---- what the client asked ---- */
const char *tg_request_method(const tg_request_t *r, size_t *len);
/* Canonical path (percent-decoded unreserved characters, no dot segments),
 * NUL-terminated; after strip_prefix once routing is done, and as a plugin
 * set it (tg_request_set_path): the path that goes upstream. */
const char *tg_request_path(const tg_request_t *r, size_t *len);
/* The canonical path as the client sent it: before strip_prefix and any
 * tg_request_set_path(). NUL-terminated. */
const char *tg_request_client_path(const tg_request_t *r, size_t *len);
/* Query string without "?", NULL when there is none: the one that goes
 * upstream (as a plugin set it with tg_request_set_query). */
const char *tg_request_query(const tg_request_t *r, size_t *len);
/* The query as the client sent it, whatever a plugin set since. */
const char *tg_request_client_query(const tg_request_t *r, size_t *len);
/* Value of query parameter name (raw, still percent-encoded); NULL if absent. */
const char *tg_request_query_param(const tg_request_t *r, const char *name, size_t *len);
/* The client's IP address as text (NUL-terminated) and as a sockaddr (port 0
 * when it came from X-Forwarded-For). The client is the connection's peer,
 * or, when the peer is in trusted_proxies, the rightmost X-Forwarded-For
 * address that is not itself a trusted proxy (nginx's real_ip_recursive on;
 * see docs/design.md). Decided once when the head is parsed; the same for
 * every plugin and the access log. */
const char *tg_request_client_ip(const tg_request_t *r);
const struct sockaddr *tg_request_client_addr(const tg_request_t *r);
const char *tg_request_host(const tg_request_t *r, size_t *len);
/* The client's protocol as the access log writes it: "HTTP/1.1", "HTTP/1.0"
 * or "HTTP/2.0" (NUL-terminated, static). Since API 2.5. */
const char *tg_request_protocol(const tg_request_t *r);
const char *tg_request_id(const tg_request_t *r, size_t *len);
/* Route name (NUL-terminated); NULL before routing or when no route matched. */
const char *tg_request_route(const tg_request_t *r);
/* Upstream name and chosen target ("127.0.0.1:9001"; for a name the
 * upstream re-resolves, the address the last try went to), NULL until known. */
const char *tg_request_upstream(const tg_request_t *r);
const char *tg_request_upstream_addr(const tg_request_t *r);
/* Tries after the first toward the upstream so far (retries; API 2.6): the
 * target above is the last try's. */
unsigned tg_request_retries(const tg_request_t *r);
tg_arena_t *tg_request_arena(tg_request_t *r);
struct event_base *tg_request_event_base(tg_request_t *r);
unsigned tg_request_worker_id(const tg_request_t *r);

/* ---- the TLS connection the request came on ----
 * Decided once per connection, when its TLS handshake completed: the same for
 * every request of the connection, at no cost per request (the protocol
 * version is tg_request_protocol above). Strings are NUL-terminated and
 * static or live as long as the connection (so as the request). Since API
 * 2.7. */
/* The negotiated TLS version ("TLSv1.3", "TLSv1.2"); NULL on a plain
 * connection. */
const char *tg_request_tls_version(const tg_request_t *r);
/* The cipher suite by its OpenSSL name ("TLS_AES_128_GCM_SHA256",
 * "ECDHE-ECDSA-AES128-GCM-SHA256", as nginx's $ssl_cipher); NULL when plain. */
const char *tg_request_tls_cipher(const tg_request_t *r);
/* The server name the client asked for in its TLS handshake (SNI, RFC 6066
 * section 3), as sent; NULL when plain or when the client sent none. */
const char *tg_request_tls_sni(const tg_request_t *r);
/* The ALPN protocol the handshake selected (RFC 7301): "h2" or "http/1.1";
 * NULL when plain or when the client offered none that the gateway speaks. */
const char *tg_request_tls_alpn(const tg_request_t *r);

/* ---- request headers (case-insensitive names) ----
 * What the client sent minus its hop-by-hop fields (Connection and the names
 * it lists, Upgrade, TE, ...), minus forwarding fields (X-Forwarded-*,
 * Forwarded, X-Real-IP) from an untrusted peer and minus names with '_' as
 * limits.headers_with_underscores says; then what plugins set. Headers set
 * here reach the upstream whatever the client's Connection header says. */
size_t tg_request_header_count(const tg_request_t *r);
/* i-th header; returns false past the end. */
bool tg_request_header_at(const tg_request_t *r, size_t i, const char **name, size_t *name_len,
                          const char **value, size_t *value_len);
/* First value of name, NULL if absent. */
const char *tg_request_header(const tg_request_t *r, const char *name, size_t *len);
/* Replaces every header called name by one with value (copied). Names match
 * with '_' and '-' alike here, so that a client's X_User_Id cannot shadow the
 * X-User-Id a plugin sets (CGI/WSGI/Rails upstreams read both as one).
 * Returns 0, or (changing nothing):
 *   TG_EINVAL      name is not a token (RFC 9110 section 5.6.2), or value
 *                  holds CR, LF, NUL or another control except HTAB (RFC
 *                  9110 section 5.5);
 *   TG_EFORBIDDEN  a field of this hop or one the gateway writes itself:
 *                  Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
 *                  Transfer-Encoding, Upgrade, Content-Length, Host, Expect,
 *                  X-Request-Id, X-Forwarded-For (also spelled with '_'). */
int tg_request_set_header(tg_request_t *r, const char *name, const char *value, size_t value_len);
/* Adds a header called name with value (copied) after the others, keeping
 * those of the same name (a list-valued field gets one more line). Returns
 * as tg_request_set_header(). */
int tg_request_add_header(tg_request_t *r, const char *name, const char *value, size_t value_len);
/* The rule of tg_request_set_header() without a request, for names and values
 * a plugin reads from its config (check them in create()). value NULL checks
 * the name alone. */
int tg_request_header_check(const char *name, const char *value, size_t value_len);
/* Removes every header called name ('_' and '-' alike, as above); returns how
 * many were removed. */
size_t tg_request_remove_header(tg_request_t *r, const char *name);
/* Replaces the path sent upstream (copied). Returns 0, or TG_EINVAL when it
 * is empty, does not start with "/", or holds "?" or a space. */
int tg_request_set_path(tg_request_t *r, const char *path, size_t len);
/* Replaces the query sent upstream (copied, without the "?"); NULL sends no
 * query at all, "" an empty one after "?". Only the bytes a client may send
 * in a query are taken (visible ASCII 0x21-0x7E except "#": no CR, LF, NUL,
 * space or fragment); anything else returns TG_EINVAL and changes nothing. 0
 * on success. The value is sent as given: percent-encode what needs it. */
int tg_request_set_query(tg_request_t *r, const char *query, size_t len);

/* ---- answering ---- */
/* Responds with status, content type (NULL: none) and body (copied). Use
 * from request_head (then return TG_FILTER_RESPONDED), before
 * tg_request_resume(), or from request_body, response_head or response_body to
 * replace the response (then return TG_FILTER_RESPONDED; see plugin.h).
 * Answering again replaces the earlier answer. Returns 0, or TG_EINVAL (and
 * records nothing) for a status outside 200..599 (RFC 9110 section 15) or a
 * content type that is not a valid field value (as tg_request_set_header). */
int tg_request_respond(tg_request_t *r, int status, const char *content_type, const char *body,
                       size_t body_len);
/* Responds with the gateway's JSON error body {"error": msg, "request_id": ...}.
 * Returns as tg_request_respond(). */
int tg_request_respond_error(tg_request_t *r, int status, const char *msg);
/* Adds a header to the response the client will get, whether generated or
 * from the upstream (e.g. RateLimit-*, WWW-Authenticate), also to an answer
 * that replaces the response. Copied. Returns 0, or (adding nothing)
 * TG_EINVAL as tg_request_set_header(), TG_EFORBIDDEN for a field of this hop
 * or one the gateway writes itself: Connection, Keep-Alive, Proxy-Connection,
 * TE, Trailer, Transfer-Encoding, Upgrade, Content-Length, X-Request-Id
 * (also spelled with '_'). */
int tg_request_add_response_header(tg_request_t *r, const char *name, const char *value,
                                   size_t value_len);
/* The rule of tg_request_add_response_header() and tg_response_set_header()
 * without a request, for a config's names and values (value NULL: the name
 * alone). */
int tg_response_header_check(const char *name, const char *value, size_t value_len);
/* API 2.13 (rate-limit speed): a response header name checked once, for a
 * header a plugin adds to every response. Filled by tg_response_name_init(). */
typedef struct {
    const char *name; /* as given (not copied) */
    size_t len;       /* strlen(name) */
} tg_response_name_t;
/* Checks name by the rule of tg_request_add_response_header() and fills n.
 * name must stay valid and unchanged while a request may use n (e.g. a
 * plugin instance's, from create() to destroy()). Returns 0, TG_EINVAL or
 * TG_EFORBIDDEN (n unchanged). */
int tg_response_name_init(tg_response_name_t *n, const char *name);
/* tg_request_add_response_header() for a name from tg_response_name_init():
 * the name is neither checked nor copied again; the value is (TG_EINVAL as
 * tg_request_set_header(), adding nothing). */
int tg_request_add_response_header_named(tg_request_t *r, const tg_response_name_t *n,
                                         const char *value, size_t value_len);
/* Ends a TG_FILTER_PAUSE: status is what request_head would have returned
 * (CONTINUE, RESPONDED or ERROR; any other value counts as ERROR). Must be
 * called on the request's worker, once per pause; inside the hook too (see
 * TG_FILTER_PAUSE in plugin.h). A call while the request is not paused (nor
 * inside its request_head hook) is ignored and logged as a warning. */
void tg_request_resume(tg_request_t *r, int status);
/* From request_head only (API 2.9): reads the request's whole body before
 * the request goes on, so that a plugin can decide on it (a digest, a
 * signature). Returns 0, and the hook then returns TG_FILTER_PAUSE: once the
 * body is whole, done(data, body, len) is called on the worker with its bytes
 * (framing removed; valid during the call only) and must lead to exactly one
 * tg_request_resume(). A request without a body calls done at once (inside
 * this call, with len 0). The core answers itself, without calling done,
 * a body over limit (0: the route's max_body_size, else limits'; the smaller
 * one counts) with 413 and a broken one with 400; an Expect: 100-continue is
 * answered first. The body then goes upstream from memory with a
 * Content-Length (also when the client sent it chunked), and is resent on a
 * retry. Returns TG_ESTATE (reading nothing) outside request_head, when called
 * twice, and when a plugin of the chain has a request_body hook (it must see
 * the body as it streams). */
int tg_request_read_body(tg_request_t *r, size_t limit,
                         void (*done)(void *data, const char *body, size_t len), void *data);
/* fn(data) runs when the request ends, however it ends (before the arena is
 * released): cancel timers and pending callbacks here. */
void tg_request_on_cleanup(tg_request_t *r, void (*fn)(void *data), void *data);

/* ---- response (response_head / response_body / log phases) ---- */
int tg_response_status(const tg_request_t *r);
/* From response_head only. Returns 0, TG_ESTATE from another phase, or
 * TG_EINVAL for a status outside 200..599 and for a change to or from 204 or
 * 304 (whether the response has a body was decided from its first status). */
int tg_response_set_status(tg_request_t *r, int status);
/* From response_head only; NULL when absent or from another phase. */
const char *tg_response_header(const tg_request_t *r, const char *name, size_t *len);
/* i-th response header, from response_head only (API 2.8): false past the
 * end and from another phase. The pointers stay valid until the headers are
 * next changed. */
bool tg_response_header_at(const tg_request_t *r, size_t i, const char **name, size_t *name_len,
                           const char **value, size_t *value_len);
/* Replaces every response header called name (case-insensitive). From
 * response_head only. Returns 0, TG_ESTATE from another phase, or TG_EINVAL
 * and TG_EFORBIDDEN as tg_request_add_response_header(). */
int tg_response_set_header(tg_request_t *r, const char *name, const char *value, size_t value_len);
/* Adds a response header after the others, keeping those of the same name.
 * From response_head only. Returns as tg_response_set_header(). */
int tg_response_add_header(tg_request_t *r, const char *name, const char *value, size_t value_len);
/* Removes every response header called name; returns how many (0 from a
 * phase other than response_head). */
size_t tg_response_remove_header(tg_request_t *r, const char *name);
/* Asks for the whole response body in one response_body call, up to limit
 * bytes; a larger body passes through untouched and the hook sees it in
 * pieces with tg_response_body_buffered() false. Content-Length is then set
 * from what the hook leaves. */
void tg_response_buffer_body(tg_request_t *r, size_t limit);
bool tg_response_body_buffered(const tg_request_t *r);
/* Asks for the response body in pieces (a streaming transform): the body then
 * reaches the client chunked (HTTP/1.1) or close-delimited (HTTP/1.0), since
 * its length may change. Without this call or tg_response_buffer_body(), a
 * plugin's response_body hook is not called for this response and the body
 * passes with its original framing. */
void tg_response_filter_body(tg_request_t *r);

/* ---- the authenticated client (owned by the core) ----
 * Who the client is, as an authentication plugin (jwt) established it, in one
 * form that every reader shares: rate-limit keys (`jwt.<claim>`),
 * aggregation templates (`{jwt.<claim>}`), response-shape's `client:
 * jwt.<claim>`, the access log's `subject`. Readers never see the
 * publisher's own representation (jwt's JSON object), so either side can
 * change it.
 *
 * A claim is a name (NUL-terminated, non-empty, compared exactly, as JWT
 * names are) and a text value: a JSON string claim is its decoded value
 * (no quotes, escapes resolved); a number, true or false is its JSON text
 * ("42", "1.5", "true"); an object or array is its compact JSON text
 * ("[\"a\",\"b\"]", "{\"k\":1}"); a null claim is not published. jwt
 * writes integers exactly and other numbers with up to 17 significant digits,
 * as jansson does (0.1 reads "0.10000000000000001"). A value may hold any
 * byte, NUL included (a JSON "\u0000"): read it with its length; it is
 * copied, and followed by a NUL for convenience. Whoever puts a value on the
 * wire escapes or checks it (templates percent-encode, the access log
 * JSON-escapes; a header value must not carry CR or LF). A reader sees what
 * plugins earlier in the chain published; values live until the request
 * ends. */
/* At most this many claims per request: past it, tg_request_set_claim() of a
 * new name fails (jwt publishes a token's first 64 top-level claims). */
#define TG_REQUEST_CLAIMS_MAX 64
/* Publishes claim name with value (copied); setting a name again replaces its
 * value. Returns 0, or -1 (nothing changed) when name is NULL or empty, or
 * TG_REQUEST_CLAIMS_MAX other names are published. */
int tg_request_set_claim(tg_request_t *r, const char *name, const char *value, size_t len);
/* The value of claim name; NULL (and *len 0) when it was not published. */
const char *tg_request_claim(const tg_request_t *r, const char *name, size_t *len);
/* Publishes the authenticated subject: the principal the request acts for
 * (jwt: the "sub" claim, when it is a string). Copied; replaces an earlier
 * one. Returns 0, or -1 (nothing changed) when len is 0. */
int tg_request_set_subject(tg_request_t *r, const char *subject, size_t len);
/* The subject, NULL (and *len 0) when no plugin published one. */
const char *tg_request_subject(const tg_request_t *r, size_t *len);
/* Publishes the consumer: the name of the configured client whose
 * credential matched (key-auth: a `consumers:` entry of its keys file). A
 * consumer is the gateway's own name for a client, not a claim made by it:
 * readers key on it (rate-limit `key: consumer`), log it (request-log's
 * `consumer`) and may forward it. Copied; replaces an earlier one. Returns
 * 0, or -1 (nothing changed) when len is 0. */
int tg_request_set_consumer(tg_request_t *r, const char *name, size_t len);
/* The consumer, NULL (and *len 0) when no plugin published one. */
const char *tg_request_consumer(const tg_request_t *r, size_t *len);

/* ---- facts shared between plugins (a small typed bag) ---- */
/* Keys are conventional: "auth.error", "rate_limit.decision",
 * "shape.profile"; claims have their own API above. Values are copied
 * (strings) or borrowed (pointers: must live as long as the request; use the
 * arena or tg_request_on_cleanup). Setting a key again replaces it. */
void tg_request_var_set_str(tg_request_t *r, const char *key, const char *value, size_t len);
void tg_request_var_set_int(tg_request_t *r, const char *key, int64_t value);
void tg_request_var_set_ptr(tg_request_t *r, const char *key, void *value);
const char *tg_request_var_str(const tg_request_t *r, const char *key, size_t *len);
bool tg_request_var_int(const tg_request_t *r, const char *key, int64_t *value);
void *tg_request_var_ptr(const tg_request_t *r, const char *key);

/* ---- credentials that must never be printed ---- */
/* Plugins that read credentials from the request mark where (tg_sensitive_add
 * in plugin.h, at config load); whatever prints requests (request-log) asks
 * tg_request_sensitive() and masks those values. The marks hold for every
 * request of the config, whichever route or plugin outcome. */
typedef enum {
    TG_SENSITIVE_QUERY,  /* query parameter; names compare after percent-decoding */
    TG_SENSITIVE_COOKIE, /* cookie; names compare exactly (RFC 6265 5.4) */
    TG_SENSITIVE_HEADER, /* request header; names compare case-insensitively */
} tg_sensitive_kind_t;
/* Longest name that can be marked. */
#define TG_SENSITIVE_NAME_MAX 128
typedef struct tg_sensitive_s tg_sensitive_t;
/* Whether name (len bytes) was marked in the request's config. For
 * TG_SENSITIVE_QUERY, name is the parameter name as it appears in the query
 * (still percent-encoded); it is decoded before the comparison, so
 * "%61ccess_token" is "access_token". */
bool tg_request_sensitive(const tg_request_t *r, tg_sensitive_kind_t kind, const char *name,
                          size_t len);

/* ---- timings and sizes (log phase) ---- */
typedef struct {
    uint64_t start_us;    /* wall clock (µs since the epoch) when the head was complete */
    uint64_t duration_us; /* head received -> response finished */
    int64_t upstream_us;  /* connect start -> response head received; -1 without upstream */
    uint64_t bytes_in;    /* request bytes received: head + body */
    uint64_t bytes_out;   /* response bytes sent: head + body */
    bool completed;       /* the response was sent whole */
} tg_request_stats_t;
void tg_request_stats(const tg_request_t *r, tg_request_stats_t *out);

#endif
