# The edges of the life cycle and the API bindings drive (issue 13): control_app as
# real processes on the pool fixture, cgi-fcgi as the client.
add_executable(control_app ${CMAKE_CURRENT_SOURCE_DIR}/control/control_app.c)
target_link_libraries(control_app PRIVATE fcgi-pm::fcgi-pm PkgConfig::FCGI)
pm_add_test(NAME test_control SOURCES control/test_control.c
  LIBS pm_test_fixture fcgi-pm::fcgi-pm LABELS "process;fault" TIMEOUT 120)
target_compile_definitions(test_control PRIVATE CONTROL_APP="$<TARGET_FILE:control_app>")
add_dependencies(test_control control_app)
