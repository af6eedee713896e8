# cmake --install BUILD --prefix P: flowrun and its helpers in P/bin, histoflow's libraries in P/lib, the plugins in
# P/lib/histoflow/plugins (histoflow_add_plugin), public headers in P/include, the CMake package in
# P/lib/cmake/histoflow (find_package(histoflow): imported targets and histoflow_add_plugin), graphs and the
# example plugins' sources in P/share/histoflow, the docs in P/share/doc/histoflow. `cpack` makes the Debian
# package of the same files under /usr (docs/install.md).
include(CMakePackageConfigHelpers)

set(HISTOFLOW_INSTALL_CMAKE_DIR lib/cmake/histoflow)

# flowrun; the feature-file reader process, found beside it (feature_reader_process.cpp); the finetuning command
# and the weight converter.
install(TARGETS flowrun histoflow-read-features histoflow-ssl-train convert_weights RUNTIME DESTINATION bin)

# Libraries in P/lib find each other there.
set(histoflow_shared_libraries histoflow histoflow_slides_core histoflow_torch_core histoflow_mil_core histoflow_finetune_core)
set_target_properties(${histoflow_shared_libraries} PROPERTIES INSTALL_RPATH "$ORIGIN")
# What an out-of-tree plugin links: the framework, the backbone registry (with LibTorch and the weight files'
# readers, a static library it links publicly), the aggregator registry and the slide reading API. A LibTorch taken without its CMake
# package is an interface target of ours, exported with them.
set(histoflow_exported histoflow histoflow_torch_core histoflow_torch_files histoflow_mil_core histoflow_slides_core)
if(TARGET histoflow_libtorch)
  set_target_properties(histoflow_libtorch PROPERTIES EXPORT_NAME libtorch)
  list(APPEND histoflow_exported histoflow_libtorch)
endif()
set_target_properties(histoflow_torch_files PROPERTIES EXPORT_NAME torch_files)
install(TARGETS ${histoflow_exported} EXPORT histoflowTargets
        LIBRARY DESTINATION lib ARCHIVE DESTINATION lib INCLUDES DESTINATION include)
install(TARGETS histoflow_finetune_core LIBRARY DESTINATION lib)  # used by its plugin only
install(EXPORT histoflowTargets NAMESPACE histoflow:: DESTINATION ${HISTOFLOW_INSTALL_CMAKE_DIR})

# Public headers: the framework's (with the generated version.hpp) and those of the exported plugin libraries.
install(DIRECTORY framework/include/histoflow DESTINATION include FILES_MATCHING PATTERN "*.hpp")
install(FILES ${PROJECT_BINARY_DIR}/framework/generated/histoflow/version.hpp DESTINATION include/histoflow)
install(DIRECTORY plugins/torch_encoders/include/histoflow plugins/mil/include/histoflow plugins/slides/include/histoflow
        DESTINATION include)

# The package: its dependencies as this build found them, the targets, histoflow_add_plugin.
if(TARGET histoflow_libtorch)
  set(HISTOFLOW_CONFIG_TORCH_DIR "")
else()
  set(HISTOFLOW_CONFIG_TORCH_DIR "${Torch_DIR}")
endif()
configure_package_config_file(cmake/histoflowConfig.cmake.in ${PROJECT_BINARY_DIR}/histoflowConfig.cmake
                              INSTALL_DESTINATION ${HISTOFLOW_INSTALL_CMAKE_DIR})
# A plugin must be built against the same major.minor (the loader refuses others): so must the package.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/histoflowConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/histoflowConfig.cmake ${PROJECT_BINARY_DIR}/histoflowConfigVersion.cmake
              cmake/HistoflowPlugin.cmake DESTINATION ${HISTOFLOW_INSTALL_CMAKE_DIR})

install(DIRECTORY graphs/ DESTINATION share/histoflow/graphs)
install(DIRECTORY plugins/example plugins/example_backbone DESTINATION share/histoflow/examples)
install(DIRECTORY docs/ DESTINATION share/doc/histoflow)
install(FILES README.md DESTINATION share/doc/histoflow)

# The Debian package: `cpack` in the build folder writes histoflow_<version>_amd64.deb. dpkg-shlibdeps derives
# the runtime dependencies (OpenSlide, libvips, HDF5, oneTBB, LibTorch, Boost, librsvg, ...) from the binaries.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME histoflow)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Dataflow framework for computational pathology (flowrun, plugins, CMake package)")
set(CPACK_PACKAGE_CONTACT "histoflow developers <histoflow@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# LibTorch on the reference BLAS is ~50x slower; OpenBLAS (OpenMP) is what the performance notes assume.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libopenblas0-openmp")
# Building plugins against the package (find_package(histoflow)) needs the headers of its dependencies.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "cmake, g++, libtorch-dev, libtbb-dev")
include(CPack)
