/*
 * notify_sink -- a stand-in for systemd's notification socket.
 *
 *     notify_sink PATH
 *
 * Binds a unix datagram socket at PATH and prints each datagram received as one
 * line, its own newlines shown as " | ", then " | RECEIVED_USEC=" and CLOCK_MONOTONIC
 * at reception in microseconds; flushed at once, until killed.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (argc != 2 || strlen(argv[1]) >= sizeof addr.sun_path) {
        fprintf(stderr, "usage: notify_sink PATH\n");
        return 2;
    }
    strcpy(addr.sun_path, argv[1]);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("notify_sink");
        return 1;
    }
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n < 0)
            continue;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == '\n')
                fputs(" | ", stdout);
            else
                fputc(buf[i], stdout);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        printf(" | RECEIVED_USEC=%lld\n", (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000);
        fflush(stdout);
    }
}
