/* pm_fcgx_accept_r, the header-only accept of fcgi_pm_fcgx.h, as a function Rust can call. */
#include <fcgi_pm_fcgx.h>

int fcgi_pm_fcgx_accept_r(pm_t *pm, FCGX_Request *req, int *fcgx_rc)
{
    return pm_fcgx_accept_r(pm, req, fcgx_rc);
}
