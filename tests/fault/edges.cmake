# test_fault_edges: docs/reliability.md R3 (HUP storm under load through nginx), R9 (fork
# failing while the pool fills), R10 (manager SIGKILLed with idle and busy workers),
# R11 (pid file: stale, foreign, second manager, symlink, FIFO). Included from
# tests/CMakeLists.txt: paths are relative to tests/.
#
# R3 needs nginx (Debian: nginx-light) and wrk, or curl as a fallback load; without
# nginx it is skipped (a warning here says so).
find_program(EDGES_NGINX_PROGRAM nginx PATHS /usr/sbin /sbin)
find_program(EDGES_WRK_PROGRAM wrk)
find_program(EDGES_CURL_PROGRAM curl)
if(NOT EDGES_NGINX_PROGRAM)
  message(WARNING "nginx not found (package nginx-light): test_fault_edges skips R3")
endif()
if(NOT EDGES_WRK_PROGRAM AND NOT EDGES_CURL_PROGRAM)
  message(WARNING "neither wrk nor curl found: test_fault_edges skips R3")
endif()

pm_add_test(NAME test_fault_edges
  SOURCES fault/test_fault_edges.c fault/edges_support.c process/proc_util.c
  LIBS m
  LABELS fault
  TIMEOUT 180)
target_include_directories(test_fault_edges PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/process ${CMAKE_CURRENT_SOURCE_DIR}/fault)
target_compile_definitions(test_fault_edges PRIVATE
  WORKER_APP="$<TARGET_FILE:worker_app>"
  FAIL_FORK_SHIM="$<TARGET_FILE:fail_fork>"
  $<$<BOOL:${CGI_FCGI_PROGRAM}>:CGI_FCGI="${CGI_FCGI_PROGRAM}">
  $<$<AND:$<BOOL:${EDGES_NGINX_PROGRAM}>,$<OR:$<BOOL:${EDGES_WRK_PROGRAM}>,$<BOOL:${EDGES_CURL_PROGRAM}>>>:NGINX="${EDGES_NGINX_PROGRAM}">
  $<$<BOOL:${EDGES_WRK_PROGRAM}>:WRK="${EDGES_WRK_PROGRAM}">
  $<$<BOOL:${EDGES_CURL_PROGRAM}>:CURL="${EDGES_CURL_PROGRAM}">)
add_dependencies(test_fault_edges worker_app fail_fork)
