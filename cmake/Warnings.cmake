# The project's warning set; CMAKE_COMPILE_WARNING_AS_ERROR (set in the presets) makes them errors.
function(jobq_set_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
    -Wundef -Wcast-qual -Wwrite-strings -Wvla -Wimplicit-fallthrough)
endfunction()
