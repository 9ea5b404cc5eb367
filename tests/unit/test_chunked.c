/* Unit tests for src/chunked.c: the chunked framing decoder. */
#include "http_parser.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
    tg_chunk_result_t r;
    size_t end;     /* bytes of input used when DONE/ERROR */
    char out[1024]; /* decoded data */
    size_t out_len;
    int chunks; /* new_chunk events */
} decoded_t;

/*
 * Drives the decoder as the proxy does: the input arrives first up to
 * `split`, then by `step` bytes; the decoder always sees every unconsumed
 * byte that has arrived.
 */
static void decode(const char *in, size_t len, size_t split, size_t step, size_t max_meta,
                   decoded_t *o, tg_chunked_t *d)
{
    size_t pos = 0, avail = split < len ? split : len, used;
    memset(o, 0, sizeof(*o));
    tg_chunked_init(d, max_meta);
    for (;;) {
        tg_chunk_result_t r = tg_chunked_parse(d, in + pos, avail - pos, &used);
        ck_assert_uint_le(used, avail - pos);
        pos += used;
        if (d->new_chunk) {
            o->chunks++;
            d->new_chunk = 0;
        }
        if (r == TG_CHUNK_DATA) {
            size_t n = avail - pos;
            if (n > d->remaining)
                n = (size_t)d->remaining;
            ck_assert_uint_le(o->out_len + n, sizeof(o->out));
            memcpy(o->out + o->out_len, in + pos, n);
            o->out_len += n;
            pos += n;
            tg_chunked_consumed(d, n);
            if (n > 0 || d->remaining == 0)
                continue;
        } else if (r != TG_CHUNK_NEED_MORE) {
            o->r = r;
            o->end = pos;
            return;
        }
        if (avail == len) {
            o->r = TG_CHUNK_NEED_MORE;
            o->end = pos;
            return;
        }
        avail = avail + step < len ? avail + step : len;
    }
}

static void decode_str(const char *in, decoded_t *o, tg_chunked_t *d)
{
    decode(in, strlen(in), strlen(in), 1, 0, o, d);
}

START_TEST(multi_chunk)
{
    static const char in[] = "5\r\nhello\r\n1;a=b\r\n \r\nA\r\n0123456789\r\n0\r\n\r\nNEXT";
    decoded_t o;
    tg_chunked_t d;
    decode_str(in, &o, &d);
    ck_assert_int_eq(o.r, TG_CHUNK_DONE);
    ck_assert_uint_eq(o.end, sizeof(in) - 1 - 4);
    ck_assert_uint_eq(o.out_len, 16);
    ck_assert_int_eq(memcmp(o.out, "hello 0123456789", 16), 0);
    ck_assert_uint_eq(d.total, 16);
    ck_assert_int_eq(o.chunks, 3);
    /* DONE is sticky and consumes nothing */
    size_t used = 99;
    ck_assert_int_eq(tg_chunked_parse(&d, "0\r\n\r\n", 5, &used), TG_CHUNK_DONE);
    ck_assert_uint_eq(used, 0);
}
END_TEST

START_TEST(hex_and_extensions)
{
    static const char *const ok[] = {
        "fF\r\n",
        "0000000000000001\r\n", /* 16 digits */
        "1;name\r\n",
        "1;name=value\r\n",
        "1 ; name = value ; other\r\n",
        "1;\tname\t=\t\"quoted \\\" str\xe9\"\r\n",
        "1;a=\"\";b=c\r\n",
        "1;a = \"x\" ;b\r\n",
        "4000000000000000\r\n", /* 2^62 */
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        tg_chunked_t d;
        size_t used, len = strlen(ok[i]);
        tg_chunked_init(&d, 0);
        ck_assert_msg(tg_chunked_parse(&d, ok[i], len, &used) == TG_CHUNK_DATA, "%s", ok[i]);
        ck_assert_uint_eq(used, len);
        ck_assert_int_eq(d.new_chunk, 1);
        ck_assert_uint_eq(d.remaining, d.chunk_size);
    }
    tg_chunked_t d;
    size_t used;
    tg_chunked_init(&d, 0);
    tg_chunked_parse(&d, "fF\r\n", 4, &used);
    ck_assert_uint_eq(d.chunk_size, 255);
    tg_chunked_init(&d, 0);
    tg_chunked_parse(&d, "4000000000000000\r\n", 18, &used);
    ck_assert_uint_eq(d.remaining, UINT64_C(1) << 62);
}
END_TEST

typedef struct {
    const char *in;
    const char *reason;
} bad_t;

static const bad_t bad[] = {
    {"00000000000000001\r\n", "chunk size has too many digits"},
    {"4000000000000001\r\n", "chunk size too large"},
    {"ffffffffffffffff\r\n", "chunk size too large"},
    {"\r\n", "invalid chunk size"},
    {"g\r\n", "invalid chunk size"},
    {"-1\r\n", "invalid chunk size"},
    {"+1\r\n", "invalid chunk size"},
    {" 1\r\n", "invalid chunk size"},
    {"0x1\r\n", "invalid chunk size"},
    {"1\n", "bare LF in chunk framing"},
    {"1\rx", "bare CR in chunk framing"},
    {"1 \r\n", "invalid chunk extension"},
    {"1;\r\n", "invalid chunk extension name"},
    {"1;a=\r\n", "invalid chunk extension value"},
    {"1;a b\r\n", "invalid chunk extension"},
    {"1;a=b c\r\n", "invalid chunk extension"},
    {"1;a=\"b\r\n", "invalid quoted-string in chunk extension"},
    {"1;a=\"b\"c\r\n", "invalid chunk extension"},
    {"1;a=\"\\\x01\"\r\n", "invalid quoted-pair in chunk extension"},
    {"1;a=b\n", "invalid chunk extension"},
    {"1\r\nxy\r\n", "chunk data not followed by CRLF"},
    {"1\r\nx\n", "chunk data not followed by CRLF"},
    {"1\r\nx\r\r", "chunk data not followed by CRLF"},
    {"0\r\n\n", "bare LF in trailer section"},
    {"0\r\n\r\r", "bare CR in trailer section"},
    {"0\r\nA: b\n", "bare LF in trailer section"},
    {"0\r\nA: b\rx", "bare CR in trailer section"},
    {"0\r\nA : b\r\n\r\n", "whitespace between trailer name and colon"},
    {"0\r\nA: b\r\n c\r\n\r\n", "obs-fold in trailer section"},
    {"0\r\nA: \x7f\r\n\r\n", "invalid character in trailer field"},
    {"0\r\nA(: b\r\n\r\n", "invalid trailer field name"},
    {"0\r\n: b\r\n\r\n", "invalid trailer field name"},
};

START_TEST(reject)
{
    decoded_t o;
    tg_chunked_t d;
    decode_str(bad[_i].in, &o, &d);
    ck_assert_int_eq(o.r, TG_CHUNK_ERROR);
    ck_assert_str_eq(d.error_reason, bad[_i].reason);
    /* the error is sticky */
    size_t used = 99;
    ck_assert_int_eq(tg_chunked_parse(&d, "0\r\n\r\n", 5, &used), TG_CHUNK_ERROR);
    ck_assert_uint_eq(used, 0);
}
END_TEST

START_TEST(trailers)
{
    static const char in[] =
        "3\r\nabc\r\n0;x=1\r\nExpires: never\r\nX-Sum:  \t 12\xff \r\nEmpty:\r\n\r\n";
    decoded_t o;
    tg_chunked_t d;
    decode_str(in, &o, &d);
    ck_assert_int_eq(o.r, TG_CHUNK_DONE);
    ck_assert_uint_eq(o.end, sizeof(in) - 1);
    ck_assert_uint_eq(o.out_len, 3);
    ck_assert_uint_eq(d.meta, 4 + 16 + 16 + 8);
}
END_TEST

START_TEST(meta_limit)
{
    static const char in[] = "0\r\nAbc: d\r\n\r\n";                  /* 8 bytes of trailer */
    static const char ext[] = "1;ab\r\nx\r\n1;cd\r\ny\r\n0\r\n\r\n"; /* 2 x "ab\r" */
    decoded_t o;
    tg_chunked_t d;
    decode(in, sizeof(in) - 1, 0, 1, 8, &o, &d);
    ck_assert_int_eq(o.r, TG_CHUNK_DONE);
    ck_assert_uint_eq(d.meta, 8);
    decode(in, sizeof(in) - 1, 0, 1, 7, &o, &d);
    ck_assert_int_eq(o.r, TG_CHUNK_ERROR);
    ck_assert_str_eq(d.error_reason, "chunk extensions or trailers too large");
    /* extensions count too, across chunks */
    decode(ext, sizeof(ext) - 1, 0, 1, 5, &o, &d);
    ck_assert_int_eq(o.r, TG_CHUNK_ERROR);
    decode(ext, sizeof(ext) - 1, 0, 1, 6, &o, &d);
    ck_assert_int_eq(o.r, TG_CHUNK_DONE);
    /* the default limit is 8192 */
    char *big = malloc(9000);
    memcpy(big, "1;a=", 4);
    memset(big + 4, 'x', 8990);
    memcpy(big + 8994, "\r\n", 2);
    decode(big, 8996, 8996, 1, 0, &o, &d);
    ck_assert_int_eq(o.r, TG_CHUNK_ERROR);
    free(big);
}
END_TEST

static const char *const bodies[] = {
    "5\r\nhello\r\n1;a=b\r\n \r\nA\r\n0123456789\r\n0\r\n\r\n",
    "3;x=\"q\\\"\"\r\nabc\r\n0\r\nT: v\r\nU:w\r\n\r\n",
    "1\r\nx\r\n10\r\n0123456789abcdef\r\n000\r\n\r\n",
    "1\r\nx\r\n10\r\n0123456789abcdef\r\n0\r\nbad : x\r\n\r\n",
    "1\r\nxy",
};

/* Every split point gives the same result as one-shot and as byte-by-byte. */
START_TEST(split_everywhere)
{
    const char *in = bodies[_i];
    size_t len = strlen(in);
    decoded_t ref, o;
    tg_chunked_t d;
    decode(in, len, len, 1, 0, &ref, &d);
    for (size_t split = 0; split <= len; split++) {
        for (size_t step = 1; step <= 3; step += 2) {
            decode(in, len, split, step, 0, &o, &d);
            ck_assert_int_eq(o.r, ref.r);
            if (o.r == TG_CHUNK_DONE) /* after an error nothing is consumed */
                ck_assert_uint_eq(o.end, ref.end);
            ck_assert_uint_eq(o.out_len, ref.out_len);
            ck_assert_int_eq(memcmp(o.out, ref.out, o.out_len), 0);
            ck_assert_int_eq(o.chunks, ref.chunks);
        }
    }
}
END_TEST

START_TEST(guard_page)
{
    long ps = sysconf(_SC_PAGESIZE);
    char *mem =
        mmap(NULL, 2 * (size_t)ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(mem, MAP_FAILED);
    ck_assert_int_eq(mprotect(mem + ps, (size_t)ps, PROT_NONE), 0);
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        size_t len = strlen(bodies[i]);
        decoded_t o;
        tg_chunked_t d;
        for (size_t k = 0; k <= len; k++) {
            char *b = mem + ps - k;
            memcpy(b, bodies[i], k);
            decode(b, k, k, 1, 0, &o, &d);
        }
    }
    munmap(mem, 2 * (size_t)ps);
}
END_TEST

START_TEST(total_bounded)
{
    /* the sum of the chunks stays below 2^63, like a Content-Length */
    static const char in[] = "4000000000000000\r\n";
    tg_chunked_t d;
    size_t used;
    tg_chunked_init(&d, 0);
    ck_assert_int_eq(tg_chunked_parse(&d, in, sizeof(in) - 1, &used), TG_CHUNK_DATA);
    tg_chunked_consumed(&d, d.remaining);
    ck_assert_int_eq(tg_chunked_parse(&d, "\r\n3fffffffffffffff\r\n", 20, &used), TG_CHUNK_DATA);
    ck_assert_uint_eq(d.total, UINT64_C(0x7fffffffffffffff));
    tg_chunked_consumed(&d, d.remaining);
    ck_assert_int_eq(tg_chunked_parse(&d, "\r\n1\r\n", 5, &used), TG_CHUNK_ERROR);
    ck_assert_str_eq(d.error_reason, "chunked body too large");
}
END_TEST

START_TEST(consumed_clamps)
{
    tg_chunked_t d;
    size_t used;
    tg_chunked_init(&d, 0);
    ck_assert_int_eq(tg_chunked_parse(&d, "3\r\n", 3, &used), TG_CHUNK_DATA);
    ck_assert_uint_eq(d.total, 3); /* counted before the data arrives */
    ck_assert_int_eq(tg_chunked_parse(&d, "", 0, &used), TG_CHUNK_DATA);
    ck_assert_uint_eq(used, 0);
    tg_chunked_consumed(&d, 10);
    ck_assert_uint_eq(d.remaining, 0);
    ck_assert_uint_eq(d.total, 3);
    ck_assert_int_eq(tg_chunked_parse(&d, "\r\n0\r\n\r\n", 7, &used), TG_CHUNK_DONE);
    ck_assert_uint_eq(used, 7);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("chunked");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, multi_chunk);
    tcase_add_test(tc, hex_and_extensions);
    tcase_add_loop_test(tc, reject, 0, (int)(sizeof(bad) / sizeof(bad[0])));
    tcase_add_test(tc, trailers);
    tcase_add_test(tc, meta_limit);
    tcase_add_loop_test(tc, split_everywhere, 0, (int)(sizeof(bodies) / sizeof(bodies[0])));
    tcase_add_test(tc, guard_page);
    tcase_add_test(tc, consumed_clamps);
    tcase_add_test(tc, total_bounded);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
