# The life-cycle driver and the applications every system runs (bench/run).
add_executable(lifecycle lifecycle.c)
target_compile_options(lifecycle PRIVATE -Wall -Wextra)
add_executable(hello_plain apps/hello_plain.c)
target_link_libraries(hello_plain PRIVATE PkgConfig::FCGI)
add_executable(crash_pm apps/crash_pm.c)
target_link_libraries(crash_pm PRIVATE fcgi-pm::fcgi-pm PkgConfig::FCGI)
add_executable(floor apps/floor.c)
