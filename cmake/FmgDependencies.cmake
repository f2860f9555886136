# Finds every dependency from the system; nothing is downloaded at configure
# time. On Debian: libeigen3-dev librandom123-dev libcli11-dev
# nlohmann-json3-dev libboost-dev libgtest-dev libbenchmark-dev.
list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")

find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(Random123 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3.9 REQUIRED)
find_package(Boost 1.71 REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(Threads REQUIRED)
if(FMG_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(FMG_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
