/* The exposition writer (metrics_text.h). */
#include "metrics_text.h"

#include <string.h>

const uint64_t tg_mtext_bucket_us[TG_MTEXT_NBUCKETS - 1] = {
    1000,   2500,   5000,    10000,   25000,   50000,   100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000};
const char *const tg_mtext_bucket_le[TG_MTEXT_NBUCKETS] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",  "0.5",    "1",     "2.5",  "5",     "10",   "+Inf"};

static _Thread_local bool om;

unsigned tg_mtext_bucket(uint64_t us)
{
    unsigned b = 0;
    while (b < TG_MTEXT_NBUCKETS - 1 && us > tg_mtext_bucket_us[b])
        b++;
    return b;
}

void tg_mtext_begin(bool openmetrics)
{
    om = openmetrics;
}

void tg_mtext_end(struct evbuffer *out)
{
    if (om)
        evbuffer_add(out, "# EOF\n", 6);
    om = false;
}

bool tg_mtext_openmetrics(void)
{
    return om;
}

/* Label values escape backslash, double quote and line feed; HELP text only
 * backslash and line feed. */
void tg_mtext_escaped(struct evbuffer *out, const char *s, bool quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = *s == '\\'           ? "\\\\"
                          : *s == '\n'         ? "\\n"
                          : quote && *s == '"' ? "\\\""
                                               : NULL;
        if (rep == NULL)
            continue;
        evbuffer_add(out, run, (size_t)(s - run));
        evbuffer_add(out, rep, 2);
        run = s + 1;
    }
    evbuffer_add(out, run, (size_t)(s - run));
}

void tg_mtext_header(struct evbuffer *out, const char *name, const char *help, const char *type)
{
    size_t n = strlen(name);
    if (om && strcmp(type, "counter") == 0 && n > 6 && strcmp(name + n - 6, "_total") == 0)
        n -= 6;
    evbuffer_add_printf(out, "# HELP %.*s ", (int)n, name);
    tg_mtext_escaped(out, help, false);
    evbuffer_add_printf(out, "\n# TYPE %.*s %s\n", (int)n, name, type);
}

static void labels(struct evbuffer *out, const char *name, const char *k1, const char *v1,
                   const char *k2, const char *v2)
{
    evbuffer_add_printf(out, "%s", name);
    if (k1 == NULL)
        return;
    evbuffer_add_printf(out, "{%s=\"", k1);
    tg_mtext_escaped(out, v1, true);
    if (k2 != NULL) {
        evbuffer_add_printf(out, "\",%s=\"", k2);
        tg_mtext_escaped(out, v2, true);
    }
    evbuffer_add(out, "\"}", 2);
}

void tg_mtext_sample_ex(struct evbuffer *out, const char *name, const char *k1, const char *v1,
                        const char *k2, const char *v2, uint64_t value, const tg_exemplar_t *ex)
{
    labels(out, name, k1, v1, k2, v2);
    evbuffer_add_printf(out, " %llu", (unsigned long long)value);
    if (om && ex != NULL && ex->trace_id[0] != '\0')
        evbuffer_add_printf(out, " # {trace_id=\"%s\"} %llu.%06llu %llu.%03llu", ex->trace_id,
                            (unsigned long long)(ex->value_us / 1000000),
                            (unsigned long long)(ex->value_us % 1000000),
                            (unsigned long long)(ex->wall_ms / 1000),
                            (unsigned long long)(ex->wall_ms % 1000));
    evbuffer_add(out, "\n", 1);
}

void tg_mtext_sample(struct evbuffer *out, const char *name, const char *k1, const char *v1,
                     const char *k2, const char *v2, uint64_t value)
{
    tg_mtext_sample_ex(out, name, k1, v1, k2, v2, value, NULL);
}

void tg_mtext_seconds(struct evbuffer *out, const char *name, const char *k1, const char *v1,
                      uint64_t us)
{
    labels(out, name, k1, v1, NULL, NULL);
    evbuffer_add_printf(out, " %llu.%06llu\n", (unsigned long long)(us / 1000000),
                        (unsigned long long)(us % 1000000));
}
