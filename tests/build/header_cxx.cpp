// fcgi_pm.h must compile on its own as strict C++17.
#include "fcgi_pm.h"
#include "fcgi_pm_fcgx.h"

int header_cxx_uses();
int header_cxx_uses() { return PM_VERSION_NUMBER + PM_EINVAL + (pm_version() != nullptr); }
