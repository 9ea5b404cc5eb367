/*
 * Redis Cluster: slot map, a connection per primary, MOVED and ASK
 * (see redis_cluster.h).
 */
#include "redis_cluster.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tollgate/clock.h"

#define SLOTS 16384
#define TICK_MS 100         /* how often the refresh conditions are looked at */
#define LOST_REFRESH_MS 500 /* a primary is unreachable: has a replica taken over? */

typedef struct {
    char host[64];
    int port;
    tg_redis_conf_t conf; /* the cluster's, with this node's address */
    char name[80];
    tg_redis_t *rc;
} node_t;

struct tg_redis_cluster_s {
    const tg_redis_conf_t *conf;
    struct event_base *base;
    unsigned worker_id;
    node_t nodes[TG_REDIS_CLUSTER_MAX_NODES];
    size_t nnodes;
    uint8_t slot_node[SLOTS]; /* node index + 1; 0 = unknown */
    bool have_map;
    uint64_t mapped;    /* bit i: node i serves a slot (nodes <= 64) */
    bool refreshing;    /* a CLUSTER SLOTS is on its way */
    bool want_refresh;  /* after a MOVED or a failed refresh */
    uint64_t last_ms;   /* when the last refresh was sent */
    uint64_t next_ms;   /* the next periodic refresh */
    struct event *tick; /* persistent, TICK_MS */
};

/* One command across its redirects. */
typedef struct {
    tg_redis_cluster_t *cl;
    tg_redis_cluster_done_t done;
    void *call;
    char *cmd; /* RESP text, formatted once (redirects resend it) */
    size_t len;
    int redirects;
    bool in_send; /* done called before tg_redis_cluster_send returned */
    bool done_called;
} ccall_t;

/* ---- slots (https://redis.io/docs/reference/cluster-spec/, key distribution) ---- */

static uint16_t crc16(const char *buf, size_t len)
{
    uint16_t crc = 0; /* CRC16-CCITT (XMODEM): poly 0x1021, init 0 */
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned tg_redis_cluster_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t from = (size_t)(open - key) + 1;
        const char *close = memchr(open + 1, '}', len - from);
        if (close != NULL && close > open + 1)
            return crc16(open + 1, (size_t)(close - open - 1)) % SLOTS;
    }
    return crc16(key, len) % SLOTS;
}

static int key_slot(int argc, const char **argv, const size_t *lens)
{
    int k = 1;
    if (argc > 0 && (strcasecmp(argv[0], "EVALSHA") == 0 || strcasecmp(argv[0], "EVAL") == 0))
        k = argc > 3 && strcmp(argv[2], "0") != 0 ? 3 : -1;
    if (k < 0 || k >= argc)
        return -1;
    return (int)tg_redis_cluster_slot(argv[k], lens != NULL ? lens[k] : strlen(argv[k]));
}

/* ---- nodes -------------------------------------------------------------- */

static int node_find(tg_redis_cluster_t *cl, const char *host, int port)
{
    for (size_t i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i].port == port && strcmp(cl->nodes[i].host, host) == 0)
            return (int)i;
    return -1;
}

/* The node's index, connecting to it when new; -1 when the table is full. */
static int node_get(tg_redis_cluster_t *cl, const char *host, int port)
{
    int i = node_find(cl, host, port);
    if (i >= 0 || cl->nnodes >= TG_REDIS_CLUSTER_MAX_NODES || strlen(host) >= 64)
        return i;
    node_t *n = &cl->nodes[cl->nnodes];
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    snprintf(n->name, sizeof(n->name), "cluster node %s:%d", host, port);
    n->conf = *cl->conf;
    n->conf.name = n->name;
    n->conf.host = n->host;
    n->conf.port = port;
    n->conf.cluster_seeds = NULL;
    n->conf.nseeds = 0;
    n->rc = tg_redis_new(&n->conf, cl->base, cl->worker_id);
    if (n->rc == NULL)
        return -1;
    return (int)cl->nnodes++;
}

/* ---- the slot map ------------------------------------------------------- */

_Static_assert(TG_REDIS_CLUSTER_MAX_NODES <= 64, "mapped is a 64-bit mask");

/* CLUSTER SLOTS: [[start, end, [ip, port, id], replica...], ...] */
static int apply_slots(tg_redis_cluster_t *cl, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY)
        return -1;
    uint8_t map[SLOTS] = {0};
    uint64_t mapped = 0;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *r = reply->element[i];
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
            r->element[0]->type != REDIS_REPLY_INTEGER ||
            r->element[1]->type != REDIS_REPLY_INTEGER ||
            r->element[2]->type != REDIS_REPLY_ARRAY || r->element[2]->elements < 2 ||
            r->element[2]->element[0]->type != REDIS_REPLY_STRING ||
            r->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
            return -1;
        long long from = r->element[0]->integer, to = r->element[1]->integer;
        int n =
            node_get(cl, r->element[2]->element[0]->str, (int)r->element[2]->element[1]->integer);
        if (from < 0 || to >= SLOTS || from > to || n < 0)
            return -1;
        for (long long s = from; s <= to; s++)
            map[s] = (uint8_t)(n + 1);
        mapped |= 1ull << n;
    }
    memcpy(cl->slot_node, map, sizeof(map));
    cl->mapped = mapped;
    if (!cl->have_map)
        tg_log_info("redis: cluster slot map known (worker %u, %zu nodes)", cl->worker_id,
                    cl->nnodes);
    cl->have_map = true;
    return 0;
}

static void slots_cb(void *data, const redisReply *reply, const char *error)
{
    tg_redis_cluster_t *cl = data;
    cl->refreshing = false;
    if (error != NULL && strcmp(error, "shutdown") == 0)
        return;
    if (reply == NULL || apply_slots(cl, reply) < 0) {
        tg_log_warn("redis: CLUSTER SLOTS failed: %s (worker %u)",
                    error != NULL                                       ? error
                    : reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                        : "unexpected reply",
                    cl->worker_id);
        cl->want_refresh = true;
        return;
    }
    cl->want_refresh = false;
    cl->next_ms = tg_now_ms() + TG_REDIS_CLUSTER_REFRESH_MS;
}

/* Every primary of the map has a ready connection. */
static bool map_healthy(const tg_redis_cluster_t *cl)
{
    for (size_t i = 0; i < cl->nnodes; i++)
        if ((cl->mapped >> i & 1) && !tg_redis_ready(cl->nodes[i].rc))
            return false;
    return cl->have_map;
}

/* Refreshes when the map is unknown, after a MOVED, every
 * TG_REDIS_CLUSTER_REFRESH_MS, and every LOST_REFRESH_MS while a primary of
 * the map is unreachable (a replica may be taking over: no traffic needed
 * to notice). */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_redis_cluster_t *cl = arg;
    uint64_t now = tg_now_ms();
    if (cl->refreshing)
        return;
    if (cl->have_map && !cl->want_refresh && now < cl->next_ms &&
        (map_healthy(cl) || now < cl->last_ms + LOST_REFRESH_MS))
        return;
    for (size_t i = 0; i < cl->nnodes; i++) {
        if (!tg_redis_ready(cl->nodes[i].rc))
            continue;
        const char *argv[] = {"CLUSTER", "SLOTS"};
        cl->refreshing = true;
        cl->last_ms = now;
        tg_redis_send(cl->nodes[i].rc, slots_cb, cl, 2, argv, NULL);
        return;
    }
}

/* ---- commands ----------------------------------------------------------- */

static void finish(ccall_t *cc, const redisReply *reply, const char *error)
{
    cc->done_called = true;
    cc->done(cc->call, reply, error);
    if (!cc->in_send) {
        free(cc->cmd);
        free(cc);
    }
}

static void attempt_cb(void *data, const redisReply *reply, const char *error);

static void attempt(ccall_t *cc, int node, bool asking)
{
    tg_redis_cluster_t *cl = cc->cl;
    tg_redis_t *rc = node >= 0 ? cl->nodes[node].rc : NULL;
    if (rc == NULL || !tg_redis_ready(rc)) {
        finish(cc, NULL, "redis not connected");
        return;
    }
    if (asking) {
        const char *argv[] = {"ASKING"};
        tg_redis_send(rc, NULL, NULL, 1, argv, NULL); /* its reply is not needed */
    }
    tg_redis_send_formatted(rc, attempt_cb, cc, cc->cmd, cc->len);
}

/* "MOVED <slot> <ip>:<port>" / "ASK <slot> <ip>:<port>": the node index. */
static int redirect_target(tg_redis_cluster_t *cl, const char *text, int *slot)
{
    char addr[128];
    if (sscanf(text, "%*s %d %127s", slot, addr) != 2 || *slot < 0 || *slot >= SLOTS)
        return -1;
    char *colon = strrchr(addr, ':');
    if (colon == NULL)
        return -1;
    *colon = '\0';
    return node_get(cl, addr, atoi(colon + 1));
}

static void attempt_cb(void *data, const redisReply *reply, const char *error)
{
    ccall_t *cc = data;
    tg_redis_cluster_t *cl = cc->cl;
    bool moved =
        reply != NULL && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "MOVED ", 6) == 0;
    bool ask =
        reply != NULL && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "ASK ", 4) == 0;
    if ((!moved && !ask) || cc->redirects >= TG_REDIS_CLUSTER_REDIRECTS) {
        finish(cc, reply, error);
        return;
    }
    int slot, node = redirect_target(cl, reply->str, &slot);
    if (node < 0) {
        finish(cc, reply, error);
        return;
    }
    cc->redirects++;
    if (moved) {
        cl->slot_node[slot] = (uint8_t)(node + 1);
        cl->mapped |= 1ull << node;
        cl->want_refresh = true;
    }
    attempt(cc, node, ask);
}

int tg_redis_cluster_send(tg_redis_cluster_t *cl, tg_redis_cluster_done_t done, void *call,
                          int argc, const char **argv, const size_t *argvlen)
{
    int slot = key_slot(argc, argv, argvlen);
    int node = slot >= 0 && cl->have_map ? (int)cl->slot_node[slot] - 1 : -1;
    if (slot >= 0 && node < 0 && cl->have_map)
        cl->want_refresh = true; /* a slot nobody serves: the map may be stale */
    ccall_t *cc = calloc(1, sizeof(*cc));
    if (cc == NULL) {
        done(call, NULL, "out of memory");
        return -1;
    }
    *cc = (ccall_t){.cl = cl, .done = done, .call = call, .in_send = true};
    if (slot < 0) {
        /* No key (EVAL with 0 keys, PING...): any ready primary. */
        for (size_t i = 0; i < cl->nnodes && node < 0; i++)
            if (tg_redis_ready(cl->nodes[i].rc))
                node = (int)i;
    }
    cc->cmd = tg_redis_format(argc, argv, argvlen, NULL, 0, &cc->len);
    if (cc->cmd == NULL)
        finish(cc, NULL, "out of memory");
    else
        attempt(cc, node, false);
    cc->in_send = false;
    if (cc->done_called) {
        free(cc->cmd);
        free(cc);
        return -1;
    }
    return 0;
}

bool tg_redis_cluster_ready(const tg_redis_cluster_t *cl)
{
    if (!cl->have_map)
        return false;
    for (size_t i = 0; i < cl->nnodes; i++)
        if (tg_redis_ready(cl->nodes[i].rc))
            return true;
    return false;
}

/* ---- lifecycle ---------------------------------------------------------- */

tg_redis_cluster_t *tg_redis_cluster_new(const tg_redis_conf_t *conf, struct event_base *base,
                                         unsigned worker_id)
{
    tg_redis_cluster_t *cl = calloc(1, sizeof(*cl));
    if (cl == NULL)
        return NULL;
    cl->conf = conf;
    cl->base = base;
    cl->worker_id = worker_id;
    cl->tick = event_new(base, -1, EV_PERSIST, tick_cb, cl);
    struct timeval tv = tg_timeval_ms(TICK_MS);
    if (cl->tick == NULL || event_add(cl->tick, &tv) < 0) {
        if (cl->tick != NULL)
            event_free(cl->tick);
        free(cl);
        return NULL;
    }
    for (size_t i = 0; i < conf->nseeds; i++)
        node_get(cl, conf->cluster_seeds[i].host, conf->cluster_seeds[i].port);
    return cl;
}

void tg_redis_cluster_free(tg_redis_cluster_t *cl)
{
    if (cl == NULL)
        return;
    /* Pending calls end with "shutdown" here; refreshing ones reach slots_cb. */
    for (size_t i = 0; i < cl->nnodes; i++)
        tg_redis_free(cl->nodes[i].rc);
    event_free(cl->tick);
    free(cl);
}
