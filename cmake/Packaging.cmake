# The Debian package (`cpack -G DEB` in a build directory, or
# scripts/package.sh for a Release build): the binary, its man pages and the
# bash and zsh completion, as cli/CMakeLists.txt installs them.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pgcourier)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "moves PostgreSQL databases between servers, with proof that nothing was lost")
set(CPACK_PACKAGE_DESCRIPTION
  "pgcourier checks, migrates (logical replication or parallel COPY at one snapshot),\n\
verifies and cuts over PostgreSQL databases from one server or provider to\n\
another, and shows a running migration's status as text, JSON, a web page and\n\
Prometheus metrics.")
set(PGCOURIER_PACKAGE_MAINTAINER "pgcourier maintainers" CACHE STRING
  "The Maintainer field of the Debian package")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${PGCOURIER_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION database)
# pgcourier_0.1.0_amd64.deb
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# The shared libraries' packages (libpq5, libsqlite3-0, libfmt9, ...) are
# read from the binary by dpkg-shlibdeps (dpkg-dev), never listed by hand.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# pg_dump and pg_restore, which check and migrate run for the schema
# (src/preflight/pg_tools.cc finds them on PATH and in
# /usr/lib/postgresql/*/bin). Every postgresql-client-NN, Debian's or
# PGDG's, provides postgresql-client.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "postgresql-client")
set(CPACK_STRIP_FILES ON)
# cpack installs what the build made and never builds itself (no "all"
# before "preinstall"): packaging a build directory while its tests run
# cannot rebuild their binaries. scripts/package.sh builds first.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
include(CPack)
