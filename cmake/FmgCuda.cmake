# Decides whether the CUDA backend is built. FMG_CUDA=AUTO enables it when a
# CUDA compiler is found, ON requires one, OFF skips the search.
include(CheckLanguage)

set(FMG_HAVE_CUDA OFF)
if(FMG_CUDA STREQUAL "OFF")
  return()
endif()
if(NOT FMG_CUDA MATCHES "^(AUTO|ON)$")
  message(FATAL_ERROR "FMG_CUDA is '${FMG_CUDA}'; valid values are AUTO, ON and OFF")
endif()

if(NOT CMAKE_CUDA_COMPILER)
  find_program(FMG_NVCC nvcc PATHS /usr/local/cuda/bin NO_CACHE)
  if(FMG_NVCC)
    set(CMAKE_CUDA_COMPILER "${FMG_NVCC}")
  endif()
endif()
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  if(FMG_CUDA STREQUAL "ON")
    message(FATAL_ERROR "FMG_CUDA=ON but no CUDA compiler was found; install the CUDA Toolkit or set FMG_CUDA=OFF")
  endif()
  message(STATUS "fmg: no CUDA compiler found, building the CPU backend only")
  return()
endif()

# Hopper (H100, H200) always; Ampere for the common A100. No "native", so a
# build works on machines without a GPU.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 80 90)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
set(FMG_HAVE_CUDA ON)
