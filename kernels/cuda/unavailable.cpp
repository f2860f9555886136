// Stand-ins for the CUDA backend in a build without CUDA: each one reports
// that the backend was not compiled in.
#include "host/errors.hpp"
#include "kernels/batch.hpp"

namespace fmg {

namespace {
const char* const not_compiled =
    "the CUDA backend was not compiled into this build (configure with "
    "-DFMG_CUDA=ON on a machine with the CUDA Toolkit)";
}  // namespace

bool cuda_backend_available(std::string* reason) {
  if (reason != nullptr) *reason = not_compiled;
  return false;
}

template <class T>
std::unique_ptr<FlowBackend<T>> make_cuda_flow_backend(
    const HostMixture<T>&, const FlowProblem<T>&, VelocityPath) {
  throw Unavailable(not_compiled);
}

template std::unique_ptr<FlowBackend<float>> make_cuda_flow_backend(
    const HostMixture<float>&, const FlowProblem<float>&, VelocityPath);
template std::unique_ptr<FlowBackend<double>> make_cuda_flow_backend(
    const HostMixture<double>&, const FlowProblem<double>&, VelocityPath);

}  // namespace fmg
