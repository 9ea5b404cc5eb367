/* Unit tests for src/sd_notify.c: the datagram, paths and abstract names,
 * no socket, the watchdog variables. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sd_notify.h"

static int bind_dgram(const char *name, bool abstract)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    memcpy(sun.sun_path + abstract, name, len);
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, alen), 0);
    return fd;
}

static void recv_is(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, want);
}

START_TEST(path_socket)
{
    char path[] = "/tmp/tg_test_notify_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(path));
    char sock[PATH_MAX];
    snprintf(sock, sizeof(sock), "%s/notify", path);
    int fd = bind_dgram(sock, false);
    setenv("NOTIFY_SOCKET", sock, 1);
    ck_assert_int_eq(tg_sd_notify("READY=1\nSTATUS=x"), 0);
    recv_is(fd, "READY=1\nSTATUS=x");
    ck_assert_int_eq(tg_sd_notify_reloading(), 0);
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0, "%s", buf);
    ck_assert_uint_eq(strspn(buf + 27, "0123456789"), strlen(buf + 27));
    close(fd);
    unlink(sock);
    rmdir(path);
    /* The socket is gone: an error the caller can log. */
    ck_assert_int_eq(tg_sd_notify("READY=1"), -1);
    unsetenv("NOTIFY_SOCKET");
}
END_TEST

START_TEST(abstract_socket)
{
    char name[64];
    snprintf(name, sizeof(name), "tg-test-notify-%d", (int)getpid());
    int fd = bind_dgram(name, true);
    char env[80];
    snprintf(env, sizeof(env), "@%s", name);
    setenv("NOTIFY_SOCKET", env, 1);
    ck_assert_int_eq(tg_sd_notify("STOPPING=1"), 0);
    recv_is(fd, "STOPPING=1");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}
END_TEST

START_TEST(no_socket_is_a_no_op)
{
    unsetenv("NOTIFY_SOCKET");
    ck_assert_int_eq(tg_sd_notify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    ck_assert_int_eq(tg_sd_notify("READY=1"), -1);
    ck_assert_int_eq(errno, EINVAL);
    unsetenv("NOTIFY_SOCKET");
}
END_TEST

START_TEST(watchdog_variables)
{
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    ck_assert_uint_eq(tg_sd_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "30000000", 1);
    ck_assert_uint_eq(tg_sd_watchdog_usec(), 30000000);
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    ck_assert_uint_eq(tg_sd_watchdog_usec(), 30000000);
    setenv("WATCHDOG_PID", "1", 1); /* meant for another process */
    ck_assert_uint_eq(tg_sd_watchdog_usec(), 0);
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "30s", 1);
    ck_assert_uint_eq(tg_sd_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "0", 1);
    ck_assert_uint_eq(tg_sd_watchdog_usec(), 0);
    unsetenv("WATCHDOG_USEC");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sd_notify");
    TCase *tc = tcase_create("notify");
    tcase_add_test(tc, path_socket);
    tcase_add_test(tc, abstract_socket);
    tcase_add_test(tc, no_socket_is_a_no_op);
    tcase_add_test(tc, watchdog_variables);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
