/* The request path makes no system call in steady state: a worker runs 1000
 * pm_pre_dispatch/pm_post_dispatch pairs under strace, between two marker calls, and
 * the system calls it made in between are counted. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fcgi_pm.h"

#define PAIRS 1000

static const char *self_path;

/* write(-1, ...) fails with EBADF and does nothing, but strace shows its text. */
static void marker(const char *text)
{
    ssize_t ignored = write(-1, text, strlen(text));
    (void)ignored;
}

/* The traced program: a manager with one worker that runs the pairs. */
static int run_traced(void)
{
    pm_t *pm = pm_create();
    pm_parameter(pm, "n_processes", "1");
    if (pm_manage(pm) != PM_WORKER)
        return 1;
    for (int i = 0; i < 10; i++) { /* warm-up: first-call costs are not steady state */
        pm_pre_dispatch(pm);
        pm_post_dispatch(pm);
    }
    marker("pm-begin");
    for (int i = 0; i < PAIRS; i++) {
        pm_pre_dispatch(pm);
        pm_post_dispatch(pm);
    }
    marker("pm-end");
    kill(getppid(), SIGTERM); /* the manager stops the pool and exits 0 */
    return 0;
}

static void test_zero_syscalls_per_pair(void **state)
{
    char out[] = "/tmp/fcgi-pm-strace-XXXXXX";
    int fd = mkstemp(out);
    (void)state;
    assert_true(fd >= 0);
    close(fd);

    pid_t pid = fork();
    if (pid == 0) {
        setenv("ASAN_OPTIONS", "detect_leaks=0", 1); /* LeakSanitizer cannot run under ptrace */
        execlp("strace", "strace", "-f", "-qq", "-o", out, self_path, "--traced", (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char line[4096];
    long worker = -1, inside = 0, between = 0;
    int seen_begin = 0, seen_end = 0;
    while (fgets(line, sizeof line, f)) {
        long line_pid = strtol(line, NULL, 10);
        if (strstr(line, "\"pm-begin\"")) {
            worker = line_pid;
            inside = 1;
            seen_begin = 1;
            continue;
        }
        if (inside && line_pid == worker) {
            if (strstr(line, "\"pm-end\"")) {
                inside = 0;
                seen_end = 1;
                continue;
            }
            between++;
            fprintf(stderr, "unexpected system call: %s", line);
        }
    }
    fclose(f);
    unlink(out);
    assert_true(seen_begin);
    assert_true(seen_end);
    printf("system calls in %d dispatch pairs: %ld (%.3f per pair)\n", PAIRS, between, (double)between / PAIRS);
    assert_int_equal(between, 0);
}

int main(int argc, char **argv)
{
    self_path = argv[0];
    if (argc > 1 && strcmp(argv[1], "--traced") == 0)
        return run_traced();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_syscalls_per_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
