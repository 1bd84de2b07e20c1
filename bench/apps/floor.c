/*
 * floor -- the least a pre-forking manager can do, as a yardstick: N children that
 * only wait for a signal (no program, no libraries beyond libc), respawned at once
 * when one dies, all sent TERM on HUP (and respawned), all sent TERM on TERM and
 * waited for. No logging, no bookkeeping beyond a pid array. What the benchmark
 * measures for it is what fork, exit and wait cost on the machine.
 * Usage: floor N
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t spawn(const sigset_t *child_mask)
{
    pid_t pid = fork();
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, child_mask, NULL);
        for (;;)
            pause(); /* TERM's default action ends it */
    }
    return pid;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 0;
    if (n < 1)
        return 2;
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
