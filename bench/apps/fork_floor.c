/*
 * fork_floor -- what the hardware allows a pool to grow at: one small process forks N
 * children that only pause(), as fast as it can, and times it from before the first
 * fork to the return of the last one (CLOCK_MONOTONIC, in the parent). Nothing is
 * logged or counted beyond a pid array: the figure is fork's own cost here, N times.
 * With PROGRAM, each child execs it instead of pausing (as an exec'd pool's workers
 * do): the same forks, with the children's execs competing for the CPUs meanwhile.
 * Then the children are killed and waited for, and the round is repeated R times
 * (default 1); each round prints "fork_floor N MS".
 * bench/pool.sh builds it (cc -O2 -Wl,-z,now) and takes the median of the rounds.
 * Usage: fork_floor N [R [PROGRAM ARGS...]]
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 64, rounds = argc > 2 ? atoi(argv[2]) : 1;
    if (n < 1 || rounds < 1) {
        fprintf(stderr, "usage: fork_floor N [R]\n");
        return 2;
    }
    pid_t *kids = calloc((size_t)n, sizeof *kids);
    if (!kids)
        return 1;
    for (int r = 0; r < rounds; r++) {
        double t0 = now_ms();
        for (int i = 0; i < n; i++) {
            kids[i] = fork();
            if (kids[i] < 0) {
                perror("fork_floor: fork");
                return 1;
            }
            if (kids[i] == 0) {
                if (argc > 3) {
                    execv(argv[3], argv + 3);
                    _exit(127);
                }
                for (;;)
                    pause();
            }
        }
        double t1 = now_ms();
        for (int i = 0; i < n; i++)
            kill(kids[i], SIGKILL);
        for (int i = 0; i < n; i++)
            waitpid(kids[i], NULL, 0);
        printf("fork_floor %d %.3f\n", n, t1 - t0);
        fflush(stdout);
    }
    return 0;
}
