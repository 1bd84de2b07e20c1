/*
 * first_floor -- the least an ondemand pool's first request can cost on this machine:
 * a process with no worker that listens on a unix socket at PATH (mode 0666), sleeps
 * in poll(2) until a connection waits, forks one child, and waits for it. The child
 * serves with libfcgi (FCGX_Accept_r; the answer's body is "pid <pid>\n", as
 * tests/status_app's) until no connection came for IDLE_MS (default 1000), then
 * exits, and the pool is back at none. No scoreboard, no log, no signal handling, no
 * crash check: a fork and an accept, nothing else.
 * With --recycle N instead: one child at all times, which serves N requests and
 * exits; as its last one begins it tells the parent (a pipe), which forks its
 * replacement then, as fcgi-pm does for max_requests: the floor of a recycle, where
 * a new process's first request meets its page tables empty.
 * bench/pool.sh builds it (cc -O2 -lfcgi) and times its first requests as it times
 * the managers'.
 * Usage: first_floor PATH [IDLE_MS | --recycle N]
 */
#define _GNU_SOURCE
#include <fcgiapp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Serves until idle for idle_ms (-1: never), or, with limit > 0, for limit requests,
 * writing a byte to tell as the last one begins. */
static void serve(int idle_ms, int limit, int tell)
{
    FCGX_Request req;
    if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
        _exit(1);
    for (int served = 0;; served++) {
        struct pollfd p = {.fd = 0, .events = POLLIN};
        if (poll(&p, 1, idle_ms) == 0)
            _exit(0); /* idle: the pool goes back to none */
        if (FCGX_Accept_r(&req) < 0)
            _exit(1);
        if (limit > 0 && served + 1 == limit && write(tell, "r", 1) != 1)
            _exit(1);
        FCGX_FPrintF(req.out, "Content-Type: text/plain\r\n\r\npid %d\n", (int)getpid());
        FCGX_Finish_r(&req);
        if (limit > 0 && served + 1 == limit)
            _exit(0);
    }
}

static int recycle(int limit)
{
    int tell[2];
    if (pipe(tell) != 0)
        return 1;
    for (;;) { /* a child now, and another each time the last one's last request begins */
        pid_t child = fork();
        if (child < 0)
            return 1;
        if (child == 0) {
            close(tell[0]);
            serve(-1, limit, tell[1]);
        }
        char c;
        if (read(tell[0], &c, 1) != 1)
            return 1;
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: first_floor PATH [IDLE_MS]\n");
        return 2;
    }
    int limit = argc > 3 && strcmp(argv[2], "--recycle") == 0 ? atoi(argv[3]) : 0;
    int idle_ms = argc > 2 && !limit ? atoi(argv[2]) : 1000;
    unlink(argv[1]);
    int fd = FCGX_OpenSocket(argv[1], 1024);
    if (fd < 0 || chmod(argv[1], 0666) != 0 || (fd != 0 && dup2(fd, 0) != 0)) {
        perror("first_floor: socket");
        return 1;
    }
    if (limit > 0)
        return recycle(limit);
    for (;;) {
        struct pollfd p = {.fd = 0, .events = POLLIN};
        if (poll(&p, 1, -1) < 0)
            return 1;
        pid_t child = fork();
        if (child < 0)
            return 1;
        if (child == 0)
            serve(idle_ms, 0, -1);
        waitpid(child, NULL, 0);
    }
}
