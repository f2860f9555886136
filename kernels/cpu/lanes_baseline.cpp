// The lane engine compiled for one instruction set; see lanes.cpp for the
// choice at run time.
#define FMG_LANES_ISA baseline
#include "kernels/cpu/lanes_impl.hpp"
