/*
 * TLS contexts built at config load (see tls.h).
 *
 * Listener: one SSL_CTX per certificate, all set up identically; the first is
 * the default and the one every SSL starts on. Its servername callback
 * switches to the context whose certificate names the requested host (RFC
 * 6066 section 3), which is how nginx does SNI. The SNI table lives in the
 * default context's ex_data, so it dies with the last connection using it,
 * not with the config (a reload may free the config mid-handshake).
 *
 * Session tickets (RFC 5077) are encrypted with process-wide keys: made at
 * startup, rotated every 12 h, the previous key kept for decryption. They are
 * shared by every listener and every config, so resumption survives a reload;
 * the session id context (a hash of the listener and its client CA) keeps a
 * session of one listener from being resumed on another.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "conf_node.h"
#include "metrics.h"
#include "tollgate/clock.h"

#define TICKET_ROTATE_S (12 * 3600)
/* Also the ticket lifetime hint; with 12 h key rotation a ticket is never
 * undecryptable before it expires. */
#define SESSION_TIMEOUT_S 3600
#define SESSION_CACHE_SIZE 20480

/* `tls.alpn:` in RFC 7301 wire format, in the order written: the server's
 * preference (SSL_select_next_proto walks the server's list first). */
typedef struct {
    const unsigned char *wire;
    unsigned len;
} alpn_list_t;
static const alpn_list_t alpn_lists[] = {
    {(const unsigned char *)"\x02h2\x08http/1.1", 12}, /* the default */
    {(const unsigned char *)"\x08http/1.1\x02h2", 12},
    {(const unsigned char *)"\x08http/1.1", 9},
    {(const unsigned char *)"\x02h2", 3},
};

struct tg_tls_server_s {
    SSL_CTX *ctx; /* the default certificate's; holds the SNI table */
};

struct tg_tls_client_s {
    SSL_CTX *ctx;
    bool verify;
    size_t ntargets;
    char **names; /* per target: SNI and the name verified */
    bool *sni;    /* per target: names[i] is a DNS name (IP literals get no SNI) */
};

typedef struct {
    char *name;    /* lower-case; a wildcard keeps its dot: ".example.com" */
    bool wildcard; /* "*.example.com": exactly one more label */
    SSL_CTX *ctx;  /* a reference; NULL = the default context itself */
} sni_entry_t;

typedef struct {
    sni_entry_t *v;
    size_t n;
} sni_table_t;

typedef struct {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
} ticket_key_t;

static struct {
    pthread_mutex_t lock;
    ticket_key_t cur, prev;
    bool has_cur, has_prev;
    time_t created; /* monotonic seconds */
} tickets = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int sni_index = -1; /* SSL_CTX ex_data: sni_table_t */
static atomic_int hs_fail_metric = -1;

/* ---- errors and paths ------------------------------------------------- */

/* The last OpenSSL error as text (clears the queue). */
static const char *ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = NULL;
    if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SYS)
        r = strerror(ERR_GET_REASON(e));
    else if (e != 0)
        r = ERR_reason_error_string(e);
    snprintf(buf, len, "%s", r != NULL ? r : "unknown error");
    ERR_clear_error();
    return buf;
}

/* "<what>: <OpenSSL reason>" at node n; returns -1. */
static int ssl_fail(tg_conf_err_t *err, const tg_conf_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ssl_fail(tg_conf_err_t *err, const tg_conf_node_t *n, const char *fmt, ...)
{
    char what[400], why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return tg_conf_error(err, n, "%s: %s", what, ssl_reason(why, sizeof(why)));
}

/* A path string at key of map, relative to dir. Returns 1 when present, 0
 * when absent, -1 on error; *text is the path as written. */
static int get_path(const tg_conf_node_t *map, const char *key, const char *dir, char *buf,
                    const char **text, tg_conf_err_t *err)
{
    const tg_conf_node_t *n = tg_conf_map_get(map, key);
    if (n == NULL)
        return 0;
    if (tg_conf_get_string(n, text, err) < 0)
        return -1;
    if (**text == '\0')
        return tg_conf_error(err, n, "%s must not be empty", key);
    int len = **text == '/' ? snprintf(buf, PATH_MAX, "%s", *text)
                            : snprintf(buf, PATH_MAX, "%s/%s", dir, *text);
    if (len >= PATH_MAX)
        return tg_conf_error(err, n, "path too long");
    return 1;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1; /* never prompt on a terminal: encrypted keys are an error */
}

/* Loads cert (with its chain) and key into ctx and checks that they match;
 * errors point at the entry node at. */
static int load_pair(SSL_CTX *ctx, const tg_conf_node_t *at, const char *cert, const char *cpath,
                     const char *key, const char *kpath, tg_conf_err_t *err)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, cpath) != 1)
        return ssl_fail(err, at, "cannot load certificate %s", cert);
    BIO *b = BIO_new_file(kpath, "r");
    EVP_PKEY *pk = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
    BIO_free(b);
    if (pk == NULL)
        return ssl_fail(err, at, "cannot load private key %s", key);
    bool ok = SSL_CTX_use_PrivateKey(ctx, pk) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(pk);
    ERR_clear_error();
    if (!ok)
        return tg_conf_error(err, at, "private key %s does not match certificate %s", key, cert);
    return 0;
}

/* `cert:` and `key:` of map, both or neither; returns 1 loaded, 0 absent. */
static int load_pair_at(SSL_CTX *ctx, const tg_conf_node_t *map, const char *dir,
                        tg_conf_err_t *err)
{
    char cpath[PATH_MAX], kpath[PATH_MAX];
    const char *cert = NULL, *key = NULL;
    int hc = get_path(map, "cert", dir, cpath, &cert, err);
    int hk = hc < 0 ? -1 : get_path(map, "key", dir, kpath, &key, err);
    if (hc < 0 || hk < 0)
        return -1;
    if (hc != hk)
        return tg_conf_error(err, map, "cert and key must be given together");
    if (hc == 0)
        return 0;
    return load_pair(ctx, map, cert, cpath, key, kpath, err) < 0 ? -1 : 1;
}

/* ---- session tickets ------------------------------------------------- */

/* tickets.lock held. */
static int tickets_refresh_locked(void)
{
    time_t now = (time_t)(tg_now_ms() / 1000u);
    ticket_key_t k;
    if (tickets.has_cur && now - tickets.created < TICKET_ROTATE_S)
        return 0;
    if (RAND_bytes((unsigned char *)&k, sizeof(k)) != 1)
        return -1;
    tickets.prev = tickets.cur;
    tickets.has_prev = tickets.has_cur;
    tickets.cur = k;
    tickets.has_cur = true;
    tickets.created = now;
    OPENSSL_cleanse(&k, sizeof(k));
    return 0;
}

/* The current key (name == NULL) or the key called name: 0 current,
 * 1 previous, -1 unknown. */
static int tickets_get(const unsigned char *name, ticket_key_t *out)
{
    int which = -1;
    pthread_mutex_lock(&tickets.lock);
    if (tickets_refresh_locked() == 0) {
        if (name == NULL || memcmp(name, tickets.cur.name, 16) == 0) {
            *out = tickets.cur;
            which = 0;
        } else if (tickets.has_prev && memcmp(name, tickets.prev.name, 16) == 0) {
            *out = tickets.prev;
            which = 1;
        }
    }
    pthread_mutex_unlock(&tickets.lock);
    return which;
}

static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
    static char sha256[] = "sha256";
    ticket_key_t k;
    int which = tickets_get(enc ? NULL : key_name, &k);
    if (which < 0)
        return enc ? -1 : 0; /* decrypt: unknown key -> full handshake */
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha256, 0),
        OSSL_PARAM_construct_end(),
    };
    bool ok = true;
    if (enc) {
        memcpy(key_name, k.name, 16);
        ok = RAND_bytes(iv, 16) == 1; /* AES-256-CBC IV */
    }
    ok = ok && EVP_MAC_CTX_set_params(hctx, params) == 1 &&
         EVP_CipherInit_ex(ectx, EVP_aes_256_cbc(), NULL, k.aes, iv, enc) == 1;
    OPENSSL_cleanse(&k, sizeof(k));
    if (!ok)
        return -1;
    /* 2: accepted, and a new ticket is issued. TLS 1.3 clients use a ticket
     * once (RFC 8446 C.4), so without a new one every other connection of a
     * client would be a full handshake; TLS 1.2 renews only after rotation. */
    if (enc)
        return 1;
    return which == 0 && SSL_version(ssl) != TLS1_3_VERSION ? 1 : 2;
}

/* ---- SNI -------------------------------------------------------------- */

static void sni_table_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                           void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    sni_table_t *t = ptr;
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].name);
        SSL_CTX_free(t->v[i].ctx);
    }
    free(t->v);
    free(t);
}

static const sni_entry_t *sni_find(const sni_table_t *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!t->v[i].wildcard && strcasecmp(t->v[i].name, name) == 0)
            return &t->v[i];
    /* RFC 6125 section 6.4.3: "*" stands for exactly one whole label. */
    const char *dot = strchr(name, '.');
    if (dot == NULL || dot == name)
        return NULL;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].wildcard && strcasecmp(t->v[i].name, dot) == 0)
            return &t->v[i];
    return NULL;
}

static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const sni_entry_t *e = name != NULL ? sni_find(arg, name) : NULL;
    /* An unknown name gets the default certificate rather than an alert. */
    if (e != NULL && e->ctx != NULL)
        SSL_set_SSL_CTX(ssl, e->ctx);
    return SSL_TLSEXT_ERR_OK;
}

static int sni_add(sni_table_t *t, const unsigned char *s, int len, SSL_CTX *ref)
{
    if (len <= 0 || memchr(s, '\0', (size_t)len) != NULL)
        return 0; /* an embedded NUL is an attack, not a name */
    sni_entry_t *v = realloc(t->v, (t->n + 1) * sizeof(*v));
    if (v == NULL)
        return -1;
    t->v = v;
    sni_entry_t *e = &v[t->n];
    bool wild = len > 2 && s[0] == '*' && s[1] == '.';
    e->name = strndup((const char *)s + (wild ? 1 : 0), (size_t)len - (wild ? 1 : 0));
    if (e->name == NULL)
        return -1;
    for (char *p = e->name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    e->wildcard = wild;
    e->ctx = ref;
    if (ref != NULL)
        SSL_CTX_up_ref(ref);
    t->n++;
    return 1;
}

/* The certificate's DNS names, or its CN when it has none (RFC 6125 section
 * 6.4.4). Returns how many were added, -1 on allocation failure. */
static int sni_add_cert(sni_table_t *t, SSL_CTX *ctx, SSL_CTX *ref)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int added = 0, r = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(sans) && r >= 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != GEN_DNS)
            continue;
        r = sni_add(t, ASN1_STRING_get0_data(g->d.dNSName), ASN1_STRING_length(g->d.dNSName), ref);
        added += r > 0;
    }
    GENERAL_NAMES_free(sans);
    if (r < 0 || added > 0)
        return r < 0 ? -1 : added;
    X509_NAME *subj = X509_get_subject_name(x);
    int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    unsigned char *cn = NULL;
    int len =
        idx < 0
            ? -1
            : ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx)));
    r = len > 0 ? sni_add(t, cn, len, ref) : 0;
    OPENSSL_free(cn);
    return r;
}

/* ---- listener contexts ------------------------------------------------ */

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    const alpn_list_t *l = arg;
    unsigned char *sel;
    unsigned char sellen;
    if (SSL_select_next_proto(&sel, &sellen, l->wire, l->len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* nothing we speak offered: go on without ALPN (HTTP/1.1) */
    *out = sel;
    *outlen = sellen;
    return SSL_TLSEXT_ERR_OK;
}

bool tg_tls_alpn_h2(SSL *ssl)
{
    const unsigned char *p;
    unsigned len;
    SSL_get0_alpn_selected(ssl, &p, &len);
    return len == 2 && p[0] == 'h' && p[1] == '2';
}

typedef struct {
    int min_proto, max_proto;
    const tg_conf_node_t *ciphers, *suites, *client_ca;
    const alpn_list_t *alpn;
    bool tickets, cache; /* session_tickets, session_cache */
    char ca_path[PATH_MAX];
    unsigned char sid[32]; /* SHA-256: exactly SSL_MAX_SID_CTX_LENGTH */
} server_opts_t;

static int parse_protocols(const tg_conf_node_t *n, server_opts_t *o, tg_conf_err_t *err)
{
    o->min_proto = TLS1_2_VERSION;
    o->max_proto = TLS1_3_VERSION;
    if (n == NULL)
        return 0;
    if (n->type != TG_CONF_SEQ || n->count == 0)
        return tg_conf_error(err, n, "expected a list of TLSv1.2 and/or TLSv1.3");
    o->min_proto = TLS1_3_VERSION;
    o->max_proto = TLS1_2_VERSION;
    for (size_t i = 0; i < n->count; i++) {
        const char *s;
        if (tg_conf_get_string(n->items[i], &s, err) < 0)
            return -1;
        int v = strcmp(s, "TLSv1.2") == 0   ? TLS1_2_VERSION
                : strcmp(s, "TLSv1.3") == 0 ? TLS1_3_VERSION
                                            : 0;
        if (v == 0)
            return tg_conf_error(err, n->items[i],
                                 "unsupported protocol '%s': expected TLSv1.2 or TLSv1.3", s);
        o->min_proto = v < o->min_proto ? v : o->min_proto;
        o->max_proto = v > o->max_proto ? v : o->max_proto;
    }
    return 0;
}

/* `alpn:` a list of h2 and http/1.1, in the server's order of preference;
 * default [h2, http/1.1]; [http/1.1] turns h2 off. */
static int parse_alpn(const tg_conf_node_t *n, server_opts_t *o, tg_conf_err_t *err)
{
    o->alpn = &alpn_lists[0];
    if (n == NULL)
        return 0;
    if (n->type != TG_CONF_SEQ || n->count == 0 || n->count > 2)
        return tg_conf_error(err, n, "expected a list of h2 and/or http/1.1");
    int first = -1, second = -1;
    for (size_t i = 0; i < n->count; i++) {
        const char *s;
        if (tg_conf_get_string(n->items[i], &s, err) < 0)
            return -1;
        int v = strcmp(s, "h2") == 0 ? 0 : strcmp(s, "http/1.1") == 0 ? 1 : -1;
        if (v < 0)
            return tg_conf_error(err, n->items[i],
                                 "unsupported ALPN protocol '%s': expected h2 or http/1.1", s);
        if (v == first)
            return tg_conf_error(err, n->items[i], "'%s' is listed twice", s);
        *(i == 0 ? &first : &second) = v;
    }
    o->alpn = second >= 0 ? &alpn_lists[first == 0 ? 0 : 1] : &alpn_lists[first == 0 ? 3 : 2];
    return 0;
}

static int parse_server_opts(const tg_conf_node_t *n, const char *dir, const char *listen,
                             server_opts_t *o, tg_conf_err_t *err)
{
    const char *text = "";
    memset(o, 0, sizeof(*o));
    if (parse_protocols(tg_conf_map_get(n, "protocols"), o, err) < 0 ||
        parse_alpn(tg_conf_map_get(n, "alpn"), o, err) < 0)
        return -1;
    o->tickets = o->cache = true;
    const tg_conf_node_t *t = tg_conf_map_get(n, "session_tickets");
    const tg_conf_node_t *c = tg_conf_map_get(n, "session_cache");
    if ((t && tg_conf_get_bool(t, &o->tickets, err) < 0) ||
        (c && tg_conf_get_bool(c, &o->cache, err) < 0))
        return -1;
    o->ciphers = tg_conf_map_get(n, "ciphers");
    o->suites = tg_conf_map_get(n, "ciphersuites");
    if ((o->ciphers && tg_conf_get_string(o->ciphers, &text, err) < 0) ||
        (o->suites && tg_conf_get_string(o->suites, &text, err) < 0))
        return -1;
    int r = get_path(n, "client_ca", dir, o->ca_path, &text, err);
    if (r < 0)
        return -1;
    o->client_ca = r > 0 ? tg_conf_map_get(n, "client_ca") : NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(md, listen, strlen(listen) + 1) == 1 &&
              EVP_DigestUpdate(md, o->ca_path, strlen(o->ca_path) + 1) == 1 &&
              EVP_DigestFinal_ex(md, o->sid, NULL) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : ssl_fail(err, n, "cannot set up TLS");
}

static int server_ctx_setup(SSL_CTX *ctx, const server_opts_t *o, tg_conf_err_t *err)
{
    SSL_CTX_set_min_proto_version(ctx, o->min_proto);
    SSL_CTX_set_max_proto_version(ctx, o->max_proto);
    /* Renegotiation only costs the server; unexpected EOF is a plain close. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* Every certificate's context: ALPN is chosen after SNI switched it. */
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, (void *)o->alpn);
    SSL_CTX_set_timeout(ctx, SESSION_TIMEOUT_S);
    if (SSL_CTX_set_session_id_context(ctx, o->sid, sizeof(o->sid)) != 1)
        return ssl_fail(err, NULL, "cannot set up TLS");
    if (o->ciphers && SSL_CTX_set_cipher_list(ctx, o->ciphers->value) != 1)
        return ssl_fail(err, o->ciphers, "invalid ciphers '%s'", o->ciphers->value);
    if (o->suites && SSL_CTX_set_ciphersuites(ctx, o->suites->value) != 1)
        return ssl_fail(err, o->suites, "invalid ciphersuites '%s'", o->suites->value);
    if (o->client_ca == NULL)
        return 0;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_path);
    if (names == NULL || SSL_CTX_load_verify_locations(ctx, o->ca_path, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return ssl_fail(err, o->client_ca, "cannot load client CA %s", o->client_ca->value);
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return 0;
}

static const char *const cert_keys[] = {"cert", "key", NULL};

/* One `certificates:` entry -> its own SSL_CTX. */
static SSL_CTX *load_server_cert(const tg_conf_node_t *entry, const char *dir,
                                 const server_opts_t *o, tg_conf_err_t *err)
{
    if (tg_conf_check_keys_in(entry, cert_keys, "tls certificates", err) < 0)
        return NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ssl_fail(err, entry, "cannot create a TLS context");
        return NULL;
    }
    int r = server_ctx_setup(ctx, o, err);
    if (r == 0) {
        r = load_pair_at(ctx, entry, dir, err);
        if (r == 0)
            r = tg_conf_error(err, entry, "missing required keys 'cert' and 'key'");
    }
    if (r < 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* The default context gets the session machinery: OpenSSL keeps using the
 * initial context for caching and tickets after an SNI switch. */
static int server_default_setup(tg_tls_server_t *s, sni_table_t *t, const server_opts_t *o)
{
    SSL_CTX_set_session_cache_mode(s->ctx, o->cache ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF);
    SSL_CTX_sess_set_cache_size(s->ctx, SESSION_CACHE_SIZE);
    SSL_CTX_set_tlsext_servername_callback(s->ctx, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(s->ctx, t);
    if (!o->tickets) {
        /* TLS 1.3 then sends stateful tickets (ids into the session cache):
         * none at all when the cache is off too. */
        SSL_CTX_set_options(s->ctx, SSL_OP_NO_TICKET);
        if (!o->cache)
            SSL_CTX_set_num_tickets(s->ctx, 0);
        return 0;
    }
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(s->ctx, ticket_cb) == 1 ? 0 : -1;
}

static int load_server_certs(tg_tls_server_t *s, const tg_conf_node_t *certs, const char *dir,
                             const server_opts_t *o, tg_conf_err_t *err)
{
    sni_table_t *t = NULL;
    for (size_t i = 0; i < certs->count; i++) {
        const tg_conf_node_t *entry = certs->items[i];
        SSL_CTX *ctx = load_server_cert(entry, dir, o, err);
        if (ctx == NULL)
            return -1;
        if (i == 0) {
            s->ctx = ctx;
            t = calloc(1, sizeof(*t));
            if (t == NULL || SSL_CTX_set_ex_data(ctx, sni_index, t) != 1) {
                free(t);
                return ssl_fail(err, entry, "cannot set up TLS");
            }
            /* From here the table belongs to the default context. */
            if (server_default_setup(s, t, o) < 0)
                return ssl_fail(err, entry, "cannot set up TLS");
        }
        int n = sni_add_cert(t, ctx, i == 0 ? NULL : ctx);
        if (i > 0)
            SSL_CTX_free(ctx); /* the SNI table holds its references */
        if (n < 0)
            return tg_conf_error(err, entry, "out of memory");
        if (n == 0 && i > 0)
            return tg_conf_error(err, entry,
                                 "certificate has no DNS name or CN for SNI to select it by");
    }
    return 0;
}

static const char *const server_keys[] = {"alpn",          "certificates",    "ciphers",
                                          "ciphersuites",  "client_ca",       "protocols",
                                          "session_cache", "session_tickets", NULL};

static void tls_init(void)
{
    sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, sni_table_free);
    pthread_mutex_lock(&tickets.lock);
    tickets_refresh_locked(); /* keys made at startup; failure is retried per ticket */
    pthread_mutex_unlock(&tickets.lock);
}

int tg_tls_server_parse(const tg_conf_node_t *n, const char *dir, const char *listen,
                        tg_tls_server_t **out, tg_conf_err_t *err)
{
    *out = NULL;
    if (n == NULL || n->type == TG_CONF_NULL)
        return 0;
    pthread_once(&init_once, tls_init);
    server_opts_t o;
    if (tg_conf_check_keys_in(n, server_keys, "tls", err) < 0 ||
        parse_server_opts(n, dir, listen, &o, err) < 0)
        return -1;
    const tg_conf_node_t *certs = tg_conf_map_get(n, "certificates");
    if (certs == NULL)
        return tg_conf_error(err, n, "missing required key 'certificates'");
    if (certs->type != TG_CONF_SEQ || certs->count == 0)
        return tg_conf_error(err, certs, "expected a list of {cert, key} entries");
    tg_tls_server_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return tg_conf_error(err, n, "out of memory");
    if (load_server_certs(s, certs, dir, &o, err) < 0) {
        tg_tls_server_free(s);
        return -1;
    }
    int id = tg_metrics_counter(tg_metrics_registry(), "tollgate_tls_handshake_failures_total",
                                "TLS handshakes with clients that failed.", NULL, NULL, 0);
    if (id >= 0)
        atomic_store(&hs_fail_metric, id);
    *out = s;
    return 0;
}

void tg_tls_server_free(tg_tls_server_t *s)
{
    if (s == NULL)
        return;
    SSL_CTX_free(s->ctx);
    free(s);
}

SSL *tg_tls_server_ssl(const tg_tls_server_t *s)
{
    SSL *ssl = SSL_new(s->ctx);
    if (ssl == NULL)
        ERR_clear_error();
    return ssl;
}

void tg_tls_count_handshake_failure(SSL *ssl, unsigned worker_id)
{
    int id = atomic_load_explicit(&hs_fail_metric, memory_order_relaxed);
    if (ssl == NULL || id < 0 || SSL_is_init_finished(ssl))
        return;
    BIO *rbio = SSL_get_rbio(ssl);
    if (rbio == NULL || BIO_number_read(rbio) == 0)
        return;
    tg_metrics_add_worker(tg_metrics_registry(), worker_id, id, 0, 1);
}

/* ---- upstream contexts ------------------------------------------------ */

static int client_ctx_setup(tg_tls_client_t *c, const tg_conf_node_t *n, const char *dir,
                            tg_conf_err_t *err)
{
    char path[PATH_MAX];
    const char *text;
    SSL_CTX *ctx = c->ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Unexpected EOF ends a close-delimited body like a TCP close does
     * (nginx and curl accept it too). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* Upstreams stay HTTP/1.1. */
    if (SSL_CTX_set_alpn_protos(ctx, alpn_lists[2].wire, alpn_lists[2].len) != 0)
        return ssl_fail(err, n, "cannot set up TLS");
    SSL_CTX_set_verify(ctx, c->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    int r = get_path(n, "ca", dir, path, &text, err);
    if (r < 0)
        return -1;
    if (r > 0 && SSL_CTX_load_verify_locations(ctx, path, NULL) != 1)
        return ssl_fail(err, tg_conf_map_get(n, "ca"), "cannot load CA %s", text);
    if (r == 0 && c->verify && SSL_CTX_set_default_verify_paths(ctx) != 1)
        return ssl_fail(err, n, "cannot load the system CA certificates");
    return load_pair_at(ctx, n, dir, err) < 0 ? -1 : 0;
}

/* The host part of "host:port" / "[v6]:port". */
static char *target_host(const char *name)
{
    const char *start = name, *end;
    if (name[0] == '[') {
        start = name + 1;
        end = strchr(start, ']');
    } else {
        end = strrchr(name, ':');
    }
    if (end == NULL)
        end = name + strlen(name);
    return strndup(start, (size_t)(end - start));
}

static bool is_ip(const char *h)
{
    unsigned char b[16];
    return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

static int client_names(tg_tls_client_t *c, const tg_conf_node_t *n, const tg_target_t *targets,
                        size_t ntargets, tg_conf_err_t *err)
{
    const tg_conf_node_t *sn = tg_conf_map_get(n, "server_name");
    const char *name = NULL;
    if (sn != NULL && tg_conf_get_string(sn, &name, err) < 0)
        return -1;
    if (name != NULL && *name == '\0')
        return tg_conf_error(err, sn, "server_name must not be empty");
    c->names = calloc(ntargets, sizeof(*c->names));
    c->sni = calloc(ntargets, sizeof(*c->sni));
    if (c->names == NULL || c->sni == NULL)
        return tg_conf_error(err, n, "out of memory");
    c->ntargets = ntargets;
    for (size_t i = 0; i < ntargets; i++) {
        c->names[i] = name != NULL ? strdup(name) : target_host(targets[i].name);
        if (c->names[i] == NULL)
            return tg_conf_error(err, n, "out of memory");
        /* RFC 6066 section 3: literal IP addresses are not sent as SNI. */
        c->sni[i] = !is_ip(c->names[i]);
    }
    return 0;
}

static const char *const client_keys[] = {"verify", "ca", "server_name", "cert", "key", NULL};

int tg_tls_client_parse(const tg_conf_node_t *n, const char *dir, const tg_target_t *targets,
                        size_t ntargets, tg_tls_client_t **out, tg_conf_err_t *err)
{
    *out = NULL;
    if (n == NULL || n->type == TG_CONF_NULL)
        return 0;
    pthread_once(&init_once, tls_init);
    if (tg_conf_check_keys_in(n, client_keys, "tls", err) < 0)
        return -1;
    tg_tls_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return tg_conf_error(err, n, "out of memory");
    c->verify = true;
    const tg_conf_node_t *v = tg_conf_map_get(n, "verify");
    int rc = v != NULL ? tg_conf_get_bool(v, &c->verify, err) : 0;
    if (rc == 0) {
        c->ctx = SSL_CTX_new(TLS_client_method());
        rc = c->ctx == NULL ? ssl_fail(err, n, "cannot create a TLS context") : 0;
    }
    if (rc == 0)
        rc = client_ctx_setup(c, n, dir, err);
    if (rc == 0)
        rc = client_names(c, n, targets, ntargets, err);
    if (rc < 0) {
        tg_tls_client_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void tg_tls_client_free(tg_tls_client_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; c->names != NULL && i < c->ntargets; i++)
        free(c->names[i]);
    free(c->names);
    free(c->sni);
    SSL_CTX_free(c->ctx);
    free(c);
}

SSL *tg_tls_client_ssl(const tg_tls_client_t *c, size_t target)
{
    SSL *ssl = SSL_new(c->ctx);
    if (ssl == NULL) {
        ERR_clear_error();
        return NULL;
    }
    const char *name = c->names[target];
    bool ok = !c->sni[target] || SSL_set_tlsext_host_name(ssl, name) == 1;
    if (ok && c->verify) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(ssl, name) == 1; /* an IP literal is matched as an IP */
    }
    if (!ok) {
        ERR_clear_error();
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}
