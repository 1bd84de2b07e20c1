/*
 * control_app.c -- the application test_control runs: a libfcgi worker on
 * libfcgi-pm that exercises the edges of the life cycle and the API bindings use.
 *
 * Usage: control_app SOCKET_PATH [name=value ...]
 *   Each name=value goes to pm_parameter (exit 2 if refused). The pid file, if
 *   pid_fname is given, is taken before the socket is opened.
 *
 * Requests (QUERY_STRING):
 *   poll_ms=M    waits M ms in poll(2) with no descriptor, as an application's own
 *                wait would, and answers "waited <ms> eintr <count>": a poll cut
 *                short by a signal is counted and resumed for the rest;
 *   sigflags=1   answers "onstack <0|1> restart <0|1>" for the TERM handler in place;
 *   param=NAME=V answers "rc <code>" of pm_parameter(NAME, V) in the worker;
 *   otherwise    "hello <pid>".
 *
 * Environment:
 *   CONTROL_OWN_SIGNALS=1  the program handles TERM, HUP and INT itself (with
 *                          no_signals 1): its handlers call pm_request_stop and
 *                          pm_request_reload;
 *   CONTROL_DEFERRED_SIGNALS=1  as a runtime with deferred handlers does (Perl's):
 *                          handlers of USR1 and USR2 only note the signal; the
 *                          manager_signal hook acts on it (USR1: pm_request_reload,
 *                          USR2: pm_request_stop) and logs "deferred <signo>";
 *   CONTROL_END_HOOK=1|2   the end hook logs "end hook <how> <msg> <status>"; with
 *                          1, at a stop (PM_END_DIE) it calls pm_die(pm, "custom die", 5);
 *   CONTROL_CLOSE_FDS=1    the manager_init hook closes every descriptor above 2
 *                          but the listening socket (the manager's own among them);
 *   CONTROL_IGNORE_CHLD=1  the manager_init hook sets SIGCHLD to SIG_IGN;
 *   CONTROL_ATEXIT=PATH    an atexit handler appends "atexit <pid>" to PATH;
 *   CONTROL_FORK_HOOKS=1   the fork hooks log "pre_fork", "parent_after_fork",
 *                          "child_after_fork all_blocked <0|1>";
 *   CONTROL_INIT_SLEEP_MS=M  the server_init hook sleeps M ms;
 *   CONTROL_INIT_EXIT=N    the server_init hook ends the worker with _exit(N);
 *   CONTROL_BLOCK_TERM=1   each worker blocks TERM and HUP;
 *   CONTROL_EXEC=PROGRAM   exec mode: each worker execs PROGRAM on the socket
 *                          (with CONTROL_EXEC_ARG as its one argument, if set);
 *   CONTROL_LATE_PIDFILE=1 the pid file is left to pm_manage to take;
 *   CONTROL_FD_LIMIT=1     pm_manage runs with no descriptor to spare (RLIMIT_NOFILE
 *                          at the highest one open), so its set-up fails;
 *   CONTROL_INIT_PM_EXIT=N the manager_init hook calls pm_exit(pm, ..., N);
 *   CONTROL_OWN_LISTENER=1 each worker puts a listening socket of its own (its path
 *                          unlinked at once) under the inherited socket's number,
 *                          and accepts on that.
 * A worker whose accept loop ends says "loop ended, TERM received N".
 *
 * After a failed pm_manage it prints, to stdout, what the process looks like:
 *   "failed <code> notify <NOTIFY_SOCKET or -> comm <comm> blocked <SigBlk>
 *    chld <handler|default|ignore> pidfile <free|held|absent>"
 * and exits 1. With no_exit 1, pm_post_dispatch's and pm_exit's returns are logged
 * ("post_dispatch returned N") and the program exits with PM_EXIT_STATUS itself.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "fcgi_pm_fcgx.h"

static pm_t *volatile the_pm; /* NULL once destroyed: a late signal's handler leaves it alone */
static int listen_sock = -1;

static void say(const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, "control_app (pid %d): ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t ignored = write(2, line, (size_t)n);
    (void)ignored;
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static const char *query_value(const char *query, const char *name, char *buf, size_t size)
{
    size_t len = strlen(name);
    for (const char *p = query; p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, len) == 0 && p[len] == '=') {
            const char *v = p + len + 1;
            size_t n = strcspn(v, "&");
            snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), v);
            return buf;
        }
    }
    return NULL;
}

static void answer(FCGX_Request *req)
{
    const char *query = FCGX_GetParam("QUERY_STRING", req->envp);
    char value[256];
    if (!query)
        query = "";
    FCGX_FPrintF(req->out, "Content-Type: text/plain\r\n\r\n");
    if (query_value(query, "poll_ms", value, sizeof value)) {
        long long start = now_ms(), end = start + atol(value);
        int interrupted = 0;
        for (long long left; (left = end - now_ms()) > 0;)
            if (poll(NULL, 0, (int)left) < 0 && errno == EINTR)
                interrupted++;
        FCGX_FPrintF(req->out, "waited %lld eintr %d\n", now_ms() - start, interrupted);
    } else if (query_value(query, "sigflags", value, sizeof value)) {
        struct sigaction sa;
        sigaction(SIGTERM, NULL, &sa);
        FCGX_FPrintF(req->out, "onstack %d restart %d\n", !!(sa.sa_flags & SA_ONSTACK),
                     !!(sa.sa_flags & SA_RESTART));
    } else if (query_value(query, "param", value, sizeof value)) {
        char *eq = strchr(value, '=');
        int rc = eq ? (*eq = '\0', pm_parameter(the_pm, value, eq + 1)) : PM_EINVAL;
        FCGX_FPrintF(req->out, "rc %d\n", rc);
    } else {
        FCGX_FPrintF(req->out, "hello %d\n", (int)getpid());
    }
}

static volatile sig_atomic_t noted_signal;

static void note_signal(int signo)
{
    noted_signal = signo;
}

static void run_noted_signal(pm_t *pm, void *user)
{
    (void)user;
    int signo = noted_signal;
    noted_signal = 0;
    if (!signo)
        return;
    say("deferred %d", signo);
    if (signo == SIGUSR1)
        pm_request_reload(pm);
    else
        pm_request_stop(pm, signo);
}

static void end_hook(pm_t *pm, int how, const char *msg, int status, void *user)
{
    (void)user;
    say("end hook %d %s %d", how, msg, status);
    if (how == PM_END_DIE && atoi(getenv("CONTROL_END_HOOK")) == 1)
        say("pm_die from the end hook returned %d", pm_die(pm, "custom die", 5));
}

static void own_signal(int signo)
{
    pm_t *pm = the_pm;
    if (!pm)
        return; /* a TERM as the program exits, after pm_destroy */
    if (signo == SIGHUP)
        pm_request_reload(pm);
    else
        pm_request_stop(pm, signo);
}

static void close_other_fds(pm_t *pm, void *user)
{
    (void)pm;
    (void)user;
    for (int fd = 3; fd < 1024; fd++)
        if (fd != listen_sock)
            close(fd);
}

static void ignore_chld(pm_t *pm, void *user)
{
    (void)pm;
    (void)user;
    signal(SIGCHLD, SIG_IGN);
}

static const char *atexit_path;
static void at_exit(void)
{
    int fd = open(atexit_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        char line[64];
        int n = snprintf(line, sizeof line, "atexit %d\n", (int)getpid());
        ssize_t ignored = write(fd, line, (size_t)n);
        (void)ignored;
        close(fd);
    }
}

static void fork_hook(pm_t *pm, void *user)
{
    (void)pm;
    const char *which = user;
    if (strcmp(which, "child_after_fork") == 0) {
        sigset_t now;
        sigprocmask(SIG_SETMASK, NULL, &now);
        say("%s all_blocked %d", which, sigismember(&now, SIGTERM) && sigismember(&now, SIGUSR1));
    } else {
        say("%s", which);
    }
}

static void init_hook(pm_t *pm, void *user)
{
    (void)pm;
    (void)user;
    const char *sleep_ms = getenv("CONTROL_INIT_SLEEP_MS");
    const char *exit_code = getenv("CONTROL_INIT_EXIT");
    if (sleep_ms) {
        struct timespec t = {atol(sleep_ms) / 1000, (atol(sleep_ms) % 1000) * 1000000L};
        while (nanosleep(&t, &t) < 0 && errno == EINTR) {
        }
    }
    if (exit_code)
        _exit(atoi(exit_code));
}

static void exit_from_hook(pm_t *pm, void *user)
{
    (void)user;
    pm_exit(pm, "leaving from manager_init", atoi(getenv("CONTROL_INIT_PM_EXIT")));
}

static int set_parameters(pm_t *pm, int count, char **args)
{
    for (int i = 0; i < count; i++) {
        char name[128];
        const char *eq = strchr(args[i], '=');
        if (!eq || (size_t)(eq - args[i]) >= sizeof name)
            return -1;
        snprintf(name, sizeof name, "%.*s", (int)(eq - args[i]), args[i]);
        if (pm_parameter(pm, name, eq + 1) != 0) {
            fprintf(stderr, "control_app: pm_parameter %s: %s\n", args[i], pm_errmsg(pm));
            return -1;
        }
    }
    return 0;
}

/* What a failed pm_manage left behind (see the header comment). */
static void describe_after_failure(pm_t *pm, int rc)
{
    char comm[32] = "", blocked[64] = "?", line[256];
    prctl(PR_GET_NAME, comm, 0, 0, 0);
    FILE *status = fopen("/proc/self/status", "r");
    while (status && fgets(line, sizeof line, status))
        if (strncmp(line, "SigBlk:", 7) == 0)
            sscanf(line + 7, "%63s", blocked);
    if (status)
        fclose(status);
    struct sigaction chld;
    sigaction(SIGCHLD, NULL, &chld);
    const char *pid_file = pm_get_parameter(pm, "pid_fname");
    const char *lock = "absent";
    if (pid_file && *pid_file) {
        int fd = open(pid_file, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            lock = flock(fd, LOCK_EX | LOCK_NB) == 0 ? "free" : "held";
            close(fd);
        }
    }
    const char *notify = getenv("NOTIFY_SOCKET");
    printf("failed %d notify %s comm %s blocked %s chld %s pidfile %s\n", rc, notify ? notify : "-", comm,
           blocked, chld.sa_handler == SIG_IGN ? "ignore" : chld.sa_handler == SIG_DFL ? "default" : "handler",
           lock);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: control_app SOCKET_PATH [name=value ...]\n");
        return 2;
    }
    if (FCGX_Init() != 0)
        return 1;
    pm_t *pm = the_pm = pm_create();
    if (!pm || set_parameters(pm, argc - 2, argv + 2) < 0)
        return 2;
    if ((atexit_path = getenv("CONTROL_ATEXIT")))
        atexit(at_exit);
    /* The pid file first: a second start is refused before it touches the socket. */
    if (!getenv("CONTROL_LATE_PIDFILE") && pm_write_pid_file(pm, NULL) < 0) {
        fprintf(stderr, "control_app: %s\n", pm_errmsg(pm));
        describe_after_failure(pm, -1);
        return 1;
    }
    int sock = listen_sock = FCGX_OpenSocket(argv[1], 128);
    if (sock < 0)
        return 1;
    if (getenv("CONTROL_OWN_SIGNALS")) {
        struct sigaction sa = {0};
        sa.sa_handler = own_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
    }
    if (getenv("CONTROL_DEFERRED_SIGNALS")) {
        struct sigaction sa = {0};
        sa.sa_handler = note_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
        sigaction(SIGUSR2, &sa, NULL);
        pm_set_hook(pm, PM_HOOK_MANAGER_SIGNAL, run_noted_signal, NULL);
    }
    if (getenv("CONTROL_END_HOOK"))
        pm_set_end_hook(pm, end_hook, NULL);
    if (getenv("CONTROL_CLOSE_FDS"))
        pm_set_hook(pm, PM_HOOK_MANAGER_INIT, close_other_fds, NULL);
    if (getenv("CONTROL_IGNORE_CHLD"))
        pm_set_hook(pm, PM_HOOK_MANAGER_INIT, ignore_chld, NULL);
    if (getenv("CONTROL_FORK_HOOKS")) {
        pm_set_hook(pm, PM_HOOK_PRE_FORK, fork_hook, "pre_fork");
        pm_set_hook(pm, PM_HOOK_PARENT_AFTER_FORK, fork_hook, "parent_after_fork");
        pm_set_hook(pm, PM_HOOK_CHILD_AFTER_FORK, fork_hook, "child_after_fork");
    }
    if (getenv("CONTROL_INIT_SLEEP_MS") || getenv("CONTROL_INIT_EXIT"))
        pm_set_hook(pm, PM_HOOK_SERVER_INIT, init_hook, NULL);
    if (getenv("CONTROL_EXEC")) {
        char *exec_argv[] = {getenv("CONTROL_EXEC"), getenv("CONTROL_EXEC_ARG"), NULL};
        if (pm_set_exec(pm, sock, exec_argv, NULL) != 0)
            return 2;
    }

    if (getenv("CONTROL_INIT_PM_EXIT"))
        pm_set_hook(pm, PM_HOOK_MANAGER_INIT, exit_from_hook, NULL);
    struct rlimit files;
    getrlimit(RLIMIT_NOFILE, &files);
    if (getenv("CONTROL_FD_LIMIT")) {
        struct rlimit none = files;
        int top = fcntl(0, F_DUPFD_CLOEXEC, 0); /* the lowest free one: none below it */
        close(top);
        none.rlim_cur = (rlim_t)top;
        setrlimit(RLIMIT_NOFILE, &none);
    }
    int role = pm_manage(pm);
    setrlimit(RLIMIT_NOFILE, &files);
    if (role < 0) {
        fprintf(stderr, "control_app: pm_manage: %s (errno %d)\n", pm_errmsg(pm), pm_errno(pm));
        describe_after_failure(pm, role);
        return 1;
    }
    if (role == PM_MANAGER_DONE) {
        say("manager done, status %d", pm_exit_status(pm));
        if (getenv("CONTROL_INIT_PM_EXIT"))
            describe_after_failure(pm, role);
        return pm_exit_status(pm);
    }
    if (getenv("CONTROL_BLOCK_TERM")) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        sigprocmask(SIG_BLOCK, &set, NULL);
    }
    if (getenv("CONTROL_OWN_LISTENER")) {
        char own_path[300];
        snprintf(own_path, sizeof own_path, "%s.own.%d", argv[1], (int)getpid());
        int own = FCGX_OpenSocket(own_path, 16);
        if (own < 0 || dup2(own, sock) < 0)
            return 1;
        close(own);
        unlink(own_path);
        say("own listener");
    }
    FCGX_Request req;
    FCGX_InitRequest(&req, sock, 0);
    int rc;
    while ((rc = pm_fcgx_accept(pm, &req)) >= 0) {
        pm_pre_dispatch(pm);
        answer(&req);
        FCGX_Finish_r(&req);
        rc = pm_post_dispatch(pm);
        if (PM_IS_EXIT(rc)) {
            say("post_dispatch returned %d", rc);
            int exit_rc = pm_exit(pm, "leaving through the program's own exit", 7);
            say("pm_exit returned %d", exit_rc);
            the_pm = NULL;
            pm_destroy(pm);
            return PM_EXIT_STATUS(rc);
        }
    }
    say("loop ended, TERM received %d", pm_received_signal(pm, SIGTERM));
    the_pm = NULL;
    pm_destroy(pm);
    return 0;
}
