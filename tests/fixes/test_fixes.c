/* Each bug of the original (BEHAVIOUR.md section D) that fcgi-pm fixes, provoked on
 * purpose against real workers: signals during shutdown, a TERM during worker init,
 * a TERM after pm_post_dispatch's checks but before accept, failing forks, a crash
 * loop, and start_delay with more than one worker. */
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

#include "pool_fixture.h"

static void expect_line_within(const pf_app_t *app, const char *needle, int count, int ms)
{
    if (!pu_wait_containing(app->log, needle, count, ms)) {
        char *log = pu_read_file(app->log, NULL);
        fail_msg("no %d× \"%s\" within %d ms; log:\n%s", count, needle, ms, log ? log : "");
    }
}

/* The first pid in a line containing "server (pid N) started". */
static pid_t first_worker(const pf_app_t *app)
{
    pid_t pids[PU_MAX_PIDS];
    int n = pf_started_pids(app, pids, PU_MAX_PIDS);
    assert_true(n > 0);
    return pids[0];
}

/* The original runs its shutdown inside the signal handler and resets HUP to its
 * default: a HUP during shutdown kills the manager, leaving workers and pid file. */
static void test_signals_during_shutdown_are_ignored(void **state)
{
    pf_app_t *app = *state;
    const char *env[] = {"WORKER_APP_BLOCK_TERM=1", NULL};
    pf_start_app(app, (const char *[]){"n_processes=2", "die_timeout=1", NULL}, env);
    expect_line_within(app, "TERM and HUP blocked", 2, 3000);
    kill(app->pid, SIGTERM);
    expect_line_within(app, "received signal TERM", 1, 2000);
    for (int i = 0; i < 5; i++) {
        kill(app->pid, SIGHUP);
        kill(app->pid, SIGTERM);
        pu_sleep_ms(20);
    }
    int status;
    assert_true(pu_wait_exit(app->pid, 5000, &status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1); /* wait timeout, not killed by HUP */
    assert_int_equal(pu_count_containing(app->log, "received signal TERM"), 1);
    assert_int_equal(pu_count_containing(app->log, "sending TERM to PIDs"), 1);
    assert_int_equal(pu_count_containing(app->log, "): wait timeout"), 1);
}

/* A TERM that reaches a worker before its init is done must neither run the
 * manager's handling in the child (the original deleted the manager's pid file) nor
 * be lost: the worker stops as soon as it is initialised. */
static void test_term_during_worker_init(void **state)
{
    pf_app_t *app = *state;
    char pid_param[PU_PATH_MAX + 32], expect[64];
    const char *env[] = {"WORKER_APP_INIT_SLEEP_MS=300", NULL};
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s/pm.pid", app->dir);
    pf_start_app(app, (const char *[]){"n_processes=1", pid_param, NULL}, env);
    expect_line_within(app, "hook sleeps 300 ms", 1, 3000);
    pid_t worker = first_worker(app);
    kill(worker, SIGTERM);
    snprintf(expect, sizeof expect, "server (pid %d) exited with status 0", (int)worker);
    expect_line_within(app, expect, 1, 2000);
    assert_int_equal(pu_count_containing(app->log, "loop ended"), 1);
    char path[PU_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/pm.pid", app->dir);
    char *content = pu_read_file(path, NULL);
    assert_non_null(content); /* the manager's pid file is untouched */
    assert_int_equal(atoi(content), app->pid);
    free(content);
    expect_line_within(app, "server (pid", 4, 3000); /* replaced: 2 started, 2 initialized */
    kill(app->pid, SIGTERM);
    int status;
    assert_true(pu_wait_exit(app->pid, 3000, &status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* A TERM landing after pm_post_dispatch's checks but before the next accept was lost
 * in the original (the worker sat in accept until die_timeout). */
static void test_term_after_checks_before_accept(void **state)
{
    pf_app_t *app = *state;
    char expect[64];
    const char *env[] = {"WORKER_APP_POST_SLEEP_MS=300", NULL};
    pf_start_app(app, (const char *[]){"n_processes=1", "die_timeout=30", NULL}, env);
    expect_line_within(app, "server (pid", 2, 3000);
    pid_t worker = first_worker(app);
    pu_request_t req;
    char out[PU_PATH_MAX + 16];
    snprintf(out, sizeof out, "%s/response", app->dir);
    assert_int_equal(pu_request_start(&req, app->sock, "", out), 0);
    expect_line_within(app, "hook sleeps 300 ms", 1, 3000);
    long long sent = pu_now_ms();
    kill(worker, SIGTERM);
    snprintf(expect, sizeof expect, "server (pid %d) exited with status 0", (int)worker);
    expect_line_within(app, expect, 1, 2000);
    assert_true(pu_now_ms() - sent < 2000);
    assert_int_equal(pu_count_containing(app->log, "loop ended"), 1);
    char *response;
    size_t len;
    assert_int_equal(pu_request_finish(&req, 2000, &response, &len), 0);
    assert_non_null(strstr(response, "Hello from worker"));
    free(response);
}

/* A failed fork aborted the original. fcgi-pm logs it, retries with backoff, and
 * fills the pool once forks work again. */
static void test_fork_failure_is_retried(void **state)
{
    pf_app_t *app = *state;
    char flag[PU_PATH_MAX + 16], env_flag[PU_PATH_MAX + 32], env_preload[PU_PATH_MAX + 32];
    snprintf(flag, sizeof flag, "%s/nofork", app->dir);
    FILE *f = fopen(flag, "w");
    fclose(f);
    snprintf(env_flag, sizeof env_flag, "FAIL_FORK_WHILE=%s", flag);
    snprintf(env_preload, sizeof env_preload, "LD_PRELOAD=%s", FAIL_FORK_SHIM);
    const char *env[] = {env_flag, env_preload, NULL};
    pf_start_app(app, (const char *[]){"n_processes=2", NULL}, env);
    expect_line_within(app, "): fork: Resource temporarily unavailable", 2, 3000);
    pu_sleep_ms(1000);
    assert_true(pu_alive(app->pid));
    int failures = pu_count_containing(app->log, "): fork: Resource temporarily unavailable");
    assert_true(failures <= 2 * 6); /* backoff: 0.1, 0.2, 0.4, 0.8 s... per slot */
    unlink(flag);
    expect_line_within(app, "): initialized", 3, 3000); /* manager + 2 workers */
    kill(app->pid, SIGTERM);
    int status;
    assert_true(pu_wait_exit(app->pid, 3000, &status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* The original respawned a crashing worker ~1000 times a second. */
static void test_crash_loop_backs_off(void **state)
{
    pf_app_t *app = *state;
    const char *env[] = {"WORKER_APP_CRASH_AT_START=1", NULL};
    pf_start_app(app, (const char *[]){"n_processes=2", NULL}, env);
    pu_sleep_ms(2000);
    int forks = pu_count_containing(app->log, ") started");
    /* Both slots fail at once: the budget (n early deaths) is spent, and from then on
     * the pool refills one crashed slot per second: 2 + about 2 forks in 2 s. */
    assert_true(forks >= 3);
    assert_true(forks <= 5);
    assert_true(pu_count_containing(app->log, "exited with status 768") >= 3);
    assert_int_equal(pu_count_containing(app->log, "): crash loop: 2 workers failed within 1 s of starting "
                                                "in the last 10 s; respawning at most one per second"), 1);
    long long sent = pu_now_ms();
    kill(app->pid, SIGTERM);
    int status;
    assert_true(pu_wait_exit(app->pid, 3000, &status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(pu_now_ms() - sent < 1000);
}

/* Per slot, without the pool-wide budget: respawned at once, then after 0.1, 0.2,
 * 0.4 and 0.8 s. A SIGKILLed worker is no crash: replaced at once. */
static void test_backoff_per_slot(void **state)
{
    pf_app_t *app = *state;
    const char *env[] = {"WORKER_APP_CRASH_AT_START=1", NULL};
    pf_start_app(app, (const char *[]){"n_processes=1", "crash_budget=1000", NULL}, env);
    pu_sleep_ms(2000);
    int forks = pu_count_containing(app->log, ") started");
    assert_true(forks >= 4); /* at 0, 0.1, 0.3, 0.7, 1.5 s */
    assert_true(forks <= 6);
    assert_int_equal(pu_count_containing(app->log, "crash loop"), 0);
    kill(app->pid, SIGTERM);
    int status;
    assert_true(pu_wait_exit(app->pid, 3000, &status));
}

static void test_sigkill_is_no_crash(void **state)
{
    pf_app_t *app = *state;
    char expect[64];
    pf_start_app(app, (const char *[]){"n_processes=1", "backoff_min=5", "backoff_max=5", NULL}, NULL);
    for (int round = 0; round < 5; round++) {
        expect_line_within(app, ") started", round + 1, 3000);
        pid_t pids[PU_MAX_PIDS];
        int n = pf_started_pids(app, pids, PU_MAX_PIDS);
        char ready[96];
        snprintf(ready, sizeof ready, "FastCGI: server (pid %d): initialized", (int)pids[n - 1]);
        expect_line_within(app, ready, 1, 2000); /* killed before that would be a crash at start */
        kill(pids[n - 1], SIGKILL);
        snprintf(expect, sizeof expect, "server (pid %d) exited with status 9", (int)pids[n - 1]);
        expect_line_within(app, expect, 1, 2000);
    }
    /* Five kills within a second of each start, and each replaced at once (a 5 s
     * backoff would have stopped this loop). */
    expect_line_within(app, ") started", 6, 1000);
    kill(app->pid, SIGTERM);
    int status;
    assert_true(pu_wait_exit(app->pid, 3000, &status));
}

/* An application that cannot start and exits 0 (no socket to serve, say) is a crash
 * loop too, though its status says nothing went wrong. */
static void test_exit_zero_at_start_backs_off(void **state)
{
    pf_app_t *app = *state;
    const char *env[] = {"WORKER_APP_EXIT_AT_START=0", NULL};
    pf_start_app(app, (const char *[]){"n_processes=2", NULL}, env);
    pu_sleep_ms(2000);
    int forks = pu_count_containing(app->log, ") started");
    assert_true(forks >= 3);
    assert_true(forks <= 5);
    assert_int_equal(pu_count_containing(app->log, "): crash loop: 2 workers failed"), 1);
}

/* A worker that served its requests and exits 0 (max_requests) is no crash, however
 * short its life: it is replaced at once, every time. */
static void test_short_lived_servers_are_no_crash(void **state)
{
    pf_app_t *app = *state;
    pf_start_app(app, (const char *[]){"n_processes=1", "max_requests=1", NULL}, NULL);
    expect_line_within(app, "): initialized", 2, 3000);
    char out[PU_PATH_MAX + 16];
    snprintf(out, sizeof out, "%s/response", app->dir);
    long long t0 = pu_now_ms();
    for (int i = 0; i < 6; i++) {
        char *response;
        size_t len;
        assert_int_equal(pu_request(app->sock, "", out, 3000, &response, &len), 0);
        assert_non_null(strstr(response, "Hello from worker"));
        free(response);
    }
    assert_true(pu_now_ms() - t0 < 3000); /* no backoff pause between them */
    expect_line_within(app, "safe exit after max_requests (1)", 6, 2000);
    assert_int_equal(pu_count_containing(app->log, "crash loop"), 0);
}

/* The manager's stderr is a pipe whose reader went away: it must not die of SIGPIPE.
 * (host_app, not worker_app: libfcgi's FCGX_Init would ignore SIGPIPE for it.) */
static void test_lost_log_reader(void **state)
{
    pf_app_t *app = *state;
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    app->pid = fork();
    if (app->pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        signal(SIGPIPE, SIG_DFL); /* as a program that never thought about it */
        execl(HOST_APP, HOST_APP, app->dir, "1", "handler", (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    char buf[512];
    assert_true(read(pipefd[0], buf, sizeof buf) > 0); /* it has started logging */
    close(pipefd[0]);                                   /* the reader goes away */
    for (int i = 0; i < 3; i++) {
        kill(app->pid, SIGHUP); /* each HUP logs, into the broken pipe */
        pu_sleep_ms(100);
    }
    assert_true(pu_alive(app->pid));
    kill(app->pid, SIGTERM);
    int status;
    assert_true(pu_wait_exit(app->pid, 3000, &status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* FCGI::Engine::ProcManager's start_delay loop forked only the first worker. */
static void test_start_delay_starts_every_worker(void **state)
{
    pf_app_t *app = *state;
    long long t0 = pu_now_ms();
    pf_start_app(app, (const char *[]){"n_processes=3", "start_delay=0.3", NULL}, NULL);
    expect_line_within(app, ") started", 1, 2000);
    pu_sleep_ms(100);
    assert_int_equal(pu_count_containing(app->log, ") started"), 1);
    expect_line_within(app, ") started", 3, 3000);
    assert_true(pu_now_ms() - t0 >= 600);
    kill(app->pid, SIGTERM);
    int status;
    assert_true(pu_wait_exit(app->pid, 3000, &status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signals_during_shutdown_are_ignored, pf_setup, pf_teardown),
        cmocka_unit_test_setup_teardown(test_term_during_worker_init, pf_setup, pf_teardown),
        cmocka_unit_test_setup_teardown(test_term_after_checks_before_accept, pf_setup, pf_teardown),
        cmocka_unit_test_setup_teardown(test_fork_failure_is_retried, pf_setup, pf_teardown),
        cmocka_unit_test_setup_teardown(test_crash_loop_backs_off, pf_setup, pf_teardown),
        cmocka_unit_test_setup_teardown(test_backoff_per_slot, pf_setup, pf_teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_is_no_crash, pf_setup, pf_teardown),
        cmocka_unit_test_setup_teardown(test_exit_zero_at_start_backs_off, pf_setup, pf_teardown),
        cmocka_unit_test_setup_teardown(test_short_lived_servers_are_no_crash, pf_setup, pf_teardown),
        cmocka_unit_test_setup_teardown(test_lost_log_reader, pf_setup, pf_teardown),
        cmocka_unit_test_setup_teardown(test_start_delay_starts_every_worker, pf_setup, pf_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
