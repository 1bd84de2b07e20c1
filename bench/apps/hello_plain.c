/*
 * hello_plain -- the benchmark's C responder with no process manager in it: plain
 * libfcgi on the socket at descriptor 0, as spawn-fcgi, multiwatch and the fcgi-pm
 * program run it. Same answer as examples/hello.
 * With BENCH_CRASH_LOG set it appends a line to that file and exits 1 at once: an
 * application that crashes at start.
 */
#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
    const char *crash_log = getenv("BENCH_CRASH_LOG");
    if (crash_log) {
        FILE *f = fopen(crash_log, "a");
        if (f) {
            fprintf(f, "%d\n", (int)getpid());
            fclose(f);
        }
        return 1;
    }
    if (FCGX_Init() != 0)
        return 1;
    FCGX_Request req;
    FCGX_InitRequest(&req, 0, 0);
    while (FCGX_Accept_r(&req) >= 0) {
        FCGX_FPrintF(req.out, "Content-Type: text/plain\r\n\r\nHello from worker %d\n", (int)getpid());
        FCGX_Finish_r(&req);
    }
    return 0;
}
