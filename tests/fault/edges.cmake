# Fault injection at the pool's edges, n = 8 workers of worker_app, one program per
# scenario (docs/reliability.md):
#   test_fault_edges_connections    R3 (HUP storm under load through nginx; a HUP
#                                   between accept and request), R5 with a kept-alive
#                                   connection
#   test_fault_edges_fork           R9 (fork failing while the pool fills)
#   test_fault_edges_manager_killed R10 (manager SIGKILLed with idle and busy workers)
#   test_fault_edges_pid_file       R11 (pid file: stale, foreign, second manager,
#                                   symlink, FIFO)
# Included from tests/CMakeLists.txt (after pool.cmake): paths are relative to tests/.
#
# R3 needs nginx (Debian: nginx-light) and wrk, or curl as a fallback load; without
# nginx it is skipped (a warning here says so).
find_program(EDGES_NGINX_PROGRAM nginx PATHS /usr/sbin /sbin)
find_program(EDGES_WRK_PROGRAM wrk)
find_program(EDGES_CURL_PROGRAM curl)
if(NOT EDGES_NGINX_PROGRAM)
  message(WARNING "nginx not found (package nginx-light): test_fault_edges_connections skips R3")
endif()
if(NOT EDGES_WRK_PROGRAM AND NOT EDGES_CURL_PROGRAM)
  message(WARNING "neither wrk nor curl found: test_fault_edges_connections skips R3")
endif()

foreach(_scenario connections:180 fork:120 manager_killed:120 pid_file:120)
  string(REPLACE ":" ";" _scenario ${_scenario})
  list(GET _scenario 0 _name)
  list(GET _scenario 1 _timeout)
  pm_add_test(NAME test_fault_edges_${_name}
    SOURCES fault/test_fault_edges_${_name}.c fault/edges_support.c
    LIBS pm_fault_support
    LABELS fault
    TIMEOUT ${_timeout})
endforeach()
target_compile_definitions(test_fault_edges_connections PRIVATE
  $<$<AND:$<BOOL:${EDGES_NGINX_PROGRAM}>,$<OR:$<BOOL:${EDGES_WRK_PROGRAM}>,$<BOOL:${EDGES_CURL_PROGRAM}>>>:NGINX="${EDGES_NGINX_PROGRAM}">
  $<$<BOOL:${EDGES_WRK_PROGRAM}>:WRK="${EDGES_WRK_PROGRAM}">
  $<$<BOOL:${EDGES_CURL_PROGRAM}>:CURL="${EDGES_CURL_PROGRAM}">)
target_compile_definitions(test_fault_edges_fork PRIVATE FAIL_FORK_SHIM="$<TARGET_FILE:fail_fork>")
add_dependencies(test_fault_edges_fork fail_fork)
