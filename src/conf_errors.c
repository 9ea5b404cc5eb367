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

int tg_conf_errors_recover(size_t mark, const tg_conf_err_t *err)
{
    if (current == NULL)
        return -1;
    if (current->seen != mark)
        return 0; /* recorded where it happened */
    current->seen++;
    tg_conf_err_t e = *err;
    if (e.msg[0] == '\0')
        snprintf(e.msg, sizeof(e.msg), "invalid configuration");
    tg_conf_err_annotate(&e, context);
    /* The same node read twice (an alias used in two places) fails twice. */
    for (size_t i = 0; i < current->n; i++)
        if (strcmp(current->msgs[i], e.msg) == 0)
            return 0;
    if (current->n < TG_CONF_MAX_ERRORS)
        memcpy(current->msgs[current->n++], e.msg, sizeof(e.msg));
    current->total++;
    return 0;
}
