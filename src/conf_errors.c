/* Collecting every config error (src/conf_errors.h). */
#include "conf_errors.h"

#include <stdio.h>
#include <string.h>

static _Thread_local tg_conf_errors_t *current;
static _Thread_local const char *context;

void tg_conf_errors_begin(tg_conf_errors_t *errs)
{
    memset(errs, 0, sizeof(*errs));
    current = errs;
    context = NULL;
}

void tg_conf_errors_end(void)
{
    current = NULL;
    context = NULL;
}

bool tg_conf_errors_collecting(void)
{
    return current != NULL;
}

size_t tg_conf_errors_mark(void)
{
    return current != NULL ? current->seen : 0;
}

void tg_conf_errors_context(const char *ctx)
{
    context = ctx;
}

/* Appended rather than put after the position: "FILE:LINE:COL: message"
 * stays as the plugin wrote it, which is what its own docs and tests show. */
void tg_conf_err_annotate(tg_conf_err_t *err, const char *ctx)
{
    if (ctx == NULL || err == NULL)
        return;
    size_t len = strlen(err->msg);
    snprintf(err->msg + len, sizeof(err->msg) - len, " [%s]", ctx);
}

/* The latest one also past the bound, which outer recovery points meet again. */
static bool recorded(const char *msg)
{
    if (current->total > 0 && strcmp(current->last, msg) == 0)
        return true;
    for (size_t i = 0; i < current->n; i++)
        if (strcmp(current->msgs[i], msg) == 0)
            return true;
    return false;
}

int tg_conf_errors_recover(const tg_conf_err_t *err)
{
    if (current == NULL)
        return -1;
    current->seen++;
    tg_conf_err_t e = *err;
    if (e.msg[0] == '\0')
        snprintf(e.msg, sizeof(e.msg), "invalid configuration");
    /* Recorded where it happened (err still holds it as the failure goes up
     * the recovery points), or the same node read twice (an alias used in
     * two places): once. The context is compared without and with. */
    if (recorded(e.msg))
        return 0;
    tg_conf_err_annotate(&e, context);
    if (recorded(e.msg))
        return 0;
    if (current->n < TG_CONF_MAX_ERRORS)
        memcpy(current->msgs[current->n++], e.msg, sizeof(e.msg));
    memcpy(current->last, e.msg, sizeof(e.msg));
    current->total++;
    return 0;
}
