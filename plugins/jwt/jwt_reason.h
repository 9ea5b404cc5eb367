/*
 * jwt plugin: why a token was refused. The names are the values of the
 * `reason` label of tollgate_jwt_rejections_total and of the "auth.error"
 * request variable; the texts go into error_description (RFC 6750 3), so they
 * hold no double quote or backslash.
 */
#ifndef TG_JWT_REASON_H
#define TG_JWT_REASON_H

typedef enum {
    TG_JWT_OK = -1, /* not a reason: accepted */
    TG_JWT_MISSING = 0,
    TG_JWT_MALFORMED,
    TG_JWT_UNSUPPORTED_ALG,
    TG_JWT_UNKNOWN_KEY,
    TG_JWT_BAD_SIGNATURE,
    TG_JWT_EXPIRED,
    TG_JWT_NOT_YET_VALID,
    TG_JWT_ISSUED_IN_FUTURE,
    TG_JWT_WRONG_ISSUER,
    TG_JWT_WRONG_AUDIENCE,
    TG_JWT_MISSING_CLAIM,
    TG_JWT_INSUFFICIENT_SCOPE,
    TG_JWT_DUPLICATE, /* a source holds two tokens: 401 invalid_request */
    TG_JWT_NREASONS
} tg_jwt_reason_t;

/* Label values, indexed by reason. */
#define TG_JWT_REASON_NAMES                                                                   \
    {                                                                                         \
        "missing", "malformed", "unsupported_alg", "unknown_key", "bad_signature", "expired", \
            "not_yet_valid", "issued_in_future", "wrong_issuer", "wrong_audience",            \
            "missing_claim", "insufficient_scope", "duplicate"                                \
    }

/* Human texts, indexed by reason. */
#define TG_JWT_REASON_TEXTS                                                         \
    {                                                                               \
        "missing token", "malformed token", "unsupported algorithm", "unknown key", \
            "invalid signature", "token expired", "token not yet valid",            \
            "token issued in the future", "wrong issuer", "wrong audience",         \
            "missing required claim", "insufficient scope", "more than one token"   \
    }

#endif
