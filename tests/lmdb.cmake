# LMDB backend tests beyond the conformance suite (included by tests/CMakeLists.txt).
# Labels: lmdb; fault for the multi-process and crash tests; slow for the long runs.
if(NOT "JOBQ_HAVE_LMDB=1" IN_LIST jobq_definitions)
  return()
endif()

# The stress case through group commit: synced commits (~3 ms each here) would take half an
# hour for 100,000 jobs; group commit batches the concurrent callers' syncs (about 40 s here).
if(TEST conformance.lmdb.stress)
  set_property(TEST conformance.lmdb.stress APPEND PROPERTY
    ENVIRONMENT "JOBQ_TEST_LMDB_DURABILITY=group")
  if(JOBQ_SANITIZE)
    # Sanitized code is several times slower: move fewer jobs.
    set_property(TEST conformance.lmdb.stress APPEND PROPERTY ENVIRONMENT "JOBQ_TEST_STRESS_JOBS=20000")
  endif()
endif()
# The whole suite once more per non-default durability mode.
foreach(mode group periodic)
  add_test(NAME conformance.lmdb.${mode} COMMAND jobq_conformance lmdb)
  jobq_test_properties(conformance.lmdb.${mode} "conformance;lmdb")
  set_property(TEST conformance.lmdb.${mode} APPEND PROPERTY
    ENVIRONMENT "JOBQ_TEST_LMDB_DURABILITY=${mode}" "JOBQ_TEST_SKIP=conc_stress*")
endforeach()

# Fault tests with real processes: a helper binary fork+exec'd by the test driver.
set(jobq_fault_dir ${CMAKE_CURRENT_SOURCE_DIR}/fault)
foreach(t lmdb_helper lmdb_fault lmdb_bench lmdb_ptrace)
  if(EXISTS ${jobq_fault_dir}/${t}.c)
    add_executable(${t} ${jobq_fault_dir}/${t}.c)
    target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR}/include)
    target_compile_definitions(${t} PRIVATE _POSIX_C_SOURCE=200809L)
    target_link_libraries(${t} PRIVATE jobq_static Threads::Threads)
    jobq_set_warnings(${t})
  endif()
endforeach()
target_link_libraries(lmdb_fault PRIVATE PkgConfig::CMOCKA)
target_compile_definitions(lmdb_fault PRIVATE LMDB_HELPER_PATH="$<TARGET_FILE:lmdb_helper>")
add_dependencies(lmdb_fault lmdb_helper)
if(TARGET lmdb_bench)
  target_compile_definitions(lmdb_bench PRIVATE LMDB_HELPER_PATH="$<TARGET_FILE:lmdb_helper>")
  add_dependencies(lmdb_bench lmdb_helper)
endif()

add_test(NAME fault.lmdb.multiprocess COMMAND lmdb_fault test_multiprocess)
jobq_test_properties(fault.lmdb.multiprocess "lmdb;fault")
add_test(NAME fault.lmdb.killed_worker COMMAND lmdb_fault test_killed_worker)
jobq_test_properties(fault.lmdb.killed_worker "lmdb;fault")
add_test(NAME fault.lmdb.crash COMMAND lmdb_fault test_crash_rounds)
jobq_test_properties(fault.lmdb.crash "lmdb;fault")
set_property(TEST fault.lmdb.crash APPEND PROPERTY ENVIRONMENT "JOBQ_FAULT_ROUNDS=3")
add_test(NAME fault.lmdb.crash_many COMMAND lmdb_fault test_crash_rounds)
jobq_test_properties(fault.lmdb.crash_many "lmdb;fault;slow")
set_tests_properties(fault.lmdb.crash_many PROPERTIES TIMEOUT 1800)
set_property(TEST fault.lmdb.crash_many APPEND PROPERTY ENVIRONMENT "JOBQ_FAULT_ROUNDS=40")

# The lost wake-up of LMDB's shared mutexes under SIGKILL, replayed with ptrace (lmdb_gate.c):
# through jobq (must end well), and with plain LMDB (shows the hazard; skipped if absent).
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  add_test(NAME fault.lmdb.lock_handover COMMAND lmdb_ptrace jobq)
  jobq_test_properties(fault.lmdb.lock_handover "lmdb;fault")
  add_test(NAME fault.lmdb.lock_handover_raw COMMAND lmdb_ptrace raw)
  jobq_test_properties(fault.lmdb.lock_handover_raw "lmdb;fault")
endif()

# Kill cycles with the real `jobq` command (tests/fault/kill_cycle.sh): two workers killed
# every 0.3-0.9 s while three add loops run; no command may wait on the lock longer than the
# lock timeout and no acknowledged add may be lost. A short run by default, 500 cycles as slow.
find_program(JOBQ_BASH bash)
if(TARGET jobq AND JOBQ_BASH)
  add_test(NAME fault.lmdb.kill_cycle
    COMMAND ${JOBQ_BASH} ${jobq_fault_dir}/kill_cycle.sh $<TARGET_FILE:jobq> 15)
  jobq_test_properties(fault.lmdb.kill_cycle "lmdb;fault")
  add_test(NAME fault.lmdb.kill_cycle_many
    COMMAND ${JOBQ_BASH} ${jobq_fault_dir}/kill_cycle.sh $<TARGET_FILE:jobq> 500)
  jobq_test_properties(fault.lmdb.kill_cycle_many "lmdb;fault;slow")
  set_tests_properties(fault.lmdb.kill_cycle_many PROPERTIES TIMEOUT 1800)
endif()
