#include "body.h"

#include <stdio.h>

void tg_body_init(tg_body_t *b, tg_body_kind_t kind, uint64_t length, uint64_t limit,
                  bool out_chunked)
{
    b->kind = kind;
    b->remaining = length;
    b->moved = 0;
    b->limit = limit;
    b->out_chunked = out_chunked;
    b->done = kind == TG_BODY_NONE || (kind == TG_BODY_LENGTH && length == 0);
    b->error = NULL;
    if (kind == TG_BODY_CHUNKED)
        tg_chunked_init(&b->chunked, 0);
}

static void write_chunk_size(struct evbuffer *dst, uint64_t n)
{
    char line[24];
    int len = snprintf(line, sizeof(line), "%llx\r\n", (unsigned long long)n);
    evbuffer_add(dst, line, (size_t)len);
}

static int finish(tg_body_t *b, struct evbuffer *dst)
{
    if (b->out_chunked)
        evbuffer_add(dst, "0\r\n\r\n", 5);
    b->done = true;
    return TG_BODY_DONE;
}

static int pump_length(tg_body_t *b, struct evbuffer *src, struct evbuffer *dst, size_t max_out)
{
    while (b->remaining > 0) {
        size_t avail = evbuffer_get_length(src);
        if (avail == 0 || evbuffer_get_length(dst) > max_out)
            return TG_BODY_MORE;
        size_t n = avail < b->remaining ? avail : (size_t)b->remaining;
        evbuffer_remove_buffer(src, dst, n);
        b->remaining -= n;
        b->moved += n;
    }
    b->done = true;
    return TG_BODY_DONE;
}

static int pump_until_close(tg_body_t *b, struct evbuffer *src, struct evbuffer *dst,
                            size_t max_out)
{
    size_t avail = evbuffer_get_length(src);
    if (avail == 0 || evbuffer_get_length(dst) > max_out)
        return TG_BODY_MORE;
    if (b->out_chunked)
        write_chunk_size(dst, avail);
    evbuffer_remove_buffer(src, dst, avail);
    if (b->out_chunked)
        evbuffer_add(dst, "\r\n", 2);
    b->moved += avail;
    if (b->limit && b->moved > b->limit)
        return TG_BODY_TOO_LARGE;
    return TG_BODY_MORE;
}

/* Data of the current chunk: moved as is, framing rewritten when re-framing. */
static int move_chunk_data(tg_body_t *b, struct evbuffer *src, struct evbuffer *dst)
{
    tg_chunked_t *d = &b->chunked;
    if (d->new_chunk) {
        d->new_chunk = 0;
        if (b->limit && d->total > b->limit)
            return TG_BODY_TOO_LARGE;
        if (b->out_chunked)
            write_chunk_size(dst, d->chunk_size);
    }
    size_t avail = evbuffer_get_length(src);
    size_t n = avail < d->remaining ? avail : (size_t)d->remaining;
    if (n == 0)
        return TG_BODY_MORE;
    evbuffer_remove_buffer(src, dst, n);
    tg_chunked_consumed(d, n);
    b->moved += n;
    if (d->remaining == 0 && b->out_chunked)
        evbuffer_add(dst, "\r\n", 2);
    return 1;
}

static int pump_chunked(tg_body_t *b, struct evbuffer *src, struct evbuffer *dst, size_t max_out)
{
    for (;;) {
        if (evbuffer_get_length(dst) > max_out)
            return TG_BODY_MORE;
        struct evbuffer_iovec vec;
        if (evbuffer_peek(src, -1, NULL, &vec, 1) < 1 || vec.iov_len == 0)
            return TG_BODY_MORE;
        size_t used = 0;
        tg_chunk_result_t r = tg_chunked_parse(&b->chunked, vec.iov_base, vec.iov_len, &used);
        if (used > 0)
            evbuffer_drain(src, used);
        switch (r) {
        case TG_CHUNK_NEED_MORE:
            if (used == 0)
                return TG_BODY_MORE;
            break;
        case TG_CHUNK_DATA: {
            int m = move_chunk_data(b, src, dst);
            if (m < 0)
                return m;
            if (m == TG_BODY_MORE)
                return TG_BODY_MORE;
            break;
        }
        case TG_CHUNK_DONE:
            return finish(b, dst);
        case TG_CHUNK_ERROR:
        default:
            b->error = b->chunked.error_reason ? b->chunked.error_reason : "invalid chunked body";
            return TG_BODY_ERROR;
        }
    }
}

int tg_body_pump(tg_body_t *b, struct evbuffer *src, struct evbuffer *dst, size_t max_out)
{
    if (b->done)
        return TG_BODY_DONE;
    switch (b->kind) {
    case TG_BODY_NONE:
        b->done = true;
        return TG_BODY_DONE;
    case TG_BODY_LENGTH:
        return pump_length(b, src, dst, max_out);
    case TG_BODY_CHUNKED:
        return pump_chunked(b, src, dst, max_out);
    case TG_BODY_UNTIL_CLOSE:
        return pump_until_close(b, src, dst, max_out);
    }
    return TG_BODY_ERROR;
}

int tg_body_eof(tg_body_t *b, struct evbuffer *dst)
{
    if (b->done)
        return TG_BODY_DONE;
    if (b->kind == TG_BODY_UNTIL_CLOSE)
        return finish(b, dst);
    b->error = "connection closed before the end of the body";
    return TG_BODY_ERROR;
}
