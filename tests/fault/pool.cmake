# Fault injection on the pool itself, n = 8 workers of worker_app, one program per
# scenario (docs/reliability.md):
#   test_fault_pool_kills      R1 (1000 random SIGKILLs over 60 s), R2 (all n killed at
#                              once, 200 rounds)
#   test_fault_pool_hup_storm  R4 (1000 HUPs in 1 s)
#   test_fault_pool_stop       R5 (TERM, idle), R6 (TERM during a 2 s request), R7
#                              (workers block TERM, die_timeout 2)
#   test_fault_pool_crash      R8 (crash at start for 60 s), R12 (manager fd count over
#                              10^4 respawns)
# R1 and R8 run 60 s each; the four programs take about 2.5 minutes in all.
# Included from tests/CMakeLists.txt: paths are relative to tests/.
add_library(pm_fault_support STATIC fault/fault_support.c)
target_include_directories(pm_fault_support PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/fault)
target_link_libraries(pm_fault_support PUBLIC pm_test_fixture)

foreach(_scenario kills:240 hup_storm:120 stop:120 crash:360)
  string(REPLACE ":" ";" _scenario ${_scenario})
  list(GET _scenario 0 _name)
  list(GET _scenario 1 _timeout)
  pm_add_test(NAME test_fault_pool_${_name}
    SOURCES fault/test_fault_pool_${_name}.c
    LIBS pm_fault_support
    LABELS fault
    TIMEOUT ${_timeout})
  # Their pass criteria are latencies of a few ms to 100 ms on real processes: other
  # tests running at the same time (ctest -j) would measure the machine, not fcgi-pm.
  set_tests_properties(test_fault_pool_${_name} PROPERTIES RUN_SERIAL TRUE)
endforeach()
