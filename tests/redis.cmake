# Redis tests (included by tests/CMakeLists.txt when the Redis backend is built):
# a private redis-server on a unix socket as the `redis_server` fixture, the script-load
# check, conformance.redis, and the Redis unit tests (tests/unit/test_redis_*.c).
set(jobq_redis_dir ${CMAKE_CURRENT_BINARY_DIR}/redis-fixture)
set(jobq_redis_socket ${jobq_redis_dir}/redis.sock)

add_test(NAME redis.server.start
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/support/redis.sh start ${jobq_redis_dir})
set_tests_properties(redis.server.start PROPERTIES
  FIXTURES_SETUP redis_server LABELS "redis;interop" TIMEOUT 30 SKIP_RETURN_CODE 77)
add_test(NAME redis.server.stop
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/support/redis.sh stop ${jobq_redis_dir})
set_tests_properties(redis.server.stop PROPERTIES
  FIXTURES_CLEANUP redis_server LABELS "redis;interop" TIMEOUT 30)

# Tests that need the server: fixture and socket path.
function(jobq_redis_test name)
  set_property(TEST ${name} APPEND PROPERTY FIXTURES_REQUIRED redis_server)
  set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT "JOBQ_TEST_REDIS_SOCKET=${jobq_redis_socket}")
endfunction()

add_test(NAME conformance.redis COMMAND jobq_conformance redis)
jobq_test_properties(conformance.redis "conformance;redis")
jobq_redis_test(conformance.redis)

# Unit tests built by tests/CMakeLists.txt from tests/unit/test_redis_*.c; the script test
# reads the generated script table.
foreach(src IN LISTS jobq_unit_sources)
  get_filename_component(name ${src} NAME_WE)
  if(name MATCHES "^test_redis_")
    string(REGEX REPLACE "^test_" "" short ${name})
    target_include_directories(${name} PRIVATE ${PROJECT_BINARY_DIR}/generated)
    target_link_libraries(${name} PRIVATE PkgConfig::HIREDIS)
    jobq_redis_test(unit.${short})
  endif()
endforeach()
# unit.redis_log stops and starts a private server of its own with this script
if(TARGET test_redis_log)
  target_compile_definitions(test_redis_log PRIVATE
    JOBQ_REDIS_SH="${CMAKE_CURRENT_SOURCE_DIR}/support/redis.sh")
endif()

# Interop with Node BullMQ (tests/interop): bullmq 6.7.0 (tests/interop/package-lock.json)
# and the last 5.x (tests/interop/v5/package-lock.json). run.sh skips when node or the
# node_modules are missing on a developer's machine, and fails in CI (CI set).
add_executable(jobq_interop interop/jobq_interop.c)
target_compile_definitions(jobq_interop PRIVATE _POSIX_C_SOURCE=200809L)
target_link_libraries(jobq_interop PRIVATE jobq_static Threads::Threads)
jobq_set_warnings(jobq_interop)
add_test(NAME interop.bullmq
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/interop/run.sh $<TARGET_FILE:jobq_interop>)
add_test(NAME interop.bullmq5
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/interop/run.sh $<TARGET_FILE:jobq_interop>
          ${CMAKE_CURRENT_SOURCE_DIR}/interop/v5)
foreach(t interop.bullmq interop.bullmq5)
  set_tests_properties(${t} PROPERTIES LABELS "interop;redis" TIMEOUT 300 SKIP_RETURN_CODE 77)
  jobq_redis_test(${t})
endforeach()
