/* Process-wide metrics (process_metrics.h). */
#include "process_metrics.h"

#include <dirent.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "metrics_text.h"
#include "tg_build_config.h"
#include "tollgate/clock.h"

static struct {
    atomic_ullong start_ms;
    atomic_ullong reload_ok, reload_failed;
    atomic_ullong last_success_ms, last_attempt_ms;
    atomic_bool last_ok;
} P;

void tg_process_metrics_start(void)
{
    uint64_t now = tg_wall_us() / 1000;
    atomic_store(&P.start_ms, now);
    atomic_store(&P.last_success_ms, now);
    atomic_store(&P.last_attempt_ms, now);
    atomic_store(&P.last_ok, true);
}

/* The reload history: written by the main thread, read by the admin thread. */
static pthread_mutex_t history_lock = PTHREAD_MUTEX_INITIALIZER;
static tg_reload_event_t history[TG_RELOAD_HISTORY];
static size_t history_n, history_next;

size_t tg_process_metrics_recent_reloads(tg_reload_event_t *out)
{
    pthread_mutex_lock(&history_lock);
    size_t n = history_n;
    for (size_t i = 0; i < n; i++)
        out[i] = history[(history_next + TG_RELOAD_HISTORY - 1 - i) % TG_RELOAD_HISTORY];
    pthread_mutex_unlock(&history_lock);
    return n;
}

void tg_process_metrics_reload(bool ok, const char *error)
{
    uint64_t now = tg_wall_us() / 1000;
    pthread_mutex_lock(&history_lock);
    tg_reload_event_t *e = &history[history_next];
    e->time = (double)now / 1000.0;
    e->ok = ok;
    snprintf(e->error, sizeof(e->error), "%s", ok || error == NULL ? "" : error);
    history_next = (history_next + 1) % TG_RELOAD_HISTORY;
    if (history_n < TG_RELOAD_HISTORY)
        history_n++;
    pthread_mutex_unlock(&history_lock);
    atomic_fetch_add(ok ? &P.reload_ok : &P.reload_failed, 1);
    atomic_store(&P.last_attempt_ms, now);
    if (ok)
        atomic_store(&P.last_success_ms, now);
    atomic_store(&P.last_ok, ok);
}

void tg_process_metrics_reloads(tg_reload_stats_t *out)
{
    out->ok = atomic_load(&P.reload_ok);
    out->failed = atomic_load(&P.reload_failed);
    out->last_success = (double)atomic_load(&P.last_success_ms) / 1000.0;
    out->last_attempt = (double)atomic_load(&P.last_attempt_ms) / 1000.0;
    out->last_ok = atomic_load(&P.last_ok);
}

static unsigned long long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    unsigned long long n = 0;
    if (d == NULL)
        return 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n >= 3 ? n - 3 : 0; /* ".", ".." and the directory's own descriptor */
}

/* /proc/self/statm: sizes in pages; virtual first, resident second. */
static void memory(unsigned long long *vsz, unsigned long long *rss)
{
    *vsz = *rss = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f == NULL)
        return;
    unsigned long long v, r;
    if (fscanf(f, "%llu %llu", &v, &r) == 2) {
        long page = sysconf(_SC_PAGESIZE);
        *vsz = v * (unsigned long long)page;
        *rss = r * (unsigned long long)page;
    }
    fclose(f);
}

static void gauge_ms(struct evbuffer *out, const char *name, const char *help, const char *type,
                     uint64_t ms)
{
    tg_mtext_header(out, name, help, type);
    tg_mtext_seconds(out, name, NULL, NULL, ms * 1000);
}

static void plain(struct evbuffer *out, const char *name, const char *help, const char *type,
                  unsigned long long v)
{
    tg_mtext_header(out, name, help, type);
    tg_mtext_sample(out, name, NULL, NULL, NULL, NULL, v);
}

void tg_process_metrics_render(struct evbuffer *out)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    uint64_t cpu_us = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
                      (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    tg_mtext_header(out, "process_cpu_seconds_total", "Total user and system CPU time spent.",
                    "counter");
    tg_mtext_seconds(out, "process_cpu_seconds_total", NULL, NULL, cpu_us);
    unsigned long long vsz, rss;
    memory(&vsz, &rss);
    plain(out, "process_resident_memory_bytes", "Resident memory size.", "gauge", rss);
    plain(out, "process_virtual_memory_bytes", "Virtual memory size.", "gauge", vsz);
    plain(out, "process_open_fds", "Open file descriptors.", "gauge", open_fds());
    struct rlimit rl;
    unsigned long long max = 0;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        max = rl.rlim_cur == RLIM_INFINITY ? 0 : (unsigned long long)rl.rlim_cur;
    plain(out, "process_max_fds", "Maximum file descriptors (the soft limit).", "gauge", max);
    gauge_ms(out, "process_start_time_seconds", "Start time since the Unix epoch.", "gauge",
             atomic_load(&P.start_ms));

    tg_mtext_header(out, "tollgate_build_info", "Build information (the value is 1).", "gauge");
    evbuffer_add_printf(out,
                        "tollgate_build_info{version=\"%s\",openssl=\"%s\",libevent=\"%s\"} 1\n",
                        TG_VERSION, OpenSSL_version(OPENSSL_VERSION_STRING), event_get_version());

    const char *r = "tollgate_config_reloads_total";
    tg_mtext_header(out, r, "Configuration reloads (SIGHUP, POST /reload), by result.", "counter");
    tg_mtext_sample(out, r, "result", "success", NULL, NULL, atomic_load(&P.reload_ok));
    tg_mtext_sample(out, r, "result", "failure", NULL, NULL, atomic_load(&P.reload_failed));
    gauge_ms(out, "tollgate_config_last_reload_success_timestamp_seconds",
             "When the configuration was last loaded successfully (startup counts).", "gauge",
             atomic_load(&P.last_success_ms));
    plain(out, "tollgate_config_last_reload_successful",
          "Whether the last reload attempt succeeded (1) or kept the old configuration (0).",
          "gauge", atomic_load(&P.last_ok) ? 1 : 0);
}
