# test_fault_pool: docs/reliability.md R1 (1000 random SIGKILLs over 60 s), R2 (all n
# killed at once, 200 rounds), R4 (1000 HUPs in 1 s), R5 (TERM, idle), R6 (TERM
# during a 2 s request), R7 (workers block TERM, die_timeout 2), R8 (crash at start
# for 60 s) and R12 (manager fd count over 10^4 respawns), on worker_app, n = 8.
# Included from tests/CMakeLists.txt: paths are relative to tests/.
# R1 and R8 run 60 s each; the whole program takes about 2.5 minutes.
pm_add_test(NAME test_fault_pool
  SOURCES fault/test_fault_pool.c process/proc_util.c
  LABELS fault
  TIMEOUT 420)
target_include_directories(test_fault_pool PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/process)
target_compile_definitions(test_fault_pool PRIVATE
  WORKER_APP="$<TARGET_FILE:worker_app>"
  $<$<BOOL:${CGI_FCGI_PROGRAM}>:CGI_FCGI="${CGI_FCGI_PROGRAM}">)
add_dependencies(test_fault_pool worker_app)
# Its pass criteria are latencies of a few ms to 100 ms on real processes: other
# tests running at the same time (ctest -j) would measure the machine, not fcgi-pm.
set_tests_properties(test_fault_pool PROPERTIES RUN_SERIAL TRUE)
