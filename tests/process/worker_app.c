/*
 * worker_app.c -- the application the process tests run: examples/hello.c, made
 * configurable.
 *
 * Usage: worker_app SOCKET [name=value ...]
 *   Listens on SOCKET (a unix socket's path, or host:port for TCP); each name=value
 *   goes to pm_parameter (exit 2 if it is refused).
 *
 * Per request, QUERY_STRING (name=value pairs joined by '&') chooses the answer:
 *   sleep_ms=M  stay M ms inside the request, between pm_pre_dispatch and
 *               pm_post_dispatch;
 *   body=N      answer N bytes of pu_pattern_byte() (half before the sleep, half after);
 *   otherwise   "Hello from worker <pid>\n".
 * Every answer carries the header "X-Worker-Pid: <pid>", and each request logs
 * "worker_app (pid P): begin <query>" to stderr as it starts.
 *
 * Environment, acted on in each worker right after pm_manage returns:
 *   WORKER_APP_CRASH_AT_START=1  the worker calls _exit(3);
 *   WORKER_APP_INIT_SLEEP_MS=M   the server-init hook stays M ms (the worker is not
 *                                yet serving: a TERM must wait for the end of init);
 *   WORKER_APP_POST_SLEEP_MS=M   the post-dispatch hook stays M ms (the window
 *                                after pm_post_dispatch's checks, before accept);
 *   WORKER_APP_EXIT_AT_START=N   the worker calls exit(N) (an application that cannot
 *                                start: e.g. no socket to serve);
 *   WORKER_APP_BLOCK_TERM=1      the worker blocks SIGTERM and SIGHUP (and logs
 *                                "worker_app (pid P): TERM and HUP blocked"), and
 *                                stays when its accept loop ends (the manager's
 *                                shutdown of the socket ends it): a worker deaf to
 *                                TERM, which only SIGKILL ends.
 *   WORKER_APP_PLAIN_ACCEPT=1    the loop is libfcgi's own, FCGX_Accept_r without
 *                                pm_fcgx_accept (as FCGI.pm runs it), between
 *                                pm_accept_begin and pm_accept_end (as the Perl binding
 *                                wraps FCGI.pm's): a connection kept alive is waited
 *                                on inside FCGX_Accept_r;
 *   WORKER_APP_ACCEPT_SLEEP_MS=M with it, M ms after pm_accept_begin, before
 *                                FCGX_Accept_r (inside the wait, before its read).
 *
 * When the accept loop ends it logs "worker_app (pid P): loop ended" and returns 0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcgi_pm_fcgx.h"
#include "proc_util.h" /* pu_pattern_byte */

/* One line to stderr in a single write, so that lines of several processes sharing
 * the log file never interleave. */
static void say(const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, "worker_app (pid %d): ", (int)getpid());
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

/* The number after "name=" in query, or -1 if name is absent. */
static long query_number(const char *query, const char *name)
{
    size_t len = strlen(name);
    const char *p = query;
    while (p) {
        if (strncmp(p, name, len) == 0 && p[len] == '=')
            return strtol(p + len + 1, NULL, 10);
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return -1;
}

/* Sleeps ms milliseconds in all, whatever signals arrive meanwhile. */
static void sleep_through_signals(long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR) {
    }
}

/* Writes bytes [from, to) of the pattern. */
static void put_pattern(FCGX_Stream *out, size_t from, size_t to)
{
    char chunk[4096];
    while (from < to) {
        size_t n = to - from < sizeof chunk ? to - from : sizeof chunk;
        for (size_t i = 0; i < n; i++)
            chunk[i] = pu_pattern_byte(from + i);
        if (FCGX_PutStr(chunk, (int)n, out) < 0)
            return;
        from += n;
    }
}

static void answer(FCGX_Request *req)
{
    const char *query = FCGX_GetParam("QUERY_STRING", req->envp);
    if (!query)
        query = "";
    say("begin %s", query);
    long sleep_ms = query_number(query, "sleep_ms");
    long body = query_number(query, "body");

    FCGX_FPrintF(req->out, "Content-Type: %s\r\nX-Worker-Pid: %d\r\n\r\n",
                 body >= 0 ? "application/octet-stream" : "text/plain", (int)getpid());
    if (body >= 0) {
        /* Half now, the rest after the sleep: a signal may land between the writes. */
        put_pattern(req->out, 0, (size_t)body / 2);
        FCGX_FFlush(req->out);
    }
    if (sleep_ms > 0)
        sleep_through_signals(sleep_ms);
    if (body >= 0)
        put_pattern(req->out, (size_t)body / 2, (size_t)body);
    else
        FCGX_FPrintF(req->out, "Hello from worker %d\n", (int)getpid());
}

/* A hook that sleeps the milliseconds it is given, logging when it starts. */
static void sleeping_hook(pm_t *pm, void *user)
{
    (void)pm;
    say("hook sleeps %ld ms", (long)(intptr_t)user);
    sleep_through_signals((long)(intptr_t)user);
}

static int env_is_set(const char *name)
{
    const char *v = getenv(name);
    return v && strcmp(v, "1") == 0;
}

/* Passes each "name=value" argument to pm_parameter. 0, or -1 (reported) if one
 * is malformed or refused. */
static int set_parameters(pm_t *pm, int count, char **args)
{
    for (int i = 0; i < count; i++) {
        char name[128];
        const char *eq = strchr(args[i], '=');
        if (!eq || (size_t)(eq - args[i]) >= sizeof name) {
            fprintf(stderr, "worker_app: expected name=value, got '%s'\n", args[i]);
            return -1;
        }
        snprintf(name, sizeof name, "%.*s", (int)(eq - args[i]), args[i]);
        int rc = pm_parameter(pm, name, eq + 1);
        if (rc != 0) {
            fprintf(stderr, "worker_app: pm_parameter %s: %s (%s)\n", args[i],
                    pm_strerror(rc), pm_errmsg(pm));
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: worker_app SOCKET [name=value ...]\n");
        return 2;
    }
    if (FCGX_Init() != 0) {
        fprintf(stderr, "worker_app: FCGX_Init failed\n");
        return 1;
    }
    int sock = FCGX_OpenSocket(argv[1], 128);
    if (sock < 0) {
        fprintf(stderr, "worker_app: cannot listen on %s\n", argv[1]);
        return 1;
    }

    pm_t *pm = pm_create();
    if (!pm) {
        fprintf(stderr, "worker_app: pm_create: out of memory\n");
        return 1;
    }
    if (set_parameters(pm, argc - 2, argv + 2) < 0) {
        pm_destroy(pm);
        return 2;
    }

    const char *init_sleep = getenv("WORKER_APP_INIT_SLEEP_MS");
    const char *post_sleep = getenv("WORKER_APP_POST_SLEEP_MS");
    if (init_sleep)
        pm_set_hook(pm, PM_HOOK_SERVER_INIT, sleeping_hook, (void *)(intptr_t)atol(init_sleep));
    if (post_sleep)
        pm_set_hook(pm, PM_HOOK_POST_DISPATCH, sleeping_hook, (void *)(intptr_t)atol(post_sleep));

    int role = pm_manage(pm);
    if (role < 0) {
        fprintf(stderr, "worker_app: pm_manage: %s\n", pm_errmsg(pm));
        pm_destroy(pm);
        return 1;
    }
    if (role == PM_SINGLE_PROCESS)
        say("single-process mode");
    if (role == PM_WORKER && getenv("WORKER_APP_EXIT_AT_START"))
        exit(atoi(getenv("WORKER_APP_EXIT_AT_START")));
    if (role == PM_WORKER && env_is_set("WORKER_APP_CRASH_AT_START"))
        _exit(3);
    if (role == PM_WORKER && env_is_set("WORKER_APP_BLOCK_TERM")) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        sigprocmask(SIG_BLOCK, &set, NULL);
        say("TERM and HUP blocked");
    }

    FCGX_Request req;
    FCGX_InitRequest(&req, sock, 0); /* no EINTR needed: see examples/hello.c */
    if (env_is_set("WORKER_APP_PLAIN_ACCEPT")) {
        const char *accept_sleep = getenv("WORKER_APP_ACCEPT_SLEEP_MS");
        for (;;) {
            if (pm_accept_begin(pm) == 1) {
                FCGX_Finish_r(&req);
                break;
            }
            if (accept_sleep)
                sleep_through_signals(atol(accept_sleep));
            int rc = FCGX_Accept_r(&req);
            pm_accept_end(pm);
            if (rc < 0)
                break;
            pm_pre_dispatch(pm);
            answer(&req);
            FCGX_Finish_r(&req);
            pm_post_dispatch(pm);
        }
    } else {
        while (pm_fcgx_accept(pm, &req) >= 0) {
            pm_pre_dispatch(pm);
            answer(&req);
            FCGX_Finish_r(&req);
            pm_post_dispatch(pm);
        }
    }
    say("loop ended");
    if (role == PM_WORKER && env_is_set("WORKER_APP_BLOCK_TERM"))
        for (;;)
            pause();
    pm_destroy(pm);
    return 0;
}
