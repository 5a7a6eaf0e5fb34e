# Tests of the `jobq` command: tests/cli/cli_test.sh drives the real binary as a subprocess,
# once per backend. Included by tests/CMakeLists.txt.
#
# Redis: tests/redis.cmake (included before this file) provides jobq_redis_test(), which adds
# its `redis_server` fixture and JOBQ_TEST_REDIS_SOCKET; without it the test starts a private
# server of its own with tests/support/redis.sh (fixture cli_redis_server).
if(NOT TARGET jobq)
  return()
endif()
find_program(JOBQ_BASH bash)
if(NOT JOBQ_BASH)
  message(STATUS "jobq: bash not found, CLI tests disabled")
  return()
endif()

# jobq_cli_test(NAME SCRIPT BACKEND): tests/cli/SCRIPT run on BACKEND as test NAME.
function(jobq_cli_test name script backend)
  add_test(NAME ${name}
    COMMAND ${JOBQ_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/cli/${script} $<TARGET_FILE:jobq> ${backend})
  if(COMMAND jobq_test_properties)
    jobq_test_properties(${name} "cli;${backend}")
  else()
    set_tests_properties(${name} PROPERTIES LABELS "cli;${backend}" TIMEOUT 300
                                            SKIP_RETURN_CODE 77)
  endif()
endfunction()

jobq_cli_test(cli.memory cli_test.sh memory)
jobq_cli_test(cli.ops.memory ops_test.sh memory)
jobq_cli_test(cli.sched.memory sched_test.sh memory)
jobq_cli_test(cli.sem.memory sem_test.sh memory)
jobq_cli_test(cli.limits.memory limits_test.sh memory)

if("JOBQ_HAVE_LMDB=1" IN_LIST jobq_definitions)
  jobq_cli_test(cli.lmdb cli_test.sh lmdb)
  jobq_cli_test(cli.ops.lmdb ops_test.sh lmdb)
  jobq_cli_test(cli.sched.lmdb sched_test.sh lmdb)
  jobq_cli_test(cli.sem.lmdb sem_test.sh lmdb)
  jobq_cli_test(cli.limits.lmdb limits_test.sh lmdb)
endif()

if("JOBQ_HAVE_REDIS=1" IN_LIST jobq_definitions)
  jobq_cli_test(cli.redis cli_test.sh redis)
  # ops_test.sh also starts a private server of its own, which it stops
  jobq_cli_test(cli.ops.redis ops_test.sh redis)
  jobq_cli_test(cli.sched.redis sched_test.sh redis)
  jobq_cli_test(cli.sem.redis sem_test.sh redis)
  jobq_cli_test(cli.limits.redis limits_test.sh redis)
  if(COMMAND jobq_redis_test)
    # the redis_server fixture and JOBQ_TEST_REDIS_SOCKET
    jobq_redis_test(cli.redis)
    jobq_redis_test(cli.ops.redis)
    jobq_redis_test(cli.sched.redis)
    jobq_redis_test(cli.sem.redis)
    jobq_redis_test(cli.limits.redis)
  else()
    set(jobq_cli_redis_dir ${CMAKE_CURRENT_BINARY_DIR}/cli-redis)
    add_test(NAME cli.redis.start
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/support/redis.sh start ${jobq_cli_redis_dir})
    add_test(NAME cli.redis.stop
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/support/redis.sh stop ${jobq_cli_redis_dir})
    set_tests_properties(cli.redis.start PROPERTIES FIXTURES_SETUP cli_redis_server
                                                    LABELS "cli;redis" SKIP_RETURN_CODE 77)
    set_tests_properties(cli.redis.stop PROPERTIES FIXTURES_CLEANUP cli_redis_server
                                                   LABELS "cli;redis")
    set_property(TEST cli.redis cli.ops.redis cli.sched.redis cli.sem.redis cli.limits.redis
                 APPEND PROPERTY FIXTURES_REQUIRED cli_redis_server)
    set_property(TEST cli.redis cli.ops.redis cli.sched.redis cli.sem.redis cli.limits.redis
                 APPEND PROPERTY ENVIRONMENT
                 "JOBQ_TEST_REDIS_SOCKET=${jobq_cli_redis_dir}/redis.sock")
  endif()
endif()

# The CLI on Valkey (tests/redis.cmake's valkey_server fixture; ops_test.sh's private server
# is a valkey-server too), in the default run.
if(COMMAND jobq_valkey_test)
  foreach(t cli.valkey:cli_test.sh cli.ops.valkey:ops_test.sh cli.sched.valkey:sched_test.sh)
    string(REPLACE ":" ";" parts ${t})
    list(GET parts 0 name)
    list(GET parts 1 script)
    add_test(NAME ${name}
      COMMAND ${JOBQ_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/cli/${script} $<TARGET_FILE:jobq> redis)
    set_tests_properties(${name} PROPERTIES LABELS "cli;redis;valkey" TIMEOUT 300
                                            SKIP_RETURN_CODE 77)
    jobq_valkey_test(${name})
  endforeach()
endif()

# A store that cannot take a result (Redis out of memory, LMDB on a full tmpfs): `jobq work`
# keeps it and records it later (tests/fault/store_full.sh). Each starts its own store: a
# private redis-server whose maxmemory it changes, a tmpfs it mounts (root only: skipped, 77,
# otherwise). About 4 s each.
set(jobq_store_full_backends)
if("JOBQ_HAVE_REDIS=1" IN_LIST jobq_definitions)
  list(APPEND jobq_store_full_backends redis)
endif()
if("JOBQ_HAVE_LMDB=1" IN_LIST jobq_definitions)
  list(APPEND jobq_store_full_backends lmdb)
endif()
foreach(backend IN LISTS jobq_store_full_backends)
  add_test(NAME fault.store_full.${backend}
    COMMAND ${JOBQ_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/fault/store_full.sh $<TARGET_FILE:jobq>
            ${backend})
  set_tests_properties(fault.store_full.${backend} PROPERTIES
    LABELS "fault;cli;${backend}" TIMEOUT 120 SKIP_RETURN_CODE 77)
endforeach()


# Bull Board shows what a command run by `jobq work` reported (progress, log lines, stderr
# kept as logs), checked through its API and in headless Chromium (tools/bullboard); starts
# its own redis-server. Label slow: Chromium is heavy on two cores. Skipped (77) without node,
# chromium or tools/bullboard/node_modules.
if("JOBQ_HAVE_REDIS=1" IN_LIST jobq_definitions)
  add_test(NAME interop.bullboard
    COMMAND ${JOBQ_BASH} ${PROJECT_SOURCE_DIR}/tools/bullboard/screenshot.sh $<TARGET_FILE:jobq>
            ${CMAKE_CURRENT_BINARY_DIR}/bullboard-job.png)
  set_tests_properties(interop.bullboard PROPERTIES LABELS "interop;redis;slow" TIMEOUT 300
                                                    SKIP_RETURN_CODE 77)
  # Bull Board and Node's getJobSchedulers() show `jobq schedule`'s schedulers as Node's own
  # (tools/bullboard/schedulers.js): API responses and the rendered page, one Chromium page;
  # in the default run (about 10 s).
  add_test(NAME interop.bullboard.schedulers
    COMMAND ${JOBQ_BASH} ${PROJECT_SOURCE_DIR}/tools/bullboard/schedulers.sh $<TARGET_FILE:jobq>
            ${CMAKE_CURRENT_BINARY_DIR}/bullboard-schedulers.png)
  set_tests_properties(interop.bullboard.schedulers PROPERTIES LABELS "interop;redis" TIMEOUT 180
                                                               SKIP_RETURN_CODE 77)
endif()
