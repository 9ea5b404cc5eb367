/*
 * jwt plugin: compact JWS parsing (RFC 7515 7.1) and signature verification
 * with OpenSSL, for the algorithms of jwt_keys.h only.
 *
 * Order of the checks, so that nothing costly happens for a token that names
 * an algorithm or key we would never accept (RFC 8725 3.1, 3.2): size and
 * shape, header JSON, alg and kid pinned to a configured key, payload JSON,
 * and only then the signature.
 */
#ifndef TG_JWT_VERIFY_H
#define TG_JWT_VERIFY_H

#include <jansson.h>
#include <stddef.h>

#include "jwt_keys.h"
#include "jwt_reason.h"

/* Longer tokens are refused as malformed before any decoding. */
#define TG_JWT_MAX_TOKEN 8192

/* Strict base64url without padding (RFC 7515 2, RFC 4648 5): only the
 * URL-safe alphabet, no '=', unused trailing bits zero. Returns the decoded
 * length, or -1 when the input is invalid or does not fit in cap bytes. */
long tg_jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap);

/* JOSE ECDSA signature r || s (RFC 7518 3.4, len = 2 * coordinate size) to
 * the DER ECDSA-Sig-Value OpenSSL verifies. Returns the DER length, or -1 when
 * len is odd, zero, over 2 * 66, or cap is too small (150 always fits). */
long tg_jwt_ecdsa_raw_to_der(const unsigned char *rs, size_t len, unsigned char *der, size_t cap);

/* Key pinning: which keys may verify a token whose header says alg and kid
 * (kid NULL when the header has none), searching ks then ks->next and so on
 * (a kid found first wins). On TG_JWT_OK, *key is the kid's key,
 * or NULL when there is no kid and every key of alg must be tried. Reasons:
 * UNSUPPORTED_ALG (alg invalid, differs from the kid's key, or no key of alg
 * without kid), UNKNOWN_KEY (kid matches no key). */
tg_jwt_reason_t tg_jwt_pin(const tg_jwt_keyset_t *ks, tg_jwt_alg_t alg, const char *kid,
                           size_t kid_len, const tg_jwt_key_t **key);

/* Verifies one key's signature over input. 1 valid, 0 invalid. */
int tg_jwt_verify_sig(const tg_jwt_key_t *key, const unsigned char *input, size_t input_len,
                      const unsigned char *sig, size_t sig_len);

/* Parses and verifies a compact token. On TG_JWT_OK, *claims is the payload
 * object (a new reference); claims themselves are not checked here. */
tg_jwt_reason_t tg_jwt_verify(const tg_jwt_keyset_t *ks, const char *token, size_t len,
                              json_t **claims);

#endif
