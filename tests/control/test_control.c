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
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fcgi_pm.h"
#include "proc_util.h"

typedef struct {
    char dir[PU_PATH_MAX];
    char sock[PU_PATH_MAX];
    char log[PU_PATH_MAX];
    char pid_file[PU_PATH_MAX];
    char notify[PU_PATH_MAX];
    int notify_fd; /* a datagram socket standing in for systemd's, or -1 */
    pid_t manager;
    long long started_ms;
} app_t;

static int group_setup(void **state)
{
    (void)state;
    return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    app_t *app = calloc(1, sizeof *app);
    if (!app || pu_make_temp_dir(app->dir, sizeof app->dir, "control") < 0) {
        free(app);
        return -1;
    }
    snprintf(app->sock, sizeof app->sock, "%s/sock", app->dir);
    snprintf(app->log, sizeof app->log, "%s/log", app->dir);
    snprintf(app->pid_file, sizeof app->pid_file, "%s/app.pid", app->dir);
    snprintf(app->notify, sizeof app->notify, "%s/notify", app->dir);
    app->notify_fd = -1;
    *state = app;
    return 0;
}

static int teardown(void **state)
{
    app_t *app = *state;
    int reports = pu_sanitizer_reports(app->log);
    if (reports > 0) {
        char *log = pu_read_file(app->log, NULL);
        print_error("sanitizer reports in %s:\n%s\n", app->log, log ? log : "");
        free(log);
    }
    if (app->notify_fd >= 0)
        close(app->notify_fd);
    pu_kill_children();
    pu_remove_temp_dir(app->dir);
    free(app);
    return reports > 0 ? -1 : 0;
}

/* Starts control_app on app->sock with params (NULL-terminated "name=value") and env. */
static pid_t spawn_app(app_t *app, const char *const params[], const char *const env[], const char *log)
{
    const char *argv[32] = {CONTROL_APP, app->sock};
    int n = 2;
    for (int i = 0; params && params[i] && n < 31; i++)
        argv[n++] = params[i];
    argv[n] = NULL;
    return pu_spawn(argv, env, log ? log : app->log);
}

static void start(app_t *app, const char *const params[], const char *const env[])
{
    app->started_ms = pu_now_ms();
    app->manager = spawn_app(app, params, env, NULL);
    assert_true(app->manager > 0);
}

/* Starts a pool of n and waits until each worker has initialized. */
static void start_pool(app_t *app, int n, const char *const params[], const char *const env[])
{
    start(app, params, env);
    assert_true(pu_wait_containing(app->log, "): initialized", n + 1, 5000));
    assert_true(pu_wait_containing(app->log, ") started", n, 5000)); /* may come after the worker's line */
}

static int manager_exit(app_t *app, int timeout_ms)
{
    int status;
    if (!pu_wait_exit(app->manager, timeout_ms, &status))
        return -1000;
    app->manager = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

static void dump_log(const app_t *app)
{
    char *log = pu_read_file(app->log, NULL);
    print_message("--- %s\n%s---\n", app->log, log ? log : "");
    free(log);
}

/* A datagram socket at app->notify, as systemd's NOTIFY_SOCKET. */
static void bind_notify(app_t *app)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", app->notify);
    app->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(app->notify_fd >= 0);
    assert_int_equal(bind(app->notify_fd, (struct sockaddr *)&addr, sizeof addr), 0);
}

/* Waits up to timeout_ms for a datagram containing what: 1, or 0. */
static int wait_notify(app_t *app, const char *what, int timeout_ms)
{
    long long until = pu_now_ms() + timeout_ms;
    for (long long left; (left = until - pu_now_ms()) > 0;) {
        struct pollfd p = {app->notify_fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        char buf[512];
        ssize_t n = recv(app->notify_fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        if (strstr(buf, what))
            return 1;
    }
    return 0;
}

/* One request; its output kept in the app's directory. The client's exit code. */
static int ask(app_t *app, const char *query, char **response)
{
    static int count;
    char out[PU_PATH_MAX];
    snprintf(out, sizeof out, "%s/ask.%d", app->dir, ++count);
    char *ignored = NULL;
    int rc = pu_request(app->sock, query, out, 3000, response ? response : &ignored, NULL);
    free(ignored);
    return rc;
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
    app_t *app = *state;
    char pid_param[PU_PATH_MAX + 16], out[PU_PATH_MAX], second_log[PU_PATH_MAX];
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    snprintf(out, sizeof out, "%s/busy.out", app->dir);
    snprintf(second_log, sizeof second_log, "%s/second.log", app->dir);
    start_pool(app, 2, (const char *[]){"n_processes=2", "die_timeout=10", pid_param, NULL}, NULL);

    pu_request_t busy;
    assert_int_equal(pu_request_start(&busy, app->sock, "poll_ms=1500", out), 0);
    pu_sleep_ms(300);
    kill(app->manager, SIGTERM);
    assert_true(pu_wait_containing(app->log, "sending TERM to PIDs", 1, 2000));
    pu_sleep_ms(100);

    assert_int_equal(connect_errno(app->sock), ECONNREFUSED);
    assert_true(pu_file_exists(app->pid_file));
    pid_t second = spawn_app(app, (const char *[]){"n_processes=1", pid_param, NULL}, NULL, second_log);
    int status = 0;
    assert_true(pu_wait_exit(second, 3000, &status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_true(pu_count_containing(second_log, "is held by another manager") >= 1);
    assert_true(pu_alive(app->manager));

    char *response = NULL;
    size_t len = 0;
    assert_int_equal(pu_request_finish(&busy, 5000, &response, &len), 0);
    long waited;
    int eintr;
    parse_waited(response, &waited, &eintr);
    free(response);
    assert_true(waited >= 1500);
    assert_int_equal(eintr, 0);
    assert_int_equal(manager_exit(app, 3000), 0);
    assert_false(pu_file_exists(app->pid_file));
    assert_int_equal(pu_count_containing(app->log, "dying: safe exit from signal TERM"), 1);
}

/* A worker still busy at die_timeout is SIGKILLed, reaped and logged as any other. */
static void test_sigkilled_workers_are_logged(void **state)
{
    app_t *app = *state;
    char out[PU_PATH_MAX], line[128];
    snprintf(out, sizeof out, "%s/busy.out", app->dir);
    start_pool(app, 1, (const char *[]){"n_processes=1", "die_timeout=1", NULL}, NULL);
    pid_t worker = 0;
    char before[64];
    snprintf(before, sizeof before, "FastCGI: manager (pid %d): server (pid ", (int)app->manager);
    assert_int_equal(pu_collect_pids(app->log, before, ") started", &worker, 1), 1);
    pu_request_t busy;
    assert_int_equal(pu_request_start(&busy, app->sock, "poll_ms=4000", out), 0);
    pu_sleep_ms(300);
    kill(app->manager, SIGTERM);
    assert_int_equal(manager_exit(app, 4000), 1);
    snprintf(line, sizeof line, "server (pid %d) exited with status 9", (int)worker);
    assert_int_equal(pu_count_containing(app->log, line), 1);
    assert_int_equal(pu_count_containing(app->log, "): wait timeout"), 1);
    assert_false(pu_exists(worker));
}

/* ---- a failed pm_manage changes nothing ---- */

static char *failure_line(app_t *app, const char *stdout_log)
{
    char *text = pu_read_file(stdout_log, NULL);
    char *line = text ? strstr(text, "failed ") : NULL;
    if (!line) {
        dump_log(app);
        free(text);
        return NULL;
    }
    memmove(text, line, strlen(line) + 1);
    return text;
}

/* Refused for a held pid file: NOTIFY_SOCKET is still there, title and mask as before. */
static void test_failed_manage_when_locked(void **state)
{
    app_t *app = *state;
    char pid_param[PU_PATH_MAX + 16], second_log[PU_PATH_MAX], notify_env[PU_PATH_MAX + 16];
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    snprintf(second_log, sizeof second_log, "%s/second.log", app->dir);
    snprintf(notify_env, sizeof notify_env, "NOTIFY_SOCKET=%s", app->notify);
    start_pool(app, 1, (const char *[]){"n_processes=1", pid_param, NULL}, NULL);
    pid_t second = spawn_app(app, (const char *[]){"n_processes=1", pid_param, NULL},
                             (const char *[]){notify_env, "CONTROL_LATE_PIDFILE=1", NULL}, second_log);
    int status = 0;
    assert_true(pu_wait_exit(second, 3000, &status));
    assert_int_equal(WEXITSTATUS(status), 1);
    char *line = failure_line(app, second_log);
    assert_non_null(line);
    char expect[PU_PATH_MAX + 64];
    snprintf(expect, sizeof expect, "failed %d notify %s comm control_app blocked 0000000000000000 chld default",
             PM_ELOCKED, app->notify);
    int same = strncmp(line, expect, strlen(expect)) == 0;
    if (!same)
        print_message("got:    %s\nwanted: %s\n", line, expect);
    free(line);
    assert_true(same);
}

/* Refused after the pid file was taken and the title set (the manager_init hook
 * made SIGCHLD ignored): the pid file is gone and unlocked, the rest as before. */
static void test_failed_manage_after_effects(void **state)
{
    app_t *app = *state;
    char pid_param[PU_PATH_MAX + 16], out_log[PU_PATH_MAX], notify_env[PU_PATH_MAX + 16];
    snprintf(pid_param, sizeof pid_param, "pid_fname=%s", app->pid_file);
    snprintf(out_log, sizeof out_log, "%s/out.log", app->dir);
    snprintf(notify_env, sizeof notify_env, "NOTIFY_SOCKET=%s", app->notify);
    pid_t app_pid = spawn_app(app, (const char *[]){"n_processes=2", pid_param, NULL},
                              (const char *[]){notify_env, "CONTROL_LATE_PIDFILE=1", "CONTROL_IGNORE_CHLD=1", NULL},
                              out_log);
    int status = 0;
    assert_true(pu_wait_exit(app_pid, 3000, &status));
    assert_int_equal(WEXITSTATUS(status), 1);
    char *line = failure_line(app, out_log);
    assert_non_null(line);
    char expect[PU_PATH_MAX + 64];
    snprintf(expect, sizeof expect,
             "failed %d notify %s comm control_app blocked 0000000000000000 chld default pidfile absent", PM_ESTATE,
             app->notify);
    int same = strncmp(line, expect, strlen(expect)) == 0;
    if (!same)
        print_message("got:    %s\nwanted: %s\n", line, expect);
    free(line);
    assert_true(same);
    assert_false(pu_file_exists(app->pid_file));
}

/* ---- the manager's own wait ---- */

/* A manager_init hook closes the manager's descriptors: its wait fails. The failure
 * is logged, the workers are stopped and reaped, and it exits 1: no spin. */
static void test_wait_failure_is_fatal(void **state)
{
    app_t *app = *state;
    start_pool(app, 2, (const char *[]){"n_processes=2", "die_timeout=2", NULL},
               (const char *[]){"CONTROL_CLOSE_FDS=1", NULL});
    int code = manager_exit(app, 5000);
    if (code != 1)
        dump_log(app);
    assert_int_equal(code, 1);
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
    app_t *app = *state;
    char notify_env[PU_PATH_MAX + 16];
    snprintf(notify_env, sizeof notify_env, "NOTIFY_SOCKET=%s", app->notify);
    bind_notify(app);
    start(app, (const char *[]){"n_processes=2", NULL}, (const char *[]){notify_env, "CONTROL_INIT_SLEEP_MS=700", NULL});
    assert_true(wait_notify(app, "READY=1", 5000));
    long long after = pu_now_ms() - app->started_ms;
    print_message("READY=1 after %lld ms (init takes 700)\n", after);
    assert_true(after >= 650);
    assert_int_equal(pu_count_containing(app->log, "server (pid"), 2 * 2); /* started + initialized */
    kill(app->manager, SIGTERM);
    assert_int_equal(manager_exit(app, 3000), 0);
}

/* Exec mode: READY=1 once the execs succeeded; a program that cannot even be
 * exec'd never makes the pool ready, and start_timeout gives up with exit 1. */
static void test_exec_readiness_and_start_timeout(void **state)
{
    app_t *app = *state;
    char notify_env[PU_PATH_MAX + 16];
    snprintf(notify_env, sizeof notify_env, "NOTIFY_SOCKET=%s", app->notify);
    bind_notify(app);
    start(app, (const char *[]){"n_processes=2", "start_timeout=5", NULL},
          (const char *[]){notify_env, "CONTROL_EXEC=/bin/sleep", "CONTROL_EXEC_ARG=30", NULL});
    assert_true(wait_notify(app, "READY=1", 4000));
    kill(app->manager, SIGTERM);
    assert_int_equal(manager_exit(app, 3000), 0);

    start(app, (const char *[]){"n_processes=2", "start_timeout=1", NULL},
          (const char *[]){notify_env, "CONTROL_EXEC=/nonexistent/program", NULL});
    int code = manager_exit(app, 6000);
    long long took = pu_now_ms() - app->started_ms;
    if (code != 1)
        dump_log(app);
    assert_int_equal(code, 1);
    assert_true(took >= 900);
    assert_int_equal(pu_count_containing(app->log, "start timeout: 0 of 2 workers ready after 1 s"), 1);
    assert_true(pu_count_containing(app->log, "exec: /nonexistent/program: No such file or directory") >= 2);
    assert_false(wait_notify(app, "READY=1", 100));
}

/* A HUP clears the crash backoff: the slot that failed is refilled at once. */
static void test_hup_resets_crash_backoff(void **state)
{
    app_t *app = *state;
    start(app, (const char *[]){"n_processes=1", "min_uptime=10", "backoff_min=5", "backoff_max=5", NULL},
          (const char *[]){"CONTROL_INIT_EXIT=3", NULL});
    assert_true(pu_wait_containing(app->log, "exited with status 768", 1, 3000));
    pu_sleep_ms(200);
    assert_int_equal(pu_count_containing(app->log, ") started"), 1); /* backing off 5 s */
    long long hup = pu_now_ms();
    kill(app->manager, SIGHUP);
    assert_true(pu_wait_containing(app->log, ") started", 2, 2000));
    print_message("refilled %lld ms after HUP (backoff 5 s)\n", pu_now_ms() - hup);
    assert_true(pu_now_ms() - hup < 2000);
    kill(app->manager, SIGTERM);
    assert_int_equal(manager_exit(app, 3000), 0);
}

/* ---- a host that owns the signals ---- */

/* no_signals 1: the program's own handlers call pm_request_reload and
 * pm_request_stop, and the manager reloads and stops in order. */
static void test_no_signals_driven_by_requests(void **state)
{
    app_t *app = *state;
    start_pool(app, 2, (const char *[]){"n_processes=2", "no_signals=1", NULL},
               (const char *[]){"CONTROL_OWN_SIGNALS=1", NULL});
    kill(app->manager, SIGHUP);
    assert_true(pu_wait_containing(app->log, "sending TERM to PIDs", 1, 2000));
    assert_true(pu_wait_containing(app->log, ") started", 4, 3000));
    assert_true(pu_wait_containing(app->log, "server (pid", 2 * 4, 3000));
    kill(app->manager, SIGINT);
    int code = manager_exit(app, 3000);
    if (code != 0)
        dump_log(app);
    assert_int_equal(code, 0);
    assert_int_equal(pu_count_containing(app->log, "received signal INT"), 1);
    assert_int_equal(pu_count_containing(app->log, "dying: safe exit from signal INT"), 1);
    assert_int_equal(pu_count_containing(app->log, "exited with status"), 4);
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
    app_t *app = *state;
    char atexit_env[PU_PATH_MAX + 32], path[PU_PATH_MAX];
    for (int quick = 0; quick <= 1; quick++) {
        snprintf(path, sizeof path, "%s/atexit.%d", app->dir, quick);
        snprintf(atexit_env, sizeof atexit_env, "CONTROL_ATEXIT=%s", path);
        unlink(app->log);
        start_pool(app, 2,
                   (const char *[]){"n_processes=2", quick ? "worker_exit=_exit" : "worker_exit=exit", NULL},
                   (const char *[]){atexit_env, NULL});
        assert_int_equal(ask(app, "", NULL), 0);
        kill(app->manager, SIGHUP);
        assert_true(pu_wait_containing(app->log, ") started", 4, 3000));
        assert_true(pu_wait_containing(app->log, "): initialized", 5, 3000));
        pid_t manager = app->manager;
        kill(app->manager, SIGTERM);
        assert_int_equal(manager_exit(app, 3000), 0);
        int others;
        assert_int_equal(count_atexit(path, manager, &others), 1);
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
    app_t *app = *state;
    char out[PU_PATH_MAX];
    snprintf(out, sizeof out, "%s/busy.out", app->dir);
    start_pool(app, 1, (const char *[]){"n_processes=1", NULL}, NULL);
    pu_request_t busy;
    assert_int_equal(pu_request_start(&busy, app->sock, "poll_ms=1200", out), 0);
    pu_sleep_ms(300);
    kill(app->manager, SIGHUP);
    pu_sleep_ms(300);
    kill(app->manager, SIGTERM);
    char *response = NULL;
    assert_int_equal(pu_request_finish(&busy, 5000, &response, NULL), 0);
    long waited;
    int eintr;
    parse_waited(response, &waited, &eintr);
    print_message("%s", response ? response : "(no response)\n");
    free(response);
    assert_true(waited >= 1200);
    assert_int_equal(eintr, 0);
    assert_int_equal(manager_exit(app, 3000), 0);
    assert_int_equal(pu_count_containing(app->log, "safe exit after SIGTERM"), 1);
}

/* ---- the API bindings use ---- */

/* Fork hooks: before and after each fork in the manager, first thing in the child
 * with every signal blocked. */
static void test_fork_hooks(void **state)
{
    app_t *app = *state;
    start_pool(app, 2, (const char *[]){"n_processes=2", NULL}, (const char *[]){"CONTROL_FORK_HOOKS=1", NULL});
    char line[128];
    snprintf(line, sizeof line, "control_app (pid %d): pre_fork", (int)app->manager);
    assert_int_equal(pu_count_lines(app->log, line), 2);
    snprintf(line, sizeof line, "control_app (pid %d): parent_after_fork", (int)app->manager);
    assert_int_equal(pu_count_lines(app->log, line), 2);
    assert_int_equal(pu_count_containing(app->log, "child_after_fork all_blocked 1"), 2);
    snprintf(line, sizeof line, "control_app (pid %d): child_after_fork", (int)app->manager);
    assert_int_equal(pu_count_containing(app->log, line), 0); /* in the children only */
    kill(app->manager, SIGTERM);
    assert_int_equal(manager_exit(app, 3000), 0);
}

/* no_exit 1: pm_post_dispatch and pm_exit say "exit now, with this status" by
 * their return value; the program exits through its own code. */
static void test_exit_by_return_value(void **state)
{
    app_t *app = *state;
    start_pool(app, 1, (const char *[]){"n_processes=1", "no_exit=1", "max_requests=1", NULL}, NULL);
    assert_int_equal(ask(app, "", NULL), 0);
    char line[64];
    snprintf(line, sizeof line, "post_dispatch returned %d", PM_EXIT + 0);
    assert_true(pu_wait_containing(app->log, line, 1, 2000));
    snprintf(line, sizeof line, "pm_exit returned %d", PM_EXIT + 7);
    assert_true(pu_wait_containing(app->log, line, 1, 2000));
    assert_true(pu_wait_containing(app->log, "exited with status 0", 1, 2000));
    assert_int_equal(pu_count_containing(app->log, "safe exit after max_requests (1)"), 1);
    kill(app->manager, SIGTERM);
    assert_int_equal(manager_exit(app, 3000), 0);
}

/* In a worker: the TERM handler has SA_ONSTACK and SA_RESTART; a parameter fixed
 * once running is refused, one that is not is taken. */
static void test_worker_handler_and_fixed_parameters(void **state)
{
    app_t *app = *state;
    start_pool(app, 1, (const char *[]){"n_processes=1", NULL}, NULL);
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
    kill(app->manager, SIGTERM);
    assert_int_equal(manager_exit(app, 3000), 0);
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
            assert_string_equal(bounds, "exit|_exit");
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
        T(test_failed_manage_when_locked),
        T(test_failed_manage_after_effects),
        T(test_wait_failure_is_fatal),
        T(test_ready_after_worker_init),
        T(test_exec_readiness_and_start_timeout),
        T(test_hup_resets_crash_backoff),
        T(test_no_signals_driven_by_requests),
        T(test_worker_exit_skips_atexit),
        T(test_busy_request_undisturbed),
        T(test_fork_hooks),
        T(test_exit_by_return_value),
        T(test_worker_handler_and_fixed_parameters),
        cmocka_unit_test(test_api_additions),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
