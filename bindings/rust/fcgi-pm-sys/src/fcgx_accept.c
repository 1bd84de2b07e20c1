/* pm_fcgx_accept, the header-only accept of fcgi_pm_fcgx.h, as a function Rust can call. */
#include <fcgi_pm_fcgx.h>

int fcgi_pm_fcgx_accept(pm_t *pm, FCGX_Request *req)
{
    return pm_fcgx_accept(pm, req);
}
