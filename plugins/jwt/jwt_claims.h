/*
 * jwt plugin: registered claim checks (RFC 7519 4.1) and scopes (RFC 8693
 * 4.2 "scope", and the "scp" array some issuers send), against a policy
 * parsed once from the config. The clock is a parameter so tests can fix it.
 */
#ifndef TG_JWT_CLAIMS_H
#define TG_JWT_CLAIMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "jwt_reason.h"

typedef struct {
    char **issuers; /* accepted "iss" values; none: not checked */
    size_t n_issuers;
    char **audiences; /* "aud" must hold one of these; none: not checked */
    size_t n_audiences;
    char **required; /* claim names that must be present */
    size_t n_required;
    char **scopes; /* every one must be granted */
    size_t n_scopes;
    double leeway; /* seconds of clock skew allowed on exp, nbf, iat */
} tg_jwt_policy_t;

/* exp, nbf and iat: each a number when present (else MALFORMED), then
 * EXPIRED when now >= exp + leeway (RFC 7519 4.1.4), NOT_YET_VALID when
 * now + leeway < nbf (4.1.5), ISSUED_IN_FUTURE when iat > now + leeway. */
tg_jwt_reason_t tg_jwt_check_times(const json_t *claims, double now, double leeway);

/* Everything, in this order: required claims, times, iss, aud, scopes.
 * claims is the payload object; now in seconds since the epoch. */
tg_jwt_reason_t tg_jwt_check_claims(const tg_jwt_policy_t *p, const json_t *claims, double now);

/* Whether scope is granted by "scope" (space-separated string) or "scp"
 * (array of strings, or a space-separated string). */
bool tg_jwt_has_scope(const json_t *claims, const char *scope);

void tg_jwt_policy_free(tg_jwt_policy_t *p);

#endif
