/*
 * quick_exit_pm -- examples/hello's loop on libfcgi-pm, except that a worker whose
 * loop has ended calls _exit(0) instead of returning from main: no pm_destroy, no
 * exit handlers, no stdio flush. A yardstick for the stop measures: the difference
 * from hello is what the application's own exit costs in forked workers.
 * Usage: quick_exit_pm SOCKET N_PROCESSES
 */
#include <fcgiapp.h>
#include <unistd.h>

#include <fcgi_pm_fcgx.h>

int main(int argc, char **argv)
{
    int sock;
    if (argc != 3 || FCGX_Init() != 0 || (sock = FCGX_OpenSocket(argv[1], 128)) < 0)
        return 2;
    pm_t *pm = pm_create();
    if (!pm || pm_parameter(pm, "n_processes", argv[2]) != 0 || pm_manage(pm) < 0)
        return 1;
    FCGX_Request req;
    FCGX_InitRequest(&req, sock, 0);
    while (pm_fcgx_accept(pm, &req) >= 0) {
        pm_pre_dispatch(pm);
        FCGX_FPrintF(req.out, "Content-Type: text/plain\r\n\r\nHello from worker %d\n", (int)getpid());
        FCGX_Finish_r(&req);
        pm_post_dispatch(pm);
    }
    _exit(0);
}
