# The life-cycle driver and the applications every system runs (bench/run).
add_executable(lifecycle lifecycle.c)
target_compile_options(lifecycle PRIVATE -Wall -Wextra)
add_executable(hello_plain apps/hello_plain.c)
target_link_libraries(hello_plain PRIVATE PkgConfig::FCGI)
add_executable(crash_pm apps/crash_pm.c)
target_link_libraries(crash_pm PRIVATE fcgi-pm::fcgi-pm PkgConfig::FCGI)
add_executable(floor apps/floor.c)
target_link_libraries(floor PRIVATE PkgConfig::FCGI)
add_executable(quick_exit_pm apps/quick_exit_pm.c)
target_link_libraries(quick_exit_pm PRIVATE fcgi-pm::fcgi-pm PkgConfig::FCGI)
add_executable(floor_return apps/floor.c)
target_compile_definitions(floor_return PRIVATE FLOOR_RETURN)
target_link_libraries(floor_return PRIVATE fcgi-pm::fcgi-pm PkgConfig::FCGI)
# Every application linked as examples/hello is (symbols bound at load, not in each
# worker), so that the floors' workers are the library's and the peers run the same.
foreach(_app hello_plain crash_pm floor quick_exit_pm floor_return)
  target_link_options(${_app} PRIVATE "LINKER:-z,now")
endforeach()
