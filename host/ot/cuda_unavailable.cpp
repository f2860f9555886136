// The CUDA Monte Carlo counts in a build without the CUDA backend.
#include "host/errors.hpp"
#include "kernels/ot_mass.hpp"

namespace fmg {
namespace cuda {

void count_laguerre_cells(const MixtureView<double>&, const double*,
                          std::uint64_t, std::uint64_t, std::int64_t, double,
                          std::int64_t*, std::int64_t*) {
  throw Unavailable(
      "the CUDA backend was not compiled into this build; reconfigure with "
      "-DFMG_CUDA=ON on a machine with the CUDA Toolkit, or use the CPU "
      "backend");
}

}  // namespace cuda
}  // namespace fmg
