/*
 * first_floor -- the least an ondemand pool's first request can cost on this machine:
 * a process with no worker that listens on a unix socket at PATH (mode 0666), sleeps
 * in poll(2) until a connection waits, forks one child, and waits for it. The child
 * serves with libfcgi (FCGX_Accept_r; the answer's body is "pid <pid>\n", as
 * tests/status_app's) until no connection came for IDLE_MS (default 1000), then
 * exits, and the pool is back at none. No scoreboard, no log, no signal handling, no
 * crash check: a fork and an accept, nothing else.
 * bench/pool.sh builds it (cc -O2 -lfcgi) and times its first request as it times
 * the managers'.
 * Usage: first_floor PATH [IDLE_MS]
 */
#define _GNU_SOURCE
#include <fcgiapp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void serve(int idle_ms)
{
    FCGX_Request req;
    if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
        _exit(1);
    for (;;) {
        struct pollfd p = {.fd = 0, .events = POLLIN};
        if (poll(&p, 1, idle_ms) == 0)
            _exit(0); /* idle: the pool goes back to none */
        if (FCGX_Accept_r(&req) < 0)
            _exit(1);
        FCGX_FPrintF(req.out, "Content-Type: text/plain\r\n\r\npid %d\n", (int)getpid());
        FCGX_Finish_r(&req);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: first_floor PATH [IDLE_MS]\n");
        return 2;
    }
    int idle_ms = argc > 2 ? atoi(argv[2]) : 1000;
    unlink(argv[1]);
    int fd = FCGX_OpenSocket(argv[1], 1024);
    if (fd < 0 || chmod(argv[1], 0666) != 0 || (fd != 0 && dup2(fd, 0) != 0)) {
        perror("first_floor: socket");
        return 1;
    }
    for (;;) {
        struct pollfd p = {.fd = 0, .events = POLLIN};
        if (poll(&p, 1, -1) < 0)
            return 1;
        pid_t child = fork();
        if (child < 0)
            return 1;
        if (child == 0)
            serve(idle_ms);
        waitpid(child, NULL, 0);
    }
}
