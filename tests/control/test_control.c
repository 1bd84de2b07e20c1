/*
 * test_control.c -- the edges of the life cycle, and the API a binding or a host
 * drives the manager through (issue 13), with control_app as real processes and
 * cgi-fcgi as the client:
 *   - TERM: the pid file stays locked until the last worker is reaped, new
 *     connections are refused at once, workers SIGKILLed at die_timeout are logged;
 *   - a failed pm_manage leaves the environment, title, mask and pid file as they were;
 *   - a failure of the manager's own wait ends it in order, never in a spin;
 *   - READY=1 only once every worker can serve; start_timeout gives up; HUP clears
 *     the crash backoff;
 *   - pm_request_stop / pm_request_reload drive a no_signals manager;
 *   - worker_exit "_exit" skips the host's atexit handlers in workers;
 *   - a busy request's poll is never interrupted by TERM or HUP;
 *   - fork hooks, exits told by return value, pm_errno, pm_version_number,
 *     pm_parameter_info, parameters fixed once running, SA_ONSTACK.
 *
 * On the pool fixture (tests/support/pool_fixture.h) with control_app as the program;
 * here only what is control_app's: a NOTIFY_SOCKET receiver, connect(2)'s errno, and
 * its answers and reports parsed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "fcgi_pm.h"
#include "pool_fixture.h"

/* The running test's stand-in for systemd's NOTIFY_SOCKET, or -1. */
static int notify_fd = -1;

/* pf_setup, with control_app as the program. */
static int setup(void **state)
{
    if (pf_setup(state) < 0)
        return -1;
    ((pf_app_t *)*state)->program = CONTROL_APP;
    return 0;
}

/* Closes the NOTIFY_SOCKET stand-in, then pf_teardown. */
static int teardown(void **state)
{
    if (notify_fd >= 0)
        close(notify_fd);
    notify_fd = -1;
    return pf_teardown(state);
}

/* The manager must exit with code within timeout_ms. */
static void expect_exit(pf_app_t *app, int timeout_ms, int code)
{
    CHECK(pf_wait_exit(app, timeout_ms), "manager %d did not exit within %d ms", (int)app->pid,
          timeout_ms);
    pf_check_exit_code(app, code);
}

/* A second control_app in app's directory, on its socket, logging to dir/log2 (which
 * pf_teardown checks too): started with params and env, and its exit awaited. */
static void run_second(const pf_app_t *app, pf_app_t *second, const char *const params[],
                       const char *const env[])
{
    char log2[PF_PATH_LEN];
    pf_app_at(second, app->dir, app->sock, pf_path(log2, app, "log2"));
    second->program = CONTROL_APP;
    pf_start_app(second, params, env);
    CHECK_LOG(pf_wait_exit(second, 3000), second->log, "second manager %d did not exit",
              (int)second->pid);
}

/* "NOTIFY_SOCKET=<dir>/notify" into buf (NOTIFY_ENV_LEN bytes); buf. */
#define NOTIFY_ENV_LEN (PF_PATH_LEN + 16)
static char *notify_env(char *buf, const pf_app_t *app)
{
    char path[PF_PATH_LEN];
    snprintf(buf, NOTIFY_ENV_LEN, "NOTIFY_SOCKET=%s", pf_path(path, app, "notify"));
    return buf;
}

/* A datagram socket at dir/notify, as systemd's NOTIFY_SOCKET. */
static void bind_notify(const pf_app_t *app)
{
    char path[PF_PATH_LEN];
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", pf_path(path, app, "notify"));
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(notify_fd >= 0);
    assert_int_equal(bind(notify_fd, (struct sockaddr *)&addr, sizeof addr), 0);
}

/* Waits up to timeout_ms for a datagram containing what: 1, or 0. */
static int wait_notify(const char *what, int timeout_ms)
{
    long long until = pu_now_ms() + timeout_ms;
    for (long long left; (left = until - pu_now_ms()) > 0;) {
        struct pollfd p = {notify_fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        char buf[512];
        ssize_t n = recv(notify_fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        if (strstr(buf, what))
            return 1;
    }
    return 0;
}

/* One request that completes within 3 s: the client's exit code; the response
 * (malloc'd) in *response when it is non-NULL. */
static int ask(pf_app_t *app, const char *query, char **response)
{
    pu_request_t req;
    pf_start_request(app, &req, query);
    return pu_request_finish(&req, 3000, response, NULL);
}

/* connect(2) to the unix socket: 0, or the errno. */
static int connect_errno(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 ? 0 : errno;
    close(fd);
    return rc;
}

/* The value after "waited " and "eintr " in a control_app poll answer. */
static void parse_waited(const char *response, long *waited, int *eintr)
{
    const char *p = response ? strstr(response, "waited ") : NULL;
    *waited = -1;
    *eintr = -1;
    if (p)
        sscanf(p, "waited %ld eintr %d", waited, eintr);
}

/* ---- TERM: stop in order ---- */

/* During the graceful stop the pid file stays locked (a second manager is refused),
 * new connections are refused at once, and the busy request is finished, whole and
 * uninterrupted; the pid file goes with the last worker. */
static void test_term_stops_in_order(void **state)
{
    pf_app_t *app = *state;
    char pid_param[PF_PATH_LEN + 16], line[PF_LINE_LEN];
    pid_t workers[2];
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    pf_start_pool(app, 2, (const char *[]){"die_timeout=10", pid_param, NULL}, NULL, workers);

    pu_request_t busy;
    pf_start_request(app, &busy, "poll_ms=1500");
    pu_sleep_ms(300);
    kill(app->pid, SIGTERM);
    CHECK(pu_wait_containing(app->log, pf_mline(line, app, "sending TERM to PIDs"), 1, 2000),
          "no TERM sent to the workers");
    pu_sleep_ms(100);

    assert_int_equal(connect_errno(app->sock), ECONNREFUSED);
    assert_true(pu_file_exists(app->pid_file));
    pf_app_t second;
    run_second(app, &second, (const char *[]){"n_processes=1", pid_param, NULL}, NULL);
    pf_check_exit_code(&second, 1);
    CHECK_LOG(pu_count_containing(second.log, "is held by another manager") >= 1, second.log,
              "the second manager did not find the pid file held");
    assert_true(pu_alive(app->pid));

    char *response = NULL;
    size_t len = 0;
    assert_int_equal(pu_request_finish(&busy, 5000, &response, &len), 0);
    long waited;
    int eintr;
    parse_waited(response, &waited, &eintr);
    free(response);
    assert_true(waited >= 1500);
    assert_int_equal(eintr, 0);
    expect_exit(app, 3000, 0);
    assert_false(pu_file_exists(app->pid_file));
    assert_int_equal(pu_count_containing(app->log, "dying: safe exit from signal TERM"), 1);
}

/* A worker still busy at die_timeout is SIGKILLed, reaped and logged as any other. */
static void test_sigkilled_workers_are_logged(void **state)
{
    pf_app_t *app = *state;
    pid_t worker;
    pf_start_pool(app, 1, (const char *[]){"die_timeout=1", NULL}, NULL, &worker);
    pu_request_t busy;
    pf_start_request(app, &busy, "poll_ms=4000");
    pu_sleep_ms(300);
    kill(app->pid, SIGTERM);
    expect_exit(app, 4000, 1);
    CHECK(pf_exit_lines(app, worker, 9) == 1, "no single exit line with status 9 for worker %d",
          (int)worker);
    assert_int_equal(pu_count_containing(app->log, "): wait timeout"), 1);
    assert_false(pu_exists(worker));
}

/* Idle workers waiting in pm_accept on the socket the manager shuts down are not
 * signalled at a TERM: the shutdown ends their wait. */
static void test_term_spares_accepting_workers(void **state)
{
    pf_app_t *app = *state;
    pid_t workers[3];
    pf_start_pool(app, 3, (const char *[]){"die_timeout=20", NULL}, NULL, workers);
    pu_sleep_ms(100);
    kill(app->pid, SIGTERM);
    expect_exit(app, 5000, 0);
    CHECK_LOG(pu_count_containing(app->log, "loop ended, TERM received 0") == 3, app->log,
              "not every idle worker left by the shutdown alone");
}

/* One that accepts on a socket of its own under the inherited number is signalled
 * 50 ms later all the same, and its handler releases that socket too: the stop
 * does not wait for die_timeout. */
static void test_stop_reaches_own_listener(void **state)
{
    pf_app_t *app = *state;
    pid_t workers[2];
    pf_start_pool(app, 2, (const char *[]){"die_timeout=20", NULL},
                  (const char *[]){"CONTROL_OWN_LISTENER=1", NULL}, workers);
    CHECK(pu_wait_containing(app->log, "own listener", 2, 3000), "the workers did not take sockets of their own");
    pu_sleep_ms(100);
    kill(app->pid, SIGTERM);
    expect_exit(app, 5000, 0); /* not die_timeout's 20 s */
    assert_int_equal(pu_count_containing(app->log, "): wait timeout"), 0);
    assert_int_equal(pu_count_containing(app->log, "loop ended, TERM received 1"), 2);
}

/* ---- a failed pm_manage changes nothing ---- */

/* control_app's report after a failed pm_manage, the log at path from "failed " on,
 * must start with expect. */
static void check_failure_report(const char *path, const char *expect)
{
    char *text = pu_read_file(path, NULL);
    const char *line = text ? strstr(text, "failed ") : NULL;
    int same = line && strncmp(line, expect, strlen(expect)) == 0;
    if (!same)
        print_error("got:    %.*s\nwanted: %s\n", line ? (int)strcspn(line, "\n") : 6,
                    line ? line : "(none)", expect);
    free(text);
    CHECK_LOG(same, path, "not the report expected");
}

/* Refused for a held pid file: NOTIFY_SOCKET is still there, title and mask as before. */
static void test_failed_manage_when_locked(void **state)
{
    pf_app_t *app = *state;
    char pid_param[PF_PATH_LEN + 16], env[NOTIFY_ENV_LEN], notify[PF_PATH_LEN];
    char expect[PF_PATH_LEN + 96];
    pid_t worker;
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    pf_start_pool(app, 1, (const char *[]){pid_param, NULL}, NULL, &worker);
    pf_app_t second;
    run_second(app, &second, (const char *[]){"n_processes=1", pid_param, NULL},
               (const char *[]){notify_env(env, app), "CONTROL_LATE_PIDFILE=1", NULL});
    pf_check_exit_code(&second, 1);
    snprintf(expect, sizeof expect,
             "failed %d notify %s comm control_app blocked 0000000000000000 chld default",
             PM_ELOCKED, pf_path(notify, app, "notify"));
    check_failure_report(second.log, expect);
}

/* Refused after the pid file was taken and the title set (the manager_init hook
 * made SIGCHLD ignored): the pid file is gone and unlocked, the rest as before. */
static void test_failed_manage_after_effects(void **state)
{
    pf_app_t *app = *state;
    char pid_param[PF_PATH_LEN + 16], env[NOTIFY_ENV_LEN], notify[PF_PATH_LEN];
    char expect[PF_PATH_LEN + 96];
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    pf_start_app(app, (const char *[]){"n_processes=2", pid_param, NULL},
                 (const char *[]){notify_env(env, app), "CONTROL_LATE_PIDFILE=1",
                                  "CONTROL_IGNORE_CHLD=1", NULL});
    expect_exit(app, 3000, 1);
    snprintf(expect, sizeof expect,
             "failed %d notify %s comm control_app blocked 0000000000000000 chld default pidfile absent",
             PM_ESTATE, pf_path(notify, app, "notify"));
    check_failure_report(app->log, expect);
    assert_false(pu_file_exists(app->pid_file));
}

/* pm_manage's own set-up fails (no descriptor to spare): the pid file the program
 * took before it stays the program's, held. */
static void test_failed_setup_keeps_hosts_pid_file(void **state)
{
    pf_app_t *app = *state;
    char pid_param[PF_PATH_LEN + 16], expect[PF_PATH_LEN + 96];
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    pf_start_app(app, (const char *[]){"n_processes=2", pid_param, NULL},
                 (const char *[]){"CONTROL_FD_LIMIT=1", NULL});
    expect_exit(app, 3000, 1);
    CHECK(pu_count_containing(app->log, "(errno 24)") == 1, "pm_manage did not fail with EMFILE");
    snprintf(expect, sizeof expect, "failed %d notify - comm control_app blocked 0000000000000000 chld default pidfile held",
             PM_ESYS);
    check_failure_report(app->log, expect);
}

/* The manager_init hook asks to exit (no_exit 1): pm_manage returns PM_MANAGER_DONE
 * with the process as it found it, the pid file it took removed. */
static void test_exit_from_manager_init_undoes(void **state)
{
    pf_app_t *app = *state;
    char pid_param[PF_PATH_LEN + 16], env[NOTIFY_ENV_LEN], notify[PF_PATH_LEN];
    char expect[PF_PATH_LEN + 96];
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    pf_start_app(app, (const char *[]){"n_processes=2", "no_exit=1", pid_param, NULL},
                 (const char *[]){notify_env(env, app), "CONTROL_LATE_PIDFILE=1", "CONTROL_INIT_PM_EXIT=3", NULL});
    expect_exit(app, 3000, 3);
    snprintf(expect, sizeof expect,
             "failed %d notify %s comm control_app blocked 0000000000000000 chld default pidfile absent",
             PM_MANAGER_DONE, pf_path(notify, app, "notify"));
    check_failure_report(app->log, expect);
    assert_false(pu_file_exists(app->pid_file));
}

/* ---- the manager's own wait ---- */

/* A manager_init hook closes the manager's descriptors: its wait fails. The failure
 * is logged, the workers are stopped and reaped, and it exits 1: no spin. */
static void test_wait_failure_is_fatal(void **state)
{
    pf_app_t *app = *state;
    char line[PF_LINE_LEN];
    /* pf_start_pool's lines without its check of the manager's children: the loop
     * fails at once, and the workers may be gone before the check sees them. */
    pf_start_app(app, (const char *[]){"n_processes=2", "die_timeout=2", NULL},
                 (const char *[]){"CONTROL_CLOSE_FDS=1", NULL});
    CHECK(pu_wait_line(app->log, pf_mline(line, app, "initialized"), 1, PF_T_START),
          "manager %d never logged initialized", (int)app->pid);
    for (int i = 1; i <= 2; i++)
        CHECK(pf_wait_started(app, i) > 0, "worker %d of 2 never started and initialized", i);
    expect_exit(app, 5000, 1);
    assert_int_equal(pu_count_containing(app->log, "epoll_wait: Bad file descriptor"), 1);
    assert_int_equal(pu_count_containing(app->log, "exited with status"), 2);
    assert_int_equal(pu_count_containing(app->log, "dying: the manager's event loop failed"), 1);
    pu_sleep_ms(50);
    pu_reap_any();
    assert_int_equal(pu_children(getpid(), (pid_t[PU_MAX_PIDS]){0}, PU_MAX_PIDS), 0);
}

/* ---- readiness ---- */

/* READY=1 once the workers can serve: after their server_init hook, not at fork. */
static void test_ready_after_worker_init(void **state)
{
    pf_app_t *app = *state;
    char env[NOTIFY_ENV_LEN];
    bind_notify(app);
    double t0 = pf_now_ms();
    pf_start_app(app, (const char *[]){"n_processes=2", NULL},
                 (const char *[]){notify_env(env, app), "CONTROL_INIT_SLEEP_MS=700", NULL});
    CHECK(wait_notify("READY=1", 5000), "no READY=1 within 5 s");
    double after = pf_now_ms() - t0;
    print_message("READY=1 after %.0f ms (init takes 700)\n", after);
    assert_true(after >= 650);
    /* started + initialized (each worker reports ready just before its line) */
    assert_true(pu_wait_containing(app->log, "server (pid", 2 * 2, 2000));
    pf_stop(app, 3000);
}

/* Exec mode: READY=1 once the execs succeeded; a program that cannot even be
 * exec'd never makes the pool ready, and start_timeout gives up with exit 1. */
static void test_exec_readiness_and_start_timeout(void **state)
{
    pf_app_t *app = *state;
    char env[NOTIFY_ENV_LEN];
    bind_notify(app);
    pf_start_app(app, (const char *[]){"n_processes=2", "start_timeout=5", NULL},
                 (const char *[]){notify_env(env, app), "CONTROL_EXEC=/bin/sleep",
                                  "CONTROL_EXEC_ARG=30", NULL});
    CHECK(wait_notify("READY=1", 4000), "no READY=1 within 4 s");
    pf_stop(app, 3000);

    double t0 = pf_now_ms();
    pf_start_app(app, (const char *[]){"n_processes=2", "start_timeout=1", NULL},
                 (const char *[]){env, "CONTROL_EXEC=/nonexistent/program", NULL});
    double took = pf_wait_manager_exit(app, t0, 6000);
    CHECK(took >= 0, "manager %d did not exit within 6 s", (int)app->pid);
    pf_check_exit_code(app, 1);
    CHECK(took >= 900, "exited after %.0f ms, before start_timeout (1 s)", took);
    CHECK(pu_count_containing(app->log, "start timeout: 0 of 2 workers ready after 1 s") == 1,
          "no single start timeout line");
    CHECK(pu_count_containing(app->log, "exec: /nonexistent/program: No such file or directory") >= 2,
          "fewer than 2 failed execs logged");
    assert_false(wait_notify("READY=1", 100));

    /* A HUP while the pool has never been ready does not end the start's timeout. */
    t0 = pf_now_ms();
    pf_start_app(app, (const char *[]){"n_processes=2", "start_timeout=1", NULL},
                 (const char *[]){env, "CONTROL_EXEC=/nonexistent/program", NULL});
    pu_sleep_ms(300);
    kill(app->pid, SIGHUP);
    took = pf_wait_manager_exit(app, t0, 6000);
    CHECK(took >= 0, "manager %d did not exit within 6 s after a HUP while starting", (int)app->pid);
    pf_check_exit_code(app, 1);
    assert_false(wait_notify("RELOADING=1", 100));
}

/* Exec mode, workers started 0.5 s apart, each 1.5 s in its init before the exec:
 * a worker's exec pipe, closed by the manager, is held by the later children until
 * their own exec. The manager must not spin on it. */
static void test_exec_pipes_do_not_spin(void **state)
{
    pf_app_t *app = *state;
    char env[NOTIFY_ENV_LEN];
    bind_notify(app);
    pf_start_app(app, (const char *[]){"n_processes=3", "start_delay=0.5", NULL},
                 (const char *[]){notify_env(env, app), "CONTROL_EXEC=/bin/sleep", "CONTROL_EXEC_ARG=30",
                                  "CONTROL_INIT_SLEEP_MS=1500", NULL});
    CHECK(wait_notify("READY=1", 6000), "no READY=1 within 6 s");
    char stat_path[64], *stat;
    snprintf(stat_path, sizeof stat_path, "/proc/%d/stat", (int)app->pid);
    stat = pu_read_file(stat_path, NULL);
    assert_non_null(stat);
    unsigned long utime = 0, stime = 0;
    const char *p = strrchr(stat, ')');
    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
    free(stat);
    double cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    print_message("manager CPU over the start: %.2f s\n", cpu_s);
    CHECK(cpu_s < 0.3, "the manager used %.2f s of CPU while the execs were pending", cpu_s);
    pf_stop(app, 3000);
}

/* A connection that brings no request (a probe) leaves the worker idle: a HUP
 * replaces it at once, and with the socket left listening a TERM ends it at once. */
static void test_probe_leaves_worker_idle(void **state)
{
    pf_app_t *app = *state;
    pid_t worker;
    pf_start_pool(app, 1, (const char *[]){"stop_listening=0", "die_timeout=10", NULL}, NULL, &worker);
    CHECK(connect_errno(app->sock) == 0, "cannot connect");
    pu_sleep_ms(100);
    kill(app->pid, SIGHUP);
    CHECK(pf_wait_exit_line(app, worker, 0), "worker %d not replaced after a probe and a HUP", (int)worker);
    CHECK(pu_wait_containing(app->log, ") started", 2, PF_T_LINE), "no new worker");
    CHECK(pu_wait_containing(app->log, "): initialized", 3, PF_T_LINE), "new worker not initialized");
    CHECK(connect_errno(app->sock) == 0, "cannot connect");
    pu_sleep_ms(100);
    double t0 = pf_now_ms();
    kill(app->pid, SIGTERM);
    double took = pf_wait_manager_exit(app, t0, 5000);
    CHECK(took >= 0 && took < 2000, "TERM took %.0f ms after a probe", took);
    pf_check_exit_code(app, 0);
}

/* A HUP clears the crash backoff: the slot that failed is refilled at once. */
static void test_hup_resets_crash_backoff(void **state)
{
    pf_app_t *app = *state;
    pf_start_app(app,
                 (const char *[]){"n_processes=1", "min_uptime=10", "backoff_min=5",
                                  "backoff_max=5", NULL},
                 (const char *[]){"CONTROL_INIT_EXIT=3", NULL});
    CHECK(pu_wait_containing(app->log, "exited with status 768", 1, 3000), "no worker exited 3");
    pu_sleep_ms(200);
    CHECK(pu_count_containing(app->log, ") started") == 1, "not backing off"); /* for 5 s */
    long long hup = pu_now_ms();
    kill(app->pid, SIGHUP);
    CHECK(pu_wait_containing(app->log, ") started", 2, 2000), "no refill within 2 s of HUP");
    print_message("refilled %lld ms after HUP (backoff 5 s)\n", pu_now_ms() - hup);
    assert_true(pu_now_ms() - hup < 2000);
    pf_stop(app, 3000);
}

/* ---- a host that owns the signals ---- */

/* no_signals 1: the program's own handlers call pm_request_reload and
 * pm_request_stop, and the manager reloads and stops in order. */
static void test_no_signals_driven_by_requests(void **state)
{
    pf_app_t *app = *state;
    char line[PF_LINE_LEN];
    pid_t workers[2];
    pf_start_pool(app, 2, (const char *[]){"no_signals=1", NULL},
                  (const char *[]){"CONTROL_OWN_SIGNALS=1", NULL}, workers);
    kill(app->pid, SIGHUP);
    CHECK(pu_wait_containing(app->log, pf_mline(line, app, "sending TERM to PIDs"), 1, 2000),
          "no reload after HUP");
    CHECK(pu_wait_containing(app->log, ") started", 4, 3000), "the pool was not restarted");
    /* The manager's line and four workers' (the old two, the new two): "server (pid"
     * would count the exits too, and a stop sent before a new worker is up meets it
     * in its start. */
    CHECK(pu_wait_containing(app->log, "): initialized", 1 + 4, 3000), "the new workers did not initialize");
    kill(app->pid, SIGINT);
    expect_exit(app, 3000, 0);
    assert_int_equal(pu_count_containing(app->log, "received signal INT"), 1);
    assert_int_equal(pu_count_containing(app->log, "dying: safe exit from signal INT"), 1);
    assert_int_equal(pu_count_containing(app->log, "exited with status"), 4);
}

/* A host whose handlers only note a signal (Perl's, Python's) acts on it in the
 * manager_signal hook, which runs once the manager's wait is cut short. */
static void test_manager_signal_hook(void **state)
{
    pf_app_t *app = *state;
    char line[PF_LINE_LEN];
    pid_t workers[2];
    pf_start_pool(app, 2, NULL, (const char *[]){"CONTROL_DEFERRED_SIGNALS=1", NULL}, workers);
    kill(app->pid, SIGUSR1);
    CHECK(pu_wait_containing(app->log, "deferred 10", 1, 2000), "the hook did not run after USR1");
    CHECK(pu_wait_containing(app->log, pf_mline(line, app, "sending TERM to PIDs"), 1, 2000),
          "no reload from the hook");
    CHECK(pu_wait_containing(app->log, ") started", 4, 3000), "the pool was not restarted");
    CHECK(pu_wait_containing(app->log, "): initialized", 1 + 4, 3000), "the new workers did not initialize");
    kill(app->pid, SIGUSR2);
    expect_exit(app, 3000, 0);
    assert_int_equal(pu_count_containing(app->log, "received signal USR2"), 1);
}

/* The end hook: at a stop, after "received signal TERM", its pm_die decides (its
 * message and status); at the die timeout it is told, and the library goes on. */
static void test_end_hook(void **state)
{
    pf_app_t *app = *state;
    pid_t workers[2];
    pf_start_pool(app, 2, NULL, (const char *[]){"CONTROL_END_HOOK=1", NULL}, workers);
    kill(app->pid, SIGTERM);
    expect_exit(app, 5000, 5);
    CHECK_LOG(pu_count_containing(app->log, "end hook 0 safe exit from signal TERM 0") == 1, app->log,
              "the hook was not told of the stop");
    assert_int_equal(pu_count_containing(app->log, "): dying: custom die"), 1);
    assert_int_equal(pu_count_containing(app->log, "dying: safe exit from signal TERM"), 0);
    assert_int_equal(pu_count_containing(app->log, "end hook"), 1); /* not again from its pm_die */
    assert_int_equal(pu_count_containing(app->log, "exited with status"), 2);
    assert_int_equal(pu_count_containing(app->log, "pm_die from the end hook returned"), 0); /* exited */
}

/* A hook that only looks: the library's stop goes on, and at the die timeout (a
 * request still busy) the hook is told before the workers are killed. */
static void test_end_hook_at_wait_timeout(void **state)
{
    pf_app_t *app = *state;
    pid_t worker;
    pf_start_pool(app, 1, (const char *[]){"die_timeout=1", NULL}, (const char *[]){"CONTROL_END_HOOK=2", NULL},
                  &worker);
    pu_request_t busy;
    pf_start_request(app, &busy, "poll_ms=4000");
    pu_sleep_ms(300);
    kill(app->pid, SIGTERM);
    expect_exit(app, 5000, 1);
    CHECK_LOG(pu_count_containing(app->log, "end hook 0 safe exit from signal TERM 0") == 1, app->log,
              "no stop hook");
    CHECK_LOG(pu_count_containing(app->log, "end hook 1 wait timeout 1") == 1, app->log, "no abort hook");
    assert_int_equal(pu_count_containing(app->log, "): wait timeout"), 1);
    assert_int_equal(pf_exit_lines(app, worker, 9), 1);
    char *response = NULL;
    size_t len = 0;
    pu_request_finish(&busy, 5000, &response, &len);
    free(response);
}

/* ---- how a worker ends ---- */

static int count_atexit(const char *path, pid_t manager, int *others)
{
    char *text = pu_read_file(path, NULL);
    int mine = 0;
    *others = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        if (atoi(line + strlen("atexit ")) == manager)
            mine++;
        else
            (*others)++;
    }
    free(text);
    return mine;
}

/* worker_exit "_exit": the host's atexit handler runs in the manager alone. */
static void test_worker_exit_skips_atexit(void **state)
{
    pf_app_t *app = *state;
    char atexit_env[PF_PATH_LEN + 32], path[PF_PATH_LEN];
    pid_t workers[2];
    for (int quick = 0; quick <= 1; quick++) {
        snprintf(path, sizeof path, "%s/atexit.%d", app->dir, quick);
        snprintf(atexit_env, sizeof atexit_env, "CONTROL_ATEXIT=%s", path);
        unlink(app->log);
        pf_start_pool(app, 2, (const char *[]){quick ? "worker_exit=_exit" : "worker_exit=exit", NULL},
                      (const char *[]){atexit_env, NULL}, workers);
        assert_int_equal(ask(app, "", NULL), 0);
        kill(app->pid, SIGHUP);
        CHECK(pu_wait_containing(app->log, ") started", 4, 3000), "the pool was not restarted");
        CHECK(pu_wait_containing(app->log, "): initialized", 5, 3000),
              "the new workers did not initialize");
        pf_stop(app, 3000);
        int others;
        assert_int_equal(count_atexit(path, app->pid, &others), 1);
        print_message("worker_exit=%s: atexit ran in %d workers\n", quick ? "_exit" : "exit", others);
        if (quick)
            assert_int_equal(others, 0);
        else
            assert_true(others >= 1); /* exit(3): the handler runs in every worker that returns */
    }
}

/* A busy request is not interrupted: its poll runs its whole time through a HUP
 * and a TERM of the manager. */
static void test_busy_request_undisturbed(void **state)
{
    pf_app_t *app = *state;
    pid_t worker;
    pf_start_pool(app, 1, NULL, NULL, &worker);
    pu_request_t busy;
    pf_start_request(app, &busy, "poll_ms=1200");
    pu_sleep_ms(300);
    kill(app->pid, SIGHUP);
    pu_sleep_ms(300);
    kill(app->pid, SIGTERM);
    char *response = NULL;
    assert_int_equal(pu_request_finish(&busy, 5000, &response, NULL), 0);
    long waited;
    int eintr;
    parse_waited(response, &waited, &eintr);
    print_message("%s", response ? response : "(no response)\n");
    free(response);
    assert_true(waited >= 1200);
    assert_int_equal(eintr, 0);
    expect_exit(app, 3000, 0);
    assert_int_equal(pu_count_containing(app->log, "safe exit after SIGTERM"), 1);
}

/* ---- the API bindings use ---- */

/* Fork hooks: before and after each fork in the manager, first thing in the child
 * with every signal blocked. */
static void test_fork_hooks(void **state)
{
    pf_app_t *app = *state;
    pid_t workers[2];
    pf_start_pool(app, 2, NULL, (const char *[]){"CONTROL_FORK_HOOKS=1", NULL}, workers);
    char line[128];
    snprintf(line, sizeof line, "control_app (pid %d): pre_fork", (int)app->pid);
    assert_int_equal(pu_count_lines(app->log, line), 2);
    snprintf(line, sizeof line, "control_app (pid %d): parent_after_fork", (int)app->pid);
    assert_int_equal(pu_count_lines(app->log, line), 2);
    assert_int_equal(pu_count_containing(app->log, "child_after_fork all_blocked 1"), 2);
    snprintf(line, sizeof line, "control_app (pid %d): child_after_fork", (int)app->pid);
    assert_int_equal(pu_count_containing(app->log, line), 0); /* in the children only */
    pf_stop(app, 3000);
}

/* no_exit 1: pm_post_dispatch and pm_exit say "exit now, with this status" by
 * their return value; the program exits through its own code. */
static void test_exit_by_return_value(void **state)
{
    pf_app_t *app = *state;
    pid_t worker;
    pf_start_pool(app, 1, (const char *[]){"no_exit=1", "max_requests=1", NULL}, NULL, &worker);
    assert_int_equal(ask(app, "", NULL), 0);
    char line[64];
    snprintf(line, sizeof line, "post_dispatch returned %d", PM_EXIT + 0);
    CHECK(pu_wait_containing(app->log, line, 1, 2000), "no '%s'", line);
    snprintf(line, sizeof line, "pm_exit returned %d", PM_EXIT + 7);
    CHECK(pu_wait_containing(app->log, line, 1, 2000), "no '%s'", line);
    CHECK(pu_wait_containing(app->log, "exited with status 0", 1, 2000), "the worker did not exit 0");
    assert_int_equal(pu_count_containing(app->log, "safe exit after max_requests (1)"), 1);
    pf_stop(app, 3000);
}

/* In a worker: the TERM handler has SA_ONSTACK and SA_RESTART; a parameter fixed
 * once running is refused, one that is not is taken. */
static void test_worker_handler_and_fixed_parameters(void **state)
{
    pf_app_t *app = *state;
    pid_t worker;
    pf_start_pool(app, 1, NULL, NULL, &worker);
    struct {
        const char *query, *answer;
    } cases[] = {{"sigflags=1", "onstack 1 restart 1"},
                 {"param=pid_fname=/tmp/x.pid", "rc -7"},
                 {"param=no_signals=1", "rc -7"},
                 {"param=max_requests=5", "rc 0"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *response = NULL;
        assert_int_equal(ask(app, cases[i].query, &response), 0);
        int found = response && strstr(response, cases[i].answer);
        if (!found)
            print_message("%s: got %s\n", cases[i].query, response ? response : "nothing");
        free(response);
        assert_true(found);
    }
    pf_stop(app, 3000);
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* In this process, no fork: version number, pm_errno, pm_parameter_info, requests. */
static void test_api_additions(void **state)
{
    (void)state;
    assert_int_equal(pm_version_number(), PM_VERSION_NUMBER);

    pm_t *pm = pm_create();
    assert_non_null(pm);
    assert_int_equal(pm_write_pid_file(pm, "/nonexistent-dir/x.pid"), PM_ESYS);
    assert_int_equal(pm_errno(pm), ENOENT);
    assert_int_equal(pm_parameter(pm, "n_processes", "x"), PM_EBADVALUE);
    assert_int_equal(pm_errno(pm), 0); /* not a system call's failure */

    int count = 0, fixed = 0;
    for (int i = 0;; i++) {
        const char *name = NULL, *bounds = NULL;
        int type = -1, settable = -1;
        int rc = pm_parameter_info(i, &name, &type, &bounds, &settable);
        if (rc == PM_ERANGE)
            break;
        assert_int_equal(rc, 0);
        assert_non_null(name);
        assert_non_null(pm_get_parameter(pm, name)); /* every listed name is a parameter */
        assert_true(type >= PM_PARAM_INTEGER && type <= PM_PARAM_CHOICE);
        assert_true(bounds && *bounds);
        if (!settable)
            fixed++;
        if (strcmp(name, "n_processes") == 0) {
            assert_int_equal(type, PM_PARAM_INTEGER);
            assert_string_equal(bounds, "-100000..100000");
        }
        if (strcmp(name, "worker_exit") == 0) {
            assert_int_equal(type, PM_PARAM_CHOICE);
            assert_string_equal(bounds, "exit|_exit|_exit_unflushed");
        }
        count++;
    }
    assert_true(count >= 21);
    assert_true(fixed >= 5);
    assert_int_equal(pm_parameter_info(-1, NULL, NULL, NULL, NULL), PM_ERANGE);
    assert_int_equal(pm_parameter_info(0, NULL, NULL, NULL, NULL), 0);

    assert_int_equal(pm_request_stop(NULL, 0), PM_EINVAL);
    assert_int_equal(pm_request_stop(pm, -1), PM_EINVAL);
    assert_int_equal(pm_request_stop(pm, SIGTERM), 0); /* before pm_manage: kept for it */
    assert_int_equal(pm_request_reload(pm), 0);
    assert_int_equal(pm_request_reload(NULL), PM_EINVAL);
    assert_int_equal(pm_worker_stopping(NULL), PM_EINVAL);
    assert_int_equal(pm_worker_stopping(pm), 0); /* not a worker */
    assert_int_equal(pm_accept_begin(NULL), PM_EINVAL);
    assert_int_equal(pm_accept_end(NULL), PM_EINVAL);
    assert_int_equal(pm_accept_begin(pm), 0); /* not a worker: nothing to stop */
    assert_int_equal(pm_accept_end(pm), 0);
    /* A refused pm_manage (after its set-up: the pid file is held) leaves no
     * descriptor behind once the handle is destroyed. */
    char dir[PU_PATH_MAX], pid_file[PU_PATH_MAX + 16], pid_param[PU_PATH_MAX + 32];
    assert_int_equal(pu_make_temp_dir(dir, sizeof dir, "control-api"), 0);
    snprintf(pid_file, sizeof pid_file, "%s/x.pid", dir);
    snprintf(pid_param, sizeof pid_param, "%s", pid_file);
    pm_t *holder = pm_create();
    assert_int_equal(pm_write_pid_file(holder, pid_file), 0);
    int fds_before = count_fds();
    for (int i = 0; i < 3; i++) {
        pm_t *second = pm_create();
        assert_int_equal(pm_parameter(second, "n_processes", "1"), 0);
        assert_int_equal(pm_parameter(second, "pid_fname", pid_param), 0);
        assert_int_equal(pm_manage(second), PM_ELOCKED);
        pm_destroy(second);
    }
    assert_int_equal(count_fds(), fds_before);
    pm_destroy(holder);
    pu_remove_temp_dir(dir);

    assert_int_equal(pm_parameter(pm, "stop_signal", "KILL"), PM_EBADVALUE);
    assert_int_equal(pm_parameter(pm, "stop_signal", "QUIT"), 0);
    assert_string_equal(pm_get_parameter(pm, "stop_signal"), "QUIT");
    pm_destroy(pm);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_term_stops_in_order),
        T(test_sigkilled_workers_are_logged),
        T(test_term_spares_accepting_workers),
        T(test_stop_reaches_own_listener),
        T(test_failed_manage_when_locked),
        T(test_failed_manage_after_effects),
        T(test_failed_setup_keeps_hosts_pid_file),
        T(test_exit_from_manager_init_undoes),
        T(test_wait_failure_is_fatal),
        T(test_ready_after_worker_init),
        T(test_exec_readiness_and_start_timeout),
        T(test_exec_pipes_do_not_spin),
        T(test_probe_leaves_worker_idle),
        T(test_hup_resets_crash_backoff),
        T(test_no_signals_driven_by_requests),
        T(test_manager_signal_hook),
        T(test_end_hook),
        T(test_end_hook_at_wait_timeout),
        T(test_worker_exit_skips_atexit),
        T(test_busy_request_undisturbed),
        T(test_fork_hooks),
        T(test_exit_by_return_value),
        T(test_worker_handler_and_fixed_parameters),
        cmocka_unit_test(test_api_additions),
    };
    return cmocka_run_group_tests(tests, pf_group_setup, NULL);
}
