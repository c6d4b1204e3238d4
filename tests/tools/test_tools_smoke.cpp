// Placeholder replaced by the tools tests (see tests/CMakeLists.txt).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

TEST_CASE("rwkvlite --version exits 0", "[tools]") {
  const std::string cmd = std::string(RWKVLITE_BINARY_DIR) + "/bin/rwkvlite --version > /dev/null";
  CHECK(std::system(cmd.c_str()) == 0);
}
