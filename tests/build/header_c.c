/* fcgi_pm.h must compile on its own as strict C99. */
#include "fcgi_pm.h"
#include "fcgi_pm_fcgx.h"

int header_c_uses(void);
int header_c_uses(void) { return PM_VERSION_NUMBER + PM_EINVAL; }
