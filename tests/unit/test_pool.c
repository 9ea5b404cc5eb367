/* Unit tests for src/pool.c: zeroed and aligned objects of every class, reuse
 * of what was given back, dense packing, and an empty block going back to the
 * kernel while its class keeps one (sanitizer builds use malloc: the
 * mapping checks are skipped there). */
#include <check.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pool.h"

#define BLOCK ((uintptr_t)64 * 1024)

#if !defined(__SANITIZE_ADDRESS__)
/* Whether addr lies in a mapping of this process. */
static bool mapped(const void *addr)
{
    FILE *f = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(f);
    unsigned long lo, hi, a = (unsigned long)addr;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi;
    fclose(f);
    return found;
}
#endif

START_TEST(test_zeroed_aligned_every_class)
{
    for (size_t size = 1; size <= TG_POOL_MAX; size += 7) {
        unsigned char *p = tg_pool_alloc(size);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % 16, 0);
        for (size_t i = 0; i < size; i++)
            ck_assert_uint_eq(p[i], 0);
        memset(p, 0xA5, size); /* dirty: the next one of this class must come back zeroed */
        tg_pool_free(p, size);
        p = tg_pool_alloc(size);
        for (size_t i = 0; i < size; i++)
            ck_assert_uint_eq(p[i], 0);
        tg_pool_free(p, size);
    }
    ck_assert_ptr_null(tg_pool_alloc(0));
    ck_assert_ptr_null(tg_pool_alloc(TG_POOL_MAX + 1));
    tg_pool_free(NULL, 100);
}
END_TEST

#if !defined(__SANITIZE_ADDRESS__)
START_TEST(test_dense_reuse_and_release)
{
    enum { N = 1000, SIZE = 368 };
    static void *p[N];
    for (int i = 0; i < N; i++)
        p[i] = tg_pool_alloc(SIZE);
    /* Packed one after the other, no header per object. */
    ck_assert_uint_eq((uintptr_t)p[1] - (uintptr_t)p[0], SIZE);
    void *second_block = NULL;
    for (int i = 1; i < N && !second_block; i++)
        if (((uintptr_t)p[i] & ~(BLOCK - 1)) != ((uintptr_t)p[0] & ~(BLOCK - 1)))
            second_block = p[i];
    ck_assert_ptr_nonnull(second_block);
    /* The last given back is the first handed out again. */
    tg_pool_free(p[5], SIZE);
    ck_assert_ptr_eq(tg_pool_alloc(SIZE), p[5]);
    /* Every object of the first block back: it is unmapped (its class has
     * other blocks with room); those of the others stay usable. */
    void *first = p[0];
    uintptr_t first_block = (uintptr_t)first & ~(BLOCK - 1);
    for (int i = 0; i < N; i++)
        if (((uintptr_t)p[i] & ~(BLOCK - 1)) == first_block) {
            tg_pool_free(p[i], SIZE);
            p[i] = NULL;
        }
    ck_assert(!mapped(first));
    for (int i = 0; i < N; i++)
        if (p[i] != NULL) {
            memset(p[i], 1, SIZE);
            tg_pool_free(p[i], SIZE);
        }
    /* The class keeps its last block: the next object needs no mapping. */
    void *again = tg_pool_alloc(SIZE);
    ck_assert(mapped(again));
    tg_pool_free(again, SIZE);
}
END_TEST
#endif

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ++*(int *)arg;
}

START_TEST(test_pooled_event)
{
    struct event_base *base = event_base_new();
    int fired = 0;
    struct event *ev = tg_pool_event_new(base, -1, 0, timer_cb, &fired);
    ck_assert_ptr_nonnull(ev);
    struct timeval tv = {0, 1000};
    evtimer_add(ev, &tv);
    event_base_dispatch(base);
    ck_assert_int_eq(fired, 1);
    evtimer_add(ev, &tv);
    tg_pool_event_free(ev); /* deleted first: it never fires */
    event_base_dispatch(base);
    ck_assert_int_eq(fired, 1);
    tg_pool_event_free(NULL);
    event_base_free(base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_add_test(tc, test_zeroed_aligned_every_class);
#if !defined(__SANITIZE_ADDRESS__)
    tcase_add_test(tc, test_dense_reuse_and_release);
#endif
    tcase_add_test(tc, test_pooled_event);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
