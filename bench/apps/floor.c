/*
 * floor -- the least a pre-forking manager can do, as a yardstick: N children that
 * only wait for a signal (no program; libfcgi is linked, but untouched), respawned at once
 * when one dies, all sent TERM on HUP (and respawned), all sent TERM on TERM and
 * waited for. No logging, no bookkeeping beyond a pid array. What the benchmark
 * measures for it is what fork, exit and wait cost on the machine.
 * With SOCKET, the children block in libfcgi's accept on it instead (and still die
 * by TERM's default action): what having run an accept loop adds.
 * With SOCKET and a MODE, the floor for a real application's stop:
 *   exec PROGRAM...  each child execs PROGRAM with the socket on descriptor 0, as
 *                    spawn-fcgi does (the fcgi-pm program's workers are such)
 *   return           (floor_return, built with libfcgi-pm) each child ends its accept
 *                    loop on TERM (libfcgi's handler) and leaves as examples/hello's
 *                    workers do ("worker_exit" "_exit_unflushed"): _exit(0) at once
 * Usage: floor N [SOCKET [exec PROGRAM... | return]]
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>
#ifdef FLOOR_RETURN
#include <fcgi_pm.h>
#endif

static int listen_fd = -1;
static char **program;   /* exec mode */
static int returning;    /* return mode */
#ifdef FLOOR_RETURN
static pm_t *pm;         /* as examples/hello has one */
#endif

static pid_t spawn(const sigset_t *child_mask)
{
    pid_t pid = fork();
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, child_mask, NULL);
        if (program) {
            if (dup2(listen_fd, 0) < 0)
                _exit(127);
            execv(program[0], program);
            _exit(127);
        }
        FCGX_Request req;
        if (listen_fd >= 0)
            FCGX_InitRequest(&req, listen_fd, 0);
        if (returning) { /* libfcgi's TERM handler ends the loop */
            while (FCGX_Accept_r(&req) >= 0)
                FCGX_Finish_r(&req);
            _exit(0); /* as the library ends hello's workers */
        }
        for (;;) /* TERM's default action ends it */
            if (listen_fd < 0)
                pause();
            else
                FCGX_Accept_r(&req);
    }
    return pid;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 0;
    if (n < 1)
        return 2;
    if (argc > 3 && !strcmp(argv[3], "exec") && argc > 4)
        program = argv + 4;
    else if (argc > 3 && !strcmp(argv[3], "return"))
        returning = 1;
    else if (argc > 3)
        return 2;
#ifdef FLOOR_RETURN
    if (returning && !(pm = pm_create()))
        return 1;
#else
    if (returning)
        return 2; /* floor_return has it */
#endif
    if (argc > 2) {
        if (FCGX_Init() != 0 || (listen_fd = FCGX_OpenSocket(argv[2], 128)) < 0)
            return 2;
        if (!returning)
            signal(SIGTERM, SIG_DFL); /* FCGX_Init installed a handler */
    }
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    sigset_t watched, empty;
    sigemptyset(&empty);
    sigemptyset(&watched);
    sigaddset(&watched, SIGCHLD);
    sigaddset(&watched, SIGHUP);
    sigaddset(&watched, SIGTERM);
    sigprocmask(SIG_BLOCK, &watched, NULL);
    for (int i = 0; i < n; i++)
        pids[i] = spawn(&empty);
    for (;;) {
        int sig = sigwaitinfo(&watched, NULL);
        if (sig == SIGHUP || sig == SIGTERM)
            for (int i = 0; i < n; i++)
                kill(pids[i], SIGTERM);
        if (sig == SIGTERM) {
            while (wait(NULL) > 0) {
            }
            return 0;
        }
        pid_t dead;
        while ((dead = waitpid(-1, NULL, WNOHANG)) > 0)
            for (int i = 0; i < n; i++)
                if (pids[i] == dead)
                    pids[i] = spawn(&empty);
    }
}
