// The CUDA backend against the CPU reference on the same seeds. Every test
// skips itself where no CUDA device is present.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "host/driver.hpp"

namespace fmg {
namespace {

struct Arrays {
  std::vector<double> base, endpoints;
  std::vector<std::int32_t> labels;
  FlowTally tally;
};

template <class Value>
ArraySink collect(std::vector<Value>& out) {
  return [&out](const void* data, std::size_t bytes) {
    const auto* p = static_cast<const Value*>(data);
    out.insert(out.end(), p, p + bytes / sizeof(Value));
  };
}

Arrays run_on(BackendChoice backend, const Mixture& mixture, std::uint64_t n,
              Method method) {
  FlowRunOptions options;
  options.backend = backend;
  options.num_samples = n;
  options.method = method;
  options.steps = 32;
  options.rtol = 1e-8;
  options.atol = 1e-10;
  options.progress = false;
  options.chunk_size = 40000;
  Arrays out;
  FlowRunIo io;
  io.base_samples = collect(out.base);
  io.endpoints = collect(out.endpoints);
  io.labels = collect(out.labels);
  out.tally = run_flow(mixture, options, io).tally;
  return out;
}

Mixture mixture_of_dimension(int d) {
  Mixture mixture;
  mixture.dim = d;
  for (int k = 0; k < 3; ++k) {
    for (int j = 0; j < d; ++j) mixture.atoms.push_back(2.0 * std::cos(k * 2.1 + j));
  }
  mixture.weights = {0.45, 0.30, 0.25};
  return mixture;
}

class CudaBackend : public testing::Test {
 protected:
  void SetUp() override {
    std::string reason;
    if (!cuda_backend_available(&reason)) GTEST_SKIP() << reason;
  }
};

TEST_F(CudaBackend, MatchesCpuOnSameSeeds) {
  for (int d : {1, 2, 3, 5}) {
    for (std::uint64_t n : {std::uint64_t{1}, std::uint64_t{33}, std::uint64_t{1000},
                            std::uint64_t{100003}}) {
      for (Method method : {Method::rk4, Method::dopri5}) {
        SCOPED_TRACE(testing::Message() << "d " << d << " n " << n << " method "
                                        << static_cast<int>(method));
        const Mixture mixture = mixture_of_dimension(d);
        const Arrays cpu = run_on(BackendChoice::cpu, mixture, n, method);
        const Arrays gpu = run_on(BackendChoice::cuda, mixture, n, method);
        ASSERT_EQ(cpu.base.size(), gpu.base.size());
        EXPECT_EQ(0, std::memcmp(cpu.base.data(), gpu.base.data(),
                                 cpu.base.size() * sizeof(double)));
        std::size_t label_mismatches = 0;
        for (std::size_t i = 0; i < n; ++i) label_mismatches += cpu.labels[i] != gpu.labels[i];
        // Fused multiply-adds on the device may move a sample lying on a
        // basin boundary; allow one in 10^4.
        EXPECT_LE(label_mismatches, n / 10000);
        double worst = 0;
        for (std::size_t i = 0; i < cpu.endpoints.size(); ++i) {
          if (cpu.labels[i / d] == gpu.labels[i / d]) {
            worst = std::max(worst, std::fabs(cpu.endpoints[i] - gpu.endpoints[i]));
          }
        }
        EXPECT_LT(worst, 1e-5);
        EXPECT_EQ(cpu.tally.samples(), gpu.tally.samples());
      }
    }
  }
}

TEST_F(CudaBackend, EmptyChunkDoesNothing) {
  FlowProblem<double> problem;
  HostMixture<double> host;
  host.dim = 2;
  host.atoms = {1.0, 0.0};
  host.log_weights = {0.0};
  auto backend = make_cuda_flow_backend(host, problem);
  FlowTally tally(1);
  FlowChunk<double> chunk;
  backend->run_chunk(chunk, tally);
  EXPECT_EQ(tally.samples(), 0u);
}

}  // namespace
}  // namespace fmg
