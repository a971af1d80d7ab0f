# Installation: the libraries, the headers (with the generated version.h),
# the CMake package (find_package(repocache) gives repocache::repocache and
# repocache::repocache_static), the pkg-config file, the license and the
# library's manual page (tale's is installed with tale). Included by the
# top-level CMakeLists.txt when REPOCACHE_INSTALL is on.
include(CMakePackageConfigHelpers)

set(RC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/repocache)

install(TARGETS repocache_static repocache_shared EXPORT repocacheTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/repocache
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(FILES ${RC_GENERATED_INCLUDE}/repocache/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/repocache)

install(EXPORT repocacheTargets NAMESPACE repocache:: DESTINATION ${RC_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/repocacheConfig.cmake.in
  ${PROJECT_BINARY_DIR}/repocacheConfig.cmake INSTALL_DESTINATION ${RC_CMAKE_DIR})
# Before 1.0 only the same minor version is compatible (the ABI may change
# with each minor, see the soname).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/repocacheConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/repocacheConfig.cmake
  ${PROJECT_BINARY_DIR}/repocacheConfigVersion.cmake DESTINATION ${RC_CMAKE_DIR})

# The .pc file finds the prefix relative to itself, so it stays right for
# `cmake --install build --prefix DIR` and for a moved install tree.
file(RELATIVE_PATH RC_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" RC_PC_TO_PREFIX "${RC_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/repocache.pc.in ${PROJECT_BINARY_DIR}/repocache.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/repocache.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(FILES ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/CHANGELOG.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/repocache.3
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)
