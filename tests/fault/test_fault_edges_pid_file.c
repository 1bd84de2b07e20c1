/*
 * test_fault_edges_pid_file.c -- fault injection at the pool's edges: the pid file
 * (docs/reliability.md R11), on worker_app run as a real process tree, n = 8.
 *
 *   R11  the pid file: stale pid; live foreign pid (never signalled); a second manager
 *        (refused with a message naming the file and the holder; file unchanged;
 *        first untouched); a symlink (refused, target untouched); a FIFO (refused,
 *        nothing blocks).
 *
 * Every time is taken from CLOCK_MONOTONIC while polling /proc and the logs every
 * 1 ms. Each figure is printed as "FIGURE <scenario> <name> <value> <unit>" and
 * appended to $PM_FIGURES_FILE when it is set. PM_EDGES_FILTER=<cmocka pattern> runs
 * only the matching tests.
 *
 * The test process is a child subreaper (pool_fixture.h): workers orphaned by a
 * killed manager become its children, so their exit statuses are seen and nothing
 * leaks past a test.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "edges_support.h"
#include "fault_support.h"
#include "pool_fixture.h"

/* ---- R11: the pid file ---- */

/* Starts a manager with pid_fname=pid_file. */
static void start_with_pid_file(pf_app_t *app, const pf_app_t *c, const char *name, const char *log_name,
                                const char *pid_file, char param[PF_PATH_LEN + 16])
{
    char sock[PF_PATH_LEN], log[PF_PATH_LEN];
    snprintf(sock, sizeof sock, "%s/%s", c->dir, name);
    snprintf(log, sizeof log, "%s/%s", c->dir, log_name);
    snprintf(param, PF_PATH_LEN + 16, "pid_fname=%s", pid_file);
    pf_app_at(app, c->dir, sock, log);
    pf_start_app(app, (const char *const[]){"n_processes=8", param, NULL}, NULL);
}

/* The manager must be refused: exit non-zero within timeout_ms, having forked
 * nothing; the message names the file. Returns the time it took. */
static double expect_refused(pf_app_t *app, const char *pid_file, const char *reason, int timeout_ms)
{
    int status;
    double ms;
    CHECK_LOG((ms = pf_wait_child(app->pid, pf_now_ms(), timeout_ms, &status)) >= 0, app->log,
              "the manager was not refused within %d ms (blocked?)", timeout_ms);
    CHECK_LOG(WIFEXITED(status) && WEXITSTATUS(status) != 0, app->log,
              "refused manager: status 0x%x, expected a non-zero exit", status);
    char expect[PF_PATH_LEN + 128];
    snprintf(expect, sizeof expect, "worker_app: pm_manage: pid file %s %s", pid_file, reason);
    CHECK_LOG(pu_count_containing(app->log, expect) == 1, app->log, "no message '%s'", expect);
    CHECK_LOG(pu_count_containing(app->log, ") started") == 0 &&
                  pu_count_containing(app->log, "): initialized") == 0,
              app->log, "the refused manager initialized or forked");
    app->pid = -1;
    return ms;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mode == b->st_mode && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
           a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The pid file names pid, exactly "<pid>\n". */
static void expect_pid_file(const char *path, pid_t pid, const char *log)
{
    char expect[32];
    snprintf(expect, sizeof expect, "%d\n", (int)pid);
    char *text = pu_read_file(path, NULL);
    CHECK_LOG(text && strcmp(text, expect) == 0, log, "pid file holds '%s', expected '%d\\n'",
              text ? text : "(none)", (int)pid);
    free(text);
}

static void test_r11_stale_pid(void **state)
{
    pf_app_t *c = *state;
    pf_app_t app;
    char pid_file[PF_PATH_LEN], param[PF_PATH_LEN + 16], stale[128];
    snprintf(pid_file, sizeof pid_file, "%s/pm.pid", c->dir);
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    CHECK(dead > 0 && waitpid(dead, NULL, 0) == dead, "cannot make a dead pid");
    /* A stale file, longer than any pid: the new one must be written whole. */
    snprintf(stale, sizeof stale, "%d\nleft over by a crashed manager\n", (int)dead);
    CHECK(edges_write_file(pid_file, stale) == 0, "cannot write %s", pid_file);

    double t0 = pf_now_ms();
    start_with_pid_file(&app, c, "sock", "log", pid_file, param);
    CHECK_LOG(pf_wait_ready(&app, N_WORKERS, 10000, NULL) >= 0, app.log, "no pool with a stale pid file");
    pf_figure("R11", "stale_pid_start_to_pool", pf_now_ms() - t0, "ms");
    expect_pid_file(pid_file, app.pid, app.log);
    pf_stop(&app, 3000);
    CHECK(!pu_file_exists(pid_file), "the pid file is left after TERM");
}

/* A process of our own that records every signal it receives into a file. */
static int catcher_fd = -1;

static void catcher_handler(int signo)
{
    char buf[16];
    int n = 0;
    char digits[8];
    int d = 0;
    do {
        digits[d++] = (char)('0' + signo % 10);
        signo /= 10;
    } while (signo && d < 7);
    while (d)
        buf[n++] = digits[--d];
    buf[n++] = '\n';
    ssize_t ignored = write(catcher_fd, buf, (size_t)n);
    (void)ignored;
}

static pid_t start_catcher(const char *record)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    catcher_fd = open(record, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = catcher_handler;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    ssize_t ignored = write(catcher_fd, "ready\n", 6);
    (void)ignored;
    for (;;)
        pause();
}

static void test_r11_live_foreign_pid(void **state)
{
    pf_app_t *c = *state;
    pf_app_t app;
    char pid_file[PF_PATH_LEN], param[PF_PATH_LEN + 16], record[PF_PATH_LEN], text[32];
    snprintf(pid_file, sizeof pid_file, "%s/pm.pid", c->dir);
    snprintf(record, sizeof record, "%s/signals", c->dir);
    pid_t foreign = start_catcher(record);
    CHECK(foreign > 0, "cannot fork");
    CHECK(pu_wait_line(record, "ready", 1, 3000), "the catcher did not start");
    snprintf(text, sizeof text, "%d\n", (int)foreign);
    CHECK(edges_write_file(pid_file, text) == 0, "cannot write %s", pid_file);

    /* The manager's whole life: start, HUP (all workers replaced), TERM. */
    start_with_pid_file(&app, c, "sock", "log", pid_file, param);
    pid_t before[N_WORKERS], after[N_WORKERS];
    CHECK_LOG(pf_wait_ready(&app, N_WORKERS, 10000, before) >= 0, app.log,
              "no pool with a live foreign pid in the pid file");
    expect_pid_file(pid_file, app.pid, app.log);
    kill(app.pid, SIGHUP);
    double t_hup = pf_now_ms();
    for (;;) {
        int fresh = pf_pool_ready(&app, N_WORKERS, after);
        for (int i = 0; fresh && i < N_WORKERS; i++)
            fresh = !pu_has_pid(before, N_WORKERS, after[i]);
        if (fresh)
            break;
        CHECK_LOG(pf_now_ms() - t_hup < 5000, app.log, "the pool was not replaced after HUP");
        pf_tick();
    }
    expect_pid_file(pid_file, app.pid, app.log);
    pf_stop(&app, 3000);
    CHECK(!pu_file_exists(pid_file), "the pid file is left after TERM");

    /* Never signalled: alive, not stopped, nothing recorded. */
    pu_sleep_ms(50);
    char st = pu_proc_state(foreign);
    char *got = pu_read_file(record, NULL);
    CHECK(st == 'S' || st == 'R', "the foreign process is in state '%c'", st ? st : '?');
    CHECK(got && strcmp(got, "ready\n") == 0, "the foreign process received signals:\n%s",
          got ? got + strlen("ready\n") : "");
    free(got);
    /* The recorder works: a signal of our own shows up. */
    kill(foreign, SIGUSR1);
    snprintf(text, sizeof text, "%d", SIGUSR1);
    CHECK(pu_wait_line(record, text, 1, 2000), "the catcher does not record signals");
    pf_figure("R11", "foreign_signals_received", 0, "count");
    kill(foreign, SIGKILL);
    waitpid(foreign, NULL, 0);
}

static void test_r11_second_manager_refused(void **state)
{
    pf_app_t *c = *state;
    pf_app_t first, second;
    char pid_file[PF_PATH_LEN], param1[PF_PATH_LEN + 16], param2[PF_PATH_LEN + 16], reason[96];
    snprintf(pid_file, sizeof pid_file, "%s/pm.pid", c->dir);
    start_with_pid_file(&first, c, "sock", "log", pid_file, param1);
    pid_t workers[N_WORKERS], now[N_WORKERS];
    CHECK_LOG(pf_wait_ready(&first, N_WORKERS, 10000, workers) >= 0, first.log, "no first pool");
    expect_pid_file(pid_file, first.pid, first.log);
    struct stat st_before, st_after;
    CHECK(lstat(pid_file, &st_before) == 0, "no pid file");
    /* Each worker may log "initialized" before the manager logs its "started". */
    CHECK_LOG(pu_wait_containing(first.log, ") started", N_WORKERS, 3000), first.log, "not every start logged");
    size_t log_before = 0;
    free(pu_read_file(first.log, &log_before));

    /* Same pid file, its own socket (libfcgi would take over a unix socket path). */
    start_with_pid_file(&second, c, "sock2", "log2", pid_file, param2);
    snprintf(reason, sizeof reason, "is held by another manager (pid %d)", (int)first.pid);
    double ms = expect_refused(&second, pid_file, reason, 3000);
    pf_figure("R11", "second_manager_refused", ms, "ms");

    pu_sleep_ms(100);
    CHECK(lstat(pid_file, &st_after) == 0 && same_file(&st_before, &st_after),
          "the pid file changed (inode, size, mode or times)");
    expect_pid_file(pid_file, first.pid, first.log);
    size_t log_after = 0;
    free(pu_read_file(first.log, &log_after));
    CHECK_LOG(log_after == log_before, first.log, "the first manager logged something meanwhile");
    CHECK_LOG(pf_pool_ready(&first, N_WORKERS, now) && pu_same_pids(now, N_WORKERS, workers, N_WORKERS),
              first.log, "the first manager's pool changed");
    char out[PF_PATH_LEN];
    snprintf(out, sizeof out, "%s/response", c->dir);
    char *response = NULL;
    size_t len;
    int rc = pu_request(first.sock, "", out, 3000, &response, &len);
    pid_t served = pu_response_pid(response);
    free(response);
    CHECK_LOG(rc == 0 && pu_has_pid(workers, N_WORKERS, served), first.log,
              "the first manager does not serve: client exit %d", rc);
    pf_stop(&first, 3000);
    CHECK(!pu_file_exists(pid_file), "the pid file is left after TERM");
}

static void test_r11_symlink_refused(void **state)
{
    pf_app_t *c = *state;
    pf_app_t app;
    char pid_file[PF_PATH_LEN], target[PF_PATH_LEN], missing[PF_PATH_LEN], param[PF_PATH_LEN + 16];
    char link[PF_PATH_LEN];
    snprintf(pid_file, sizeof pid_file, "%s/pm.pid", c->dir);
    snprintf(target, sizeof target, "%s/precious", c->dir);
    snprintf(missing, sizeof missing, "%s/nothing-here", c->dir);
    CHECK(edges_write_file(target, "precious contents\n") == 0, "cannot write %s", target);
    struct stat before, after;
    CHECK(lstat(target, &before) == 0, "no target");
    CHECK(symlink(target, pid_file) == 0, "symlink: %s", strerror(errno));

    start_with_pid_file(&app, c, "sock", "log", pid_file, param);
    double ms = expect_refused(&app, pid_file, "is a symbolic link: refused", 3000);
    pf_figure("R11", "symlink_refused", ms, "ms");
    char *text = pu_read_file(target, NULL);
    CHECK(text && strcmp(text, "precious contents\n") == 0, "the symlink's target was changed: '%s'",
          text ? text : "(gone)");
    free(text);
    CHECK(lstat(target, &after) == 0 && same_file(&before, &after), "the target's inode or times changed");
    ssize_t n = readlink(pid_file, link, sizeof link - 1);
    CHECK(n > 0 && (link[n] = '\0', strcmp(link, target) == 0), "the symlink itself was changed");

    /* A dangling symlink: refused, and nothing created where it points. */
    CHECK(unlink(pid_file) == 0 && symlink(missing, pid_file) == 0, "symlink: %s", strerror(errno));
    unlink(app.log);
    start_with_pid_file(&app, c, "sock", "log", pid_file, param);
    expect_refused(&app, pid_file, "is a symbolic link: refused", 3000);
    CHECK(!pu_file_exists(missing), "a file was created through the dangling symlink");
}

static void test_r11_fifo_refused(void **state)
{
    pf_app_t *c = *state;
    pf_app_t app;
    char pid_file[PF_PATH_LEN], param[PF_PATH_LEN + 16];
    snprintf(pid_file, sizeof pid_file, "%s/pm.pid", c->dir);
    CHECK(mkfifo(pid_file, 0644) == 0, "mkfifo: %s", strerror(errno));
    start_with_pid_file(&app, c, "sock", "log", pid_file, param);
    /* Nothing blocks: refused as fast as the program starts. */
    double ms = expect_refused(&app, pid_file, "is not a regular file: refused", 1000);
    pf_figure("R11", "fifo_refused", ms, "ms");
    struct stat st;
    CHECK(lstat(pid_file, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO was replaced or removed");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, pf_setup, pf_teardown)
    const struct CMUnitTest tests[] = {
        T(test_r11_stale_pid),
        T(test_r11_live_foreign_pid),
        T(test_r11_second_manager_refused),
        T(test_r11_symlink_refused),
        T(test_r11_fifo_refused),
    };
#undef T
    /* PM_EDGES_FILTER=pattern runs only the matching tests (e.g. "test_r11*"). */
    pf_filter_from_env("PM_EDGES_FILTER");
    return cmocka_run_group_tests_name("fault_edges_pid_file", tests, pf_group_setup_no_sigpipe, NULL);
}
