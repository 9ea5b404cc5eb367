/* The status page and its JSON twin (status_page.h). */
#include "status_page.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "metrics.h"
#include "otlp_export.h"
#include "process_metrics.h"
#include "resolve.h"
#include "tg_build_config.h"
#include "tollgate/clock.h"
#include "trace_conf.h"
#include "traffic_metrics.h"
#include "upstream_shared.h"

#define SNAPS 16
#define WINDOW_S 10.0

typedef struct {
    double t; /* monotonic seconds */
    const tg_config_t *cfg;
    size_t nroutes;
    uint64_t *requests, *errors; /* per route */
} snap_t;

struct tg_status_s {
    snap_t snaps[SNAPS]; /* oldest first */
    size_t n;
};

tg_status_t *tg_status_new(void)
{
    return calloc(1, sizeof(tg_status_t));
}

static void snap_clear(snap_t *s)
{
    free(s->requests);
    free(s->errors);
    memset(s, 0, sizeof(*s));
}

void tg_status_free(tg_status_t *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n; i++)
        snap_clear(&st->snaps[i]);
    free(st);
}

static double mono_s(void)
{
    return (double)tg_now_us() / 1e6;
}

/* The q-quantile of a histogram in milliseconds, interpolated inside its
 * bucket as Prometheus' histogram_quantile does; -1 when empty. */
static double quantile_ms(const uint64_t *bucket, double q)
{
    uint64_t total = 0;
    for (size_t b = 0; b < TG_MTEXT_NBUCKETS; b++)
        total += bucket[b];
    if (total == 0)
        return -1;
    double rank = q * (double)total, cum = 0;
    for (size_t b = 0; b < TG_MTEXT_NBUCKETS; b++) {
        double lower = b == 0 ? 0 : (double)tg_mtext_bucket_us[b - 1];
        if (cum + (double)bucket[b] >= rank && bucket[b] > 0) {
            if (b == TG_MTEXT_NBUCKETS - 1)
                return lower / 1000.0; /* +Inf: the highest finite bound */
            double upper = (double)tg_mtext_bucket_us[b];
            return (lower + (upper - lower) * (rank - cum) / (double)bucket[b]) / 1000.0;
        }
        cum += (double)bucket[b];
    }
    return -1;
}

static json_t *ms_or_null(double ms)
{
    return ms < 0 ? json_null() : json_real((double)(long long)(ms * 1000.0 + 0.5) / 1000.0);
}

/* Keeps a snapshot of now (at most one a second) and returns the base to
 * measure rates against, or NULL. */
static const snap_t *remember(tg_status_t *st, const tg_config_t *cfg, const uint64_t *req,
                              const uint64_t *err, double now)
{
    /* A reload changes the routes: earlier snapshots no longer line up. */
    if (st->n > 0 && st->snaps[st->n - 1].cfg != cfg) {
        for (size_t i = 0; i < st->n; i++)
            snap_clear(&st->snaps[i]);
        st->n = 0;
    }
    const snap_t *base = NULL;
    for (size_t i = 0; i < st->n && base == NULL; i++)
        if (now - st->snaps[i].t <= WINDOW_S + 0.5 && now - st->snaps[i].t >= 1.0)
            base = &st->snaps[i];
    if (st->n == 0 || now - st->snaps[st->n - 1].t >= 1.0) {
        if (st->n == SNAPS) {
            if (base == &st->snaps[0])
                return base; /* keep the base this time; the ring moves next time */
            snap_clear(&st->snaps[0]);
            memmove(&st->snaps[0], &st->snaps[1], (SNAPS - 1) * sizeof(snap_t));
            st->n--;
            memset(&st->snaps[st->n], 0, sizeof(snap_t));
            if (base != NULL)
                base--;
        }
        snap_t *s = &st->snaps[st->n];
        s->requests = malloc((cfg->nroutes + 1) * sizeof(uint64_t));
        s->errors = malloc((cfg->nroutes + 1) * sizeof(uint64_t));
        if (s->requests != NULL && s->errors != NULL) {
            memcpy(s->requests, req, cfg->nroutes * sizeof(uint64_t));
            memcpy(s->errors, err, cfg->nroutes * sizeof(uint64_t));
            s->t = now;
            s->cfg = cfg;
            s->nroutes = cfg->nroutes;
            st->n++;
        } else {
            snap_clear(s);
        }
    }
    return base;
}

static json_t *routes_json(tg_status_t *st, const tg_config_t *cfg, tg_worker_t *ws, unsigned n,
                           double now, json_t *doc)
{
    size_t nr = cfg->nroutes;
    uint64_t *req = calloc(nr + 1, sizeof(uint64_t)), *err = calloc(nr + 1, sizeof(uint64_t));
    tg_route_totals_t *tot = calloc(nr + 1, sizeof(*tot));
    json_t *arr = json_array();
    if (req == NULL || err == NULL || tot == NULL)
        goto out;
    for (size_t ri = 0; ri <= nr; ri++) {
        tg_metrics_route_totals(cfg, ws, n, ri, &tot[ri]);
        for (size_t c = 0; c < 6; c++)
            req[ri] += tot[ri].status[c];
        err[ri] = tot[ri].status[5];
    }
    const snap_t *base = remember(st, cfg, req, err, now);
    double window = base ? now - base->t : -1;
    json_object_set_new(doc, "window_seconds", window < 0 ? json_null() : json_real(window));
    for (size_t ri = 0; ri < nr; ri++) {
        const tg_route_t *r = &cfg->routes[ri];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(r->name));
        json_object_set_new(o, "upstream",
                            r->upstream ? json_string(r->upstream->name) : json_null());
        json_object_set_new(o, "requests", json_integer((json_int_t)req[ri]));
        json_object_set_new(o, "errors", json_integer((json_int_t)err[ri]));
        json_object_set_new(o, "in_flight",
                            json_integer((json_int_t)tg_traffic_in_flight(cfg, ws, n, ri)));
        if (base != NULL && ri < base->nroutes) {
            uint64_t dr = req[ri] - base->requests[ri], de = err[ri] - base->errors[ri];
            json_object_set_new(o, "rate", json_real((double)dr / window));
            json_object_set_new(o, "error_rate",
                                dr ? json_real((double)de / (double)dr) : json_null());
        } else {
            json_object_set_new(o, "rate", json_null());
            json_object_set_new(o, "error_rate", json_null());
        }
        json_object_set_new(o, "p50_ms", ms_or_null(quantile_ms(tot[ri].bucket, 0.5)));
        json_object_set_new(o, "p99_ms", ms_or_null(quantile_ms(tot[ri].bucket, 0.99)));
        json_array_append_new(arr, o);
    }
    json_object_set_new(doc, "unrouted", json_integer((json_int_t)req[nr]));
out:
    free(req);
    free(err);
    free(tot);
    return arr;
}

/* up; unhealthy (the active checks took it out); resting (passive health or
 * an outlier ejection, until its time is over). */
static const char *target_health(const tg_tshared_t *t, uint64_t now_ms)
{
    if (atomic_load_explicit(&t->unhealthy, memory_order_relaxed))
        return "unhealthy";
    return tg_tshared_usable(t, now_ms) ? "up" : "resting";
}

static json_t *upstreams_json(const tg_config_t *cfg, tg_worker_t *ws, unsigned n)
{
    json_t *arr = json_array();
    uint64_t now_ms = tg_now_ms();
    for (size_t ui = 0; ui < cfg->nupstreams; ui++) {
        const tg_upstream_conf_t *u = &cfg->upstreams[ui];
        uint64_t active, idle, bucket[TG_MTEXT_NBUCKETS];
        tg_metrics_upstream_conns(cfg, ws, n, ui, &active, &idle);
        tg_traffic_upstream(cfg, ws, n, ui, bucket);
        /* Failure isolation's state, shared by the workers (upstream_shared.h). */
        uint64_t retries = u->shared ? atomic_load(&u->shared->retries) : 0;
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(u->name));
        json_object_set_new(o, "active", json_integer((json_int_t)active));
        json_object_set_new(o, "idle", json_integer((json_int_t)idle));
        json_object_set_new(o, "retries", json_integer((json_int_t)retries));
        json_object_set_new(o, "p50_ms", ms_or_null(quantile_ms(bucket, 0.5)));
        json_object_set_new(o, "p99_ms", ms_or_null(quantile_ms(bucket, 0.99)));
        json_t *targets = json_array();
        for (size_t ti = 0; ti < u->ntargets; ti++) {
            const tg_target_t *tg = &u->targets[ti];
            char buf[64];
            const char *label = tg_target_label(tg, buf, sizeof(buf));
            if (label == NULL || tg->shared == NULL)
                continue; /* an empty slot of a re-resolved name */
            json_t *t = json_object();
            json_object_set_new(t, "address", json_string(label));
            json_object_set_new(t, "health", json_string(target_health(tg->shared, now_ms)));
            json_array_append_new(targets, t);
        }
        json_object_set_new(o, "targets", targets);
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *listeners_json(tg_worker_t *ws, unsigned n)
{
    tg_listener_conns_t l[TG_TRAFFIC_LISTENERS];
    size_t k = tg_traffic_listeners(ws, n, l, TG_TRAFFIC_LISTENERS);
    json_t *arr = json_array();
    for (size_t i = 0; i < k; i++)
        json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:I}", "listener", l[i].name, "protocol",
                                             l[i].protocol, "open", (json_int_t)l[i].open,
                                             "accepted", (json_int_t)l[i].accepted));
    return arr;
}

static json_t *reloads_json(void)
{
    tg_reload_stats_t rs;
    tg_process_metrics_reloads(&rs);
    tg_reload_event_t ev[TG_RELOAD_HISTORY];
    size_t k = tg_process_metrics_recent_reloads(ev);
    json_t *recent = json_array();
    for (size_t i = 0; i < k; i++)
        json_array_append_new(recent, json_pack("{s:f,s:b,s:o}", "time", ev[i].time, "ok", ev[i].ok,
                                                "error",
                                                ev[i].ok ? json_null() : json_string(ev[i].error)));
    return json_pack("{s:I,s:I,s:f,s:b,s:o}", "ok", (json_int_t)rs.ok, "failed",
                     (json_int_t)rs.failed, "last_success", rs.last_success, "last_ok", rs.last_ok,
                     "recent", recent);
}

void tg_status_json(tg_status_t *st, struct evbuffer *out, const tg_config_t *cfg,
                    tg_worker_t *workers, unsigned nworkers)
{
    double now = mono_s();
    tg_reload_stats_t rs;
    tg_process_metrics_reloads(&rs);
    json_t *doc = json_object();
    json_object_set_new(doc, "version", json_string(TG_VERSION));
    json_object_set_new(doc, "time", json_real((double)tg_wall_us() / 1e6));
    json_object_set_new(doc, "workers", json_integer(nworkers));
    json_object_set_new(doc, "routes", routes_json(st, cfg, workers, nworkers, now, doc));
    json_object_set_new(doc, "upstreams", upstreams_json(cfg, workers, nworkers));
    json_object_set_new(doc, "listeners", listeners_json(workers, nworkers));
    json_object_set_new(doc, "reloads", reloads_json());
    unsigned long long ex, dq, df;
    tg_otlp_counts(&ex, &dq, &df);
    json_object_set_new(doc, "tracing",
                        cfg->tracing == NULL
                            ? json_null()
                            : json_pack("{s:s,s:f,s:I,s:I,s:I}", "endpoint", cfg->tracing->endpoint,
                                        "sample_ratio", cfg->tracing->sample_ratio, "exported",
                                        (json_int_t)ex, "dropped_queue_full", (json_int_t)dq,
                                        "dropped_export_failed", (json_int_t)df));
    char *s = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(10));
    if (s != NULL) {
        evbuffer_add(out, s, strlen(s));
        free(s);
    }
    json_decref(doc);
}

/* One page, no external assets: the script polls /status.json every 2 s and
 * fills the tables; every figure cell carries data-k (what it shows) so a
 * test can read the page as a person would. */
static const char page[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>tollgate status</title>\n<style>\n"
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2329;background:#fafbfc}\n"
    "h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}\n"
    "#meta{color:#5a6570}table{border-collapse:collapse;background:#fff;min-width:50%}\n"
    "th,td{border:1px solid #d6dbe0;padding:.3em .7em;text-align:right}\n"
    "th{background:#eef1f4}td:first-child,th:first-child,.t{text-align:left}\n"
    ".up{color:#137333;font-weight:600}.resting,.unhealthy{color:#b3261e;font-weight:600}\n"
    ".bad{color:#b3261e}.ok{color:#137333}#error{color:#b3261e}\n"
    "</style></head><body>\n"
    "<h1>tollgate</h1><div id=\"meta\">loading&hellip;</div><div id=\"error\"></div>\n"
    "<h2>Routes</h2><table id=\"routes\"><thead><tr><th>route</th><th class=\"t\">upstream</th>"
    "<th>requests</th><th>req/s</th><th>errors</th><th>error rate</th><th>p50 ms</th>"
    "<th>p99 ms</th><th>in flight</th></tr></thead><tbody></tbody></table>\n"
    "<h2>Upstreams</h2><table id=\"upstreams\"><thead><tr><th>upstream</th><th "
    "class=\"t\">target</th>"
    "<th class=\"t\">health</th><th>active conns</th><th>idle conns</th><th>retries</th><th>p50 "
    "ms</th>"
    "<th>p99 ms</th></tr></thead><tbody></tbody></table>\n"
    "<h2>Client connections</h2><table id=\"listeners\"><thead><tr><th>listener</th>"
    "<th "
    "class=\"t\">protocol</th><th>open</th><th>accepted</th></tr></thead><tbody></tbody></table>\n"
    "<h2>Tracing</h2><div id=\"tracing\"></div>\n"
    "<h2>Reloads</h2><div id=\"reloads\"></div><table id=\"recent\"><thead><tr><th>time</th>"
    "<th class=\"t\">result</th><th class=\"t\">error</th></tr></thead><tbody></tbody></table>\n"
    "<script>\n"
    "'use strict';\n"
    "const fix = (v, d) => v === null || v === undefined ? '\\u2013' : v.toFixed(d);\n"
    "const pct = v => v === null ? '\\u2013' : (100 * v).toFixed(1) + '%';\n"
    "function cell(tr, text, key, cls) {\n"
    "  const td = document.createElement('td');\n"
    "  td.textContent = String(text);\n"
    "  if (key) td.dataset.k = key;\n"
    "  if (cls) td.className = cls;\n"
    "  tr.appendChild(td);\n"
    "}\n"
    "function fill(id, rows) {\n"
    "  const body = document.querySelector('#' + id + ' tbody');\n"
    "  body.replaceChildren(...rows);\n"
    "}\n"
    "function render(s) {\n"
    "  document.getElementById('meta').textContent = 'version ' + s.version + ', ' + s.workers +\n"
    "    ' workers, rates over the last ' + (s.window_seconds === null ? '\\u2013' :\n"
    "    s.window_seconds.toFixed(0)) + ' s, ' + s.unrouted + ' requests without a route, ' +\n"
    "    new Date(s.time * 1000).toISOString();\n"
    "  fill('routes', s.routes.map(r => {\n"
    "    const tr = document.createElement('tr'), k = 'route:' + r.name + ':';\n"
    "    cell(tr, r.name, k + 'name'); cell(tr, r.upstream === null ? '\\u2013' : r.upstream,\n"
    "      '', 't');\n"
    "    cell(tr, r.requests, k + 'requests'); cell(tr, fix(r.rate, 1), k + 'rate');\n"
    "    cell(tr, r.errors, k + 'errors', r.errors ? 'bad' : '');\n"
    "    cell(tr, pct(r.error_rate), k + 'error_rate');\n"
    "    cell(tr, fix(r.p50_ms, 1), k + 'p50_ms'); cell(tr, fix(r.p99_ms, 1), k + 'p99_ms');\n"
    "    cell(tr, r.in_flight, k + 'in_flight');\n"
    "    return tr;\n"
    "  }));\n"
    "  const ups = [];\n"
    "  for (const u of s.upstreams) {\n"
    "    u.targets.forEach((t, i) => {\n"
    "      const tr = document.createElement('tr'), k = 'upstream:' + u.name + ':';\n"
    "      cell(tr, i ? '' : u.name);\n"
    "      cell(tr, t.address, 'target:' + u.name + ':' + t.address + ':address', 't');\n"
    "      cell(tr, t.health, 'target:' + u.name + ':' + t.address + ':health', 't ' + t.health);\n"
    "      if (i === 0) {\n"
    "        cell(tr, u.active, k + 'active'); cell(tr, u.idle, k + 'idle');\n"
    "        cell(tr, u.retries, k + 'retries');\n"
    "        cell(tr, fix(u.p50_ms, 1), k + 'p50_ms'); cell(tr, fix(u.p99_ms, 1), k + 'p99_ms');\n"
    "      } else { for (let j = 0; j < 5; j++) cell(tr, ''); }\n"
    "      ups.push(tr);\n"
    "    });\n"
    "  }\n"
    "  fill('upstreams', ups);\n"
    "  fill('listeners', s.listeners.map(l => {\n"
    "    const tr = document.createElement('tr'), k = 'listener:' + l.listener + ':';\n"
    "    cell(tr, l.listener); cell(tr, l.protocol, '', 't');\n"
    "    cell(tr, l.open, k + 'open'); cell(tr, l.accepted, k + 'accepted');\n"
    "    return tr;\n"
    "  }));\n"
    "  const tr = document.getElementById('tracing');\n"
    "  tr.textContent = s.tracing === null ? 'off (trace context passed on, nothing exported)' :\n"
    "    s.tracing.endpoint + ', sample ratio ' + s.tracing.sample_ratio + ': ' +\n"
    "    s.tracing.exported + ' spans exported, ' + s.tracing.dropped_queue_full +\n"
    "    ' dropped (queue full), ' + s.tracing.dropped_export_failed + ' dropped (export "
    "failed)';\n"
    "  const rl = s.reloads;\n"
    "  const rd = document.getElementById('reloads');\n"
    "  rd.textContent = rl.ok + ' succeeded, ' + rl.failed + ' failed; last success ' +\n"
    "    new Date(rl.last_success * 1000).toISOString();\n"
    "  rd.dataset.k = 'reloads';\n"
    "  rd.dataset.ok = rl.ok; rd.dataset.failed = rl.failed;\n"
    "  fill('recent', rl.recent.map(e => {\n"
    "    const tr = document.createElement('tr');\n"
    "    cell(tr, new Date(e.time * 1000).toISOString());\n"
    "    cell(tr, e.ok ? 'ok' : 'failed', 'reload:result', e.ok ? 't ok' : 't bad');\n"
    "    cell(tr, e.error === null ? '' : e.error, '', 't');\n"
    "    return tr;\n"
    "  }));\n"
    "  document.body.dataset.rendered = String((+document.body.dataset.rendered || 0) + 1);\n"
    "}\n"
    "async function poll() {\n"
    "  try {\n"
    "    const r = await fetch('/status.json', {cache: 'no-store'});\n"
    "    if (!r.ok) throw new Error('status ' + r.status);\n"
    "    render(await r.json());\n"
    "    document.getElementById('error').textContent = '';\n"
    "  } catch (e) {\n"
    "    document.getElementById('error').textContent = 'cannot read /status.json: ' + e;\n"
    "  }\n"
    "  setTimeout(poll, 2000);\n"
    "}\n"
    "poll();\n"
    "</script></body></html>\n";

void tg_status_html(struct evbuffer *out)
{
    evbuffer_add(out, page, sizeof(page) - 1);
}
