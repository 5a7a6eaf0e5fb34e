# Embeds the Redis backend's Lua scripts (lua/<name>-<NUMKEYS>.lua) into the library.
#
# jobq_embed_lua(<out_var>) adds a custom command that runs cmake/EmbedLuaScript.cmake in
# script mode and returns the generated C source in <out_var>. The generated header
# (${PROJECT_BINARY_DIR}/generated/jobq_lua.h) declares the script table.
function(jobq_embed_lua out_var)
  file(GLOB lua_scripts CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/lua/*.lua)
  file(GLOB lua_includes CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/lua/includes/*.lua)
  set(gen ${PROJECT_BINARY_DIR}/generated)
  file(MAKE_DIRECTORY ${gen})
  add_custom_command(
    OUTPUT ${gen}/jobq_lua.c ${gen}/jobq_lua.h
    COMMAND ${CMAKE_COMMAND} -DIN=${PROJECT_SOURCE_DIR}/lua -DOUT=${gen}
            -P ${PROJECT_SOURCE_DIR}/cmake/EmbedLuaScript.cmake
    DEPENDS ${lua_scripts} ${lua_includes} ${PROJECT_SOURCE_DIR}/cmake/EmbedLuaScript.cmake
    COMMENT "Embedding Lua scripts"
    VERBATIM)
  set(${out_var} ${gen}/jobq_lua.c ${gen}/jobq_lua.h PARENT_SCOPE)
endfunction()
