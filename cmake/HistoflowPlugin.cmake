# histoflow_add_plugin(NAME SOURCES file... [TORCH])   (or histoflow_add_plugin(NAME file...))
#
# Builds a runtime-loaded stage plugin, libhf_NAME.so: a MODULE library linked to histoflow::framework (and, with
# TORCH, to histoflow::torch_encoders, which brings LibTorch and the backbone registry), C++20, symbols hidden
# except the HISTOFLOW_PLUGIN entry point. The library goes to HISTOFLOW_PLUGIN_OUTPUT_DIR (default
# <build>/plugins: point HISTOFLOW_PLUGIN_PATH or `flowrun --plugins` at it) and `cmake --install` puts it in
# HISTOFLOW_PLUGIN_INSTALL_DIR (default lib/histoflow/plugins under the install prefix: installed into
# histoflow's own prefix, flowrun finds it without being told). The same file serves histoflow's own build.
function(histoflow_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 plugin "TORCH" "" "SOURCES")
  if(NOT plugin_SOURCES AND NOT "SOURCES" IN_LIST ARGN)
    set(plugin_SOURCES ${plugin_UNPARSED_ARGUMENTS})  # the short form: every argument is a source file
    set(plugin_UNPARSED_ARGUMENTS "")
  endif()
  if(plugin_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "histoflow_add_plugin(${name}): unexpected arguments '${plugin_UNPARSED_ARGUMENTS}' "
                        "(usage: histoflow_add_plugin(NAME SOURCES file... [TORCH]))")
  endif()
  if(NOT plugin_SOURCES)
    message(FATAL_ERROR "histoflow_add_plugin(${name}): no source files (usage: histoflow_add_plugin(NAME SOURCES file... [TORCH]))")
  endif()
  if(NOT DEFINED HISTOFLOW_PLUGIN_OUTPUT_DIR)
    set(HISTOFLOW_PLUGIN_OUTPUT_DIR ${CMAKE_BINARY_DIR}/plugins)
  endif()
  if(NOT DEFINED HISTOFLOW_PLUGIN_INSTALL_DIR)
    set(HISTOFLOW_PLUGIN_INSTALL_DIR lib/histoflow/plugins)
  endif()

  add_library(${name} MODULE ${plugin_SOURCES})
  target_link_libraries(${name} PRIVATE histoflow::framework)
  if(plugin_TORCH)
    target_link_libraries(${name} PRIVATE histoflow::torch_encoders)
    if(TARGET histoflow_torch_core)  # inside histoflow's build: parse the torch headers once
      target_precompile_headers(${name} REUSE_FROM histoflow_torch_core)
    endif()
  endif()
  target_compile_features(${name} PRIVATE cxx_std_20)
  # Installed next to the framework library's folder (<prefix>/lib/histoflow/plugins -> <prefix>/lib).
  set_target_properties(${name} PROPERTIES
    PREFIX "libhf_"
    LIBRARY_OUTPUT_DIRECTORY ${HISTOFLOW_PLUGIN_OUTPUT_DIR}
    CXX_VISIBILITY_PRESET hidden
    INSTALL_RPATH "$ORIGIN/../..")
  if(HISTOFLOW_PLUGIN_INSTALL_DIR)
    install(TARGETS ${name} LIBRARY DESTINATION ${HISTOFLOW_PLUGIN_INSTALL_DIR})
  endif()
  set_property(GLOBAL APPEND PROPERTY HISTOFLOW_PLUGIN_TARGETS ${name})
endfunction()
