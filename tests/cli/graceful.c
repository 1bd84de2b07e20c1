/*
 * graceful.c -- a FastCGI program on libfcgi alone (not on this library), as the
 * fcgi-pm program runs it, that stops gracefully on one signal only.
 *
 * Usage (as fcgi-pm's program): graceful SIG
 *   SIG (TERM, INT, QUIT, HUP, USR1 or USR2) lets the request in progress finish,
 *   then the program logs "graceful (pid P): SIG: stopping" and exits 0; idle, it
 *   stops at once. TERM is ignored when SIG is another; every other signal is left
 *   as exec left it (SIGINT at its default kills the program mid-request). Nothing
 *   else stops it: when accept fails (the manager shuts the listening socket down as
 *   it stops the pool), it waits for SIG.
 *   Logs "graceful (pid P): ready" before its first accept, and "graceful (pid P):
 *   serving ms=N" at the start of each request; the request sleeps N ms (QUERY_STRING
 *   "ms=N"; resumed across signals), then answers "graceful P slept N ms".
 */
#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;

static void on_stop(int signo)
{
    (void)signo;
    stopping = 1;
    FCGX_ShutdownPending(); /* libfcgi's accept gives up too */
}

/* Sleeps ms milliseconds whatever signals arrive meanwhile. */
static void sleep_ms(long ms)
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

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int signo;
    } names[] = {{"TERM", SIGTERM}, {"INT", SIGINT}, {"QUIT", SIGQUIT},
                 {"HUP", SIGHUP},   {"USR1", SIGUSR1}, {"USR2", SIGUSR2}};
    int signo = 0;
    const char *name = argc > 1 ? argv[1] : "";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
        if (strcmp(name, names[i].name) == 0)
            signo = names[i].signo;
    if (!signo) {
        fprintf(stderr, "usage: graceful TERM|INT|QUIT|HUP|USR1|USR2\n");
        return 2;
    }
    if (FCGX_Init() != 0)
        return 1;
    /* After FCGX_Init, which takes over some signals left at their defaults. No
     * SA_RESTART: the signal ends a waiting accept. */
    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    sigaction(signo, &sa, NULL);
    if (signo != SIGTERM) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGTERM, &sa, NULL);
    }
    int pid = (int)getpid();
    fprintf(stderr, "graceful (pid %d): ready\n", pid);
    FCGX_Request req;
    FCGX_InitRequest(&req, 0, FCGI_FAIL_ACCEPT_ON_INTR);
    while (!stopping) {
        int rc = FCGX_Accept_r(&req);
        if (rc == -EINTR && !stopping)
            continue; /* another signal */
        if (rc < 0 && !stopping) {
            sigset_t only, old;
            sigemptyset(&only);
            sigaddset(&only, signo);
            sigprocmask(SIG_BLOCK, &only, &old);
            while (!stopping)
                sigsuspend(&old);
            sigprocmask(SIG_SETMASK, &old, NULL);
        }
        if (rc < 0)
            break;
        const char *query = FCGX_GetParam("QUERY_STRING", req.envp);
        long ms = query && strncmp(query, "ms=", 3) == 0 ? atol(query + 3) : 0;
        fprintf(stderr, "graceful (pid %d): serving ms=%ld\n", pid, ms);
        sleep_ms(ms);
        FCGX_FPrintF(req.out, "Content-Type: text/plain\r\n\r\ngraceful %d slept %ld ms\n", pid, ms);
        FCGX_Finish_r(&req);
    }
    if (stopping)
        fprintf(stderr, "graceful (pid %d): %s: stopping\n", pid, name);
    return 0;
}
