#include "title.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace fcgipm {

namespace {

struct argv_area {
    char *start = nullptr;
    size_t size = 0;
};

// The kernel reports where the argv strings live: fields 48 and 49 of
// /proc/self/stat (arg_start, arg_end).
argv_area find_argv_area() {
    argv_area area;
    int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return area;
    char buf[1024];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0)
        return area;
    buf[n] = '\0';
    char *p = std::strrchr(buf, ')');  // comm may hold spaces and parentheses
    if (!p)
        return area;
    unsigned long start = 0, end = 0;
    ++p;
    for (int field = 3; field <= 49 && *p; ++field) {
        while (*p == ' ')
            ++p;
        if (field == 48)
            start = std::strtoul(p, nullptr, 10);
        if (field == 49)
            end = std::strtoul(p, nullptr, 10);
        while (*p && *p != ' ')
            ++p;
    }
    // Only if the kernel's argv is the program's own (argv[0] is where glibc saw it):
    // under valgrind or another loader, that memory belongs to someone else.
    if (start && end > start && reinterpret_cast<char *>(start) == program_invocation_name) {
        area.start = reinterpret_cast<char *>(start);
        area.size = end - start;
    }
    return area;
}

// Found once; glibc's program name, which points into argv, is copied first (for
// error(3) and syslog(3)) so that a title cannot overwrite it.
const argv_area &the_argv_area() {
    static const argv_area area = [] {
        argv_area a = find_argv_area();
        if (a.start) {
            char *name = ::strdup(program_invocation_name);
            char *slash = name ? std::strrchr(name, '/') : nullptr;
            if (name) {
                program_invocation_name = name;
                program_invocation_short_name = slash ? slash + 1 : name;
            }
        }
        return a;
    }();
    return area;
}

}  // namespace

void set_process_title(const std::string &title) {
    ::prctl(PR_SET_NAME, title.c_str(), 0, 0, 0);
    const argv_area &area = the_argv_area();
    if (!area.start || area.size < 2)
        return;
    size_t len = title.size() < area.size - 1 ? title.size() : area.size - 1;
    std::memcpy(area.start, title.data(), len);
    std::memset(area.start + len, 0, area.size - len);
}

saved_title save_process_title() {
    saved_title t;
    ::prctl(PR_GET_NAME, t.comm, 0, 0, 0);
    const argv_area &area = the_argv_area();
    if (area.start)
        t.area.assign(area.start, area.size);
    return t;
}

void restore_process_title(const saved_title &t) {
    ::prctl(PR_SET_NAME, t.comm, 0, 0, 0);
    const argv_area &area = the_argv_area();
    if (area.start && t.area.size() == area.size)
        std::memcpy(area.start, t.area.data(), area.size);
}

}  // namespace fcgipm
