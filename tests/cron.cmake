# The cron table test: tests/cron/cron_table.js runs the npm package cron-parser pinned under
# tests/interop/node_modules (BullMQ 6.7.0's) over patterns x zones x start times and compares
# with jobq's evaluation through tests/cron/cron_eval.c. Needs node and `npm ci` in
# tests/interop (scripts/test does it); skipped (77) without them. Included by
# tests/CMakeLists.txt.
add_executable(cron_eval ${CMAKE_CURRENT_SOURCE_DIR}/cron/cron_eval.c)
target_include_directories(cron_eval PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
target_compile_definitions(cron_eval PRIVATE _POSIX_C_SOURCE=200809L ${jobq_definitions})
target_link_libraries(cron_eval PRIVATE jobq_static)
jobq_set_warnings(cron_eval)

find_program(JOBQ_NODE node)
if(NOT JOBQ_NODE)
  message(STATUS "jobq: node not found, unit.cron_table disabled")
  return()
endif()
add_test(NAME unit.cron_table
  COMMAND ${JOBQ_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/cron/cron_table.js $<TARGET_FILE:cron_eval>)
jobq_test_properties(unit.cron_table "unit;interop")
add_test(NAME unit.cron_table.big
  COMMAND ${JOBQ_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/cron/cron_table.js $<TARGET_FILE:cron_eval> --big)
jobq_test_properties(unit.cron_table.big "unit;interop;slow")
set_tests_properties(unit.cron_table.big PROPERTIES TIMEOUT 1800)
