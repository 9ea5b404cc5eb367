/*
 * jwt plugin: claim checks.
 */
#include "jwt_claims.h"

#include <stdlib.h>
#include <string.h>

/* NumericDate (RFC 7519 2): a JSON number, integer or not. */
static int numeric_date(const json_t *claims, const char *name, bool *present, double *out)
{
    const json_t *v = json_object_get(claims, name);
    *present = v != NULL;
    if (v == NULL)
        return 0;
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 0;
}

tg_jwt_reason_t tg_jwt_check_times(const json_t *claims, double now, double leeway)
{
    bool has_exp, has_nbf, has_iat;
    double exp = 0, nbf = 0, iat = 0;
    if (numeric_date(claims, "exp", &has_exp, &exp) < 0 ||
        numeric_date(claims, "nbf", &has_nbf, &nbf) < 0 ||
        numeric_date(claims, "iat", &has_iat, &iat) < 0)
        return TG_JWT_MALFORMED;
    if (has_exp && now >= exp + leeway)
        return TG_JWT_EXPIRED;
    if (has_nbf && now + leeway < nbf)
        return TG_JWT_NOT_YET_VALID;
    if (has_iat && iat > now + leeway)
        return TG_JWT_ISSUED_IN_FUTURE;
    return TG_JWT_OK;
}

static bool in_list(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

/* RFC 7519 4.1.3: "aud" is a string or an array of strings; one match is enough. */
static bool audience_ok(const tg_jwt_policy_t *p, const json_t *aud)
{
    if (json_is_string(aud))
        return in_list(p->audiences, p->n_audiences, json_string_value(aud));
    size_t i;
    const json_t *v;
    json_array_foreach(aud, i, v) {
        if (json_is_string(v) && in_list(p->audiences, p->n_audiences, json_string_value(v)))
            return true;
    }
    return false;
}

/* Whether the space-separated list s (RFC 6749 3.3) holds word. */
static bool word_in(const char *s, const char *word)
{
    size_t wl = strlen(word);
    while (*s != '\0') {
        while (*s == ' ')
            s++;
        size_t l = strcspn(s, " ");
        if (l == wl && memcmp(s, word, wl) == 0)
            return true;
        s += l;
    }
    return false;
}

bool tg_jwt_has_scope(const json_t *claims, const char *scope)
{
    const json_t *s = json_object_get(claims, "scope"), *scp = json_object_get(claims, "scp");
    if (json_is_string(s) && word_in(json_string_value(s), scope))
        return true;
    if (json_is_string(scp))
        return word_in(json_string_value(scp), scope);
    size_t i;
    const json_t *v;
    json_array_foreach(scp, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), scope) == 0)
            return true;
    }
    return false;
}

tg_jwt_reason_t tg_jwt_check_claims(const tg_jwt_policy_t *p, const json_t *claims, double now)
{
    for (size_t i = 0; i < p->n_required; i++)
        if (json_object_get(claims, p->required[i]) == NULL)
            return TG_JWT_MISSING_CLAIM;
    tg_jwt_reason_t why = tg_jwt_check_times(claims, now, p->leeway);
    if (why != TG_JWT_OK)
        return why;
    const json_t *iss = json_object_get(claims, "iss");
    if (p->n_issuers > 0 &&
        (!json_is_string(iss) || !in_list(p->issuers, p->n_issuers, json_string_value(iss))))
        return TG_JWT_WRONG_ISSUER;
    if (p->n_audiences > 0 && !audience_ok(p, json_object_get(claims, "aud")))
        return TG_JWT_WRONG_AUDIENCE;
    for (size_t i = 0; i < p->n_scopes; i++)
        if (!tg_jwt_has_scope(claims, p->scopes[i]))
            return TG_JWT_INSUFFICIENT_SCOPE;
    return TG_JWT_OK;
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

void tg_jwt_policy_free(tg_jwt_policy_t *p)
{
    free_list(p->issuers, p->n_issuers);
    free_list(p->audiences, p->n_audiences);
    free_list(p->required, p->n_required);
    free_list(p->scopes, p->n_scopes);
    memset(p, 0, sizeof(*p));
}
