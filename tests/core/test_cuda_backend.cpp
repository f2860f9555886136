// The CUDA backend against the CPU reference on the same seeds. Every test
// skips itself where no CUDA device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "host/driver.hpp"
#include "host/errors.hpp"
#include "host/statistics.hpp"
#include "kernels/cuda/launch_config.cuh"

namespace fmg {
namespace {

template <class Value>
struct Arrays {
  std::vector<Value> base, endpoints;
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

/// One flow run; Value (float or double) sets the precision.
template <class Value = double>
struct RunSpec {
  BackendChoice backend = BackendChoice::cuda;
  std::uint64_t num_samples = 1000;
  Method method = Method::rk4;
  std::size_t chunk_size = 40000;
  const std::vector<double>* starts = nullptr;
  bool outputs = true;  ///< Collect base samples, endpoints and labels.
};

template <class Value>
Arrays<Value> run_on(const RunSpec<Value>& spec, const Mixture& mixture) {
  constexpr bool single = std::is_same_v<Value, float>;
  FlowRunOptions options;
  options.backend = spec.backend;
  options.num_samples = spec.num_samples;
  options.method = spec.method;
  options.precision = single ? Precision::float32 : Precision::float64;
  options.steps = 32;
  options.rtol = single ? 1e-5 : 1e-8;
  options.atol = single ? 1e-6 : 1e-10;
  options.progress = false;
  options.chunk_size = spec.chunk_size;
  Arrays<Value> out;
  FlowRunIo io;
  io.starts = spec.starts;
  if (spec.outputs) {
    io.base_samples = collect(out.base);
    io.endpoints = collect(out.endpoints);
    io.labels = collect(out.labels);
  }
  out.tally = run_flow(mixture, options, io).tally;
  return out;
}

/// Runs `spec` on the CPU and on the device.
template <class Value>
std::pair<Arrays<Value>, Arrays<Value>> run_both(RunSpec<Value> spec,
                                                 const Mixture& mixture) {
  spec.backend = BackendChoice::cpu;
  Arrays<Value> cpu = run_on(spec, mixture);
  spec.backend = BackendChoice::cuda;
  Arrays<Value> gpu = run_on(spec, mixture);
  return {std::move(cpu), std::move(gpu)};
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

/// Checks that the device's tally agrees with its own per-sample labels:
/// label k is counted in label_counts[k], and label -1 (a failed sample)
/// only in the status counts.
template <class Value>
void expect_tally_matches_labels(const Arrays<Value>& run) {
  const FlowTally& tally = run.tally;
  EXPECT_EQ(tally.samples(), run.labels.size());
  std::uint64_t histogram_total = 0;
  for (std::uint64_t count : tally.step_histogram) histogram_total += count;
  EXPECT_EQ(histogram_total, run.labels.size());
  for (std::size_t k = 0; k < tally.label_counts.size(); ++k) {
    SCOPED_TRACE(testing::Message() << "atom " << k);
    const auto expected = std::count(run.labels.begin(), run.labels.end(),
                                     static_cast<std::int32_t>(k));
    EXPECT_EQ(tally.label_counts[k], static_cast<std::uint64_t>(expected));
  }
  const auto failed = std::count(run.labels.begin(), run.labels.end(), -1);
  EXPECT_EQ(tally.status_counts[1] + tally.status_counts[2],
            static_cast<std::uint64_t>(failed));
}

/// Compares a device run with the CPU run of the same spec. Base samples
/// must be bit-identical. Labels may differ for one sample in 10^4, because
/// fused multiply-adds on the device can move a sample that lies on a basin
/// boundary. Endpoints of equally labelled samples must agree within
/// `tolerance`.
template <class Value>
void expect_matches_cpu(const Arrays<Value>& cpu, const Arrays<Value>& gpu,
                        int d, double tolerance) {
  const std::size_t n = cpu.labels.size();
  ASSERT_EQ(gpu.labels.size(), n);
  ASSERT_EQ(cpu.base.size(), n * d);
  ASSERT_EQ(gpu.base.size(), n * d);
  ASSERT_EQ(gpu.endpoints.size(), n * d);
  EXPECT_EQ(0, std::memcmp(cpu.base.data(), gpu.base.data(),
                           cpu.base.size() * sizeof(Value)));
  std::size_t label_mismatches = 0;
  for (std::size_t i = 0; i < n; ++i) label_mismatches += cpu.labels[i] != gpu.labels[i];
  EXPECT_LE(label_mismatches, n / 10000);
  double worst = 0;
  for (std::size_t i = 0; i < cpu.endpoints.size(); ++i) {
    if (cpu.labels[i / d] == gpu.labels[i / d]) {
      worst = std::max(worst, std::fabs(static_cast<double>(cpu.endpoints[i]) -
                                        static_cast<double>(gpu.endpoints[i])));
    }
  }
  EXPECT_LT(worst, tolerance);
  EXPECT_EQ(cpu.tally.samples(), gpu.tally.samples());
  EXPECT_EQ(cpu.tally.status_counts, gpu.tally.status_counts);
  expect_tally_matches_labels(gpu);
}

/// Sets detail::flow_launch_sample_limit for the lifetime of the object.
class LaunchSampleLimit {
 public:
  explicit LaunchSampleLimit(std::size_t limit) {
    detail::flow_launch_sample_limit = limit;
  }
  LaunchSampleLimit(const LaunchSampleLimit&) = delete;
  LaunchSampleLimit& operator=(const LaunchSampleLimit&) = delete;
  ~LaunchSampleLimit() { detail::flow_launch_sample_limit = 0; }
};

/// Sets detail::flow_force_global_label_counts for the lifetime of the
/// object.
class ForceGlobalLabelCounts {
 public:
  ForceGlobalLabelCounts() { detail::flow_force_global_label_counts = true; }
  ForceGlobalLabelCounts(const ForceGlobalLabelCounts&) = delete;
  ForceGlobalLabelCounts& operator=(const ForceGlobalLabelCounts&) = delete;
  ~ForceGlobalLabelCounts() { detail::flow_force_global_label_counts = false; }
};

/// Sets FMG_CUDA_BLOCK_SIZE for the lifetime of the object.
class BlockSizeVariable {
 public:
  explicit BlockSizeVariable(const char* value) {
    setenv(launch::flow_block_size_variable, value, 1);
  }
  BlockSizeVariable(const BlockSizeVariable&) = delete;
  BlockSizeVariable& operator=(const BlockSizeVariable&) = delete;
  ~BlockSizeVariable() { unsetenv(launch::flow_block_size_variable); }
};

/// Checks that two tallies agree in every field.
void expect_same_tally(const FlowTally& run, const FlowTally& reference) {
  EXPECT_EQ(run.label_counts, reference.label_counts);
  EXPECT_EQ(run.status_counts, reference.status_counts);
  EXPECT_EQ(run.step_histogram, reference.step_histogram);
  EXPECT_EQ(run.accepted_sum, reference.accepted_sum);
  EXPECT_EQ(run.rejected_sum, reference.rejected_sum);
  EXPECT_EQ(run.evaluations_sum, reference.evaluations_sum);
  EXPECT_EQ(run.accepted_max, reference.accepted_max);
}

/// Checks the identities that tie the device's sums to its step histogram
/// when every sample succeeded and none reached the histogram's last bin.
/// The accepted steps add up bin by bin, and the maximum is the highest
/// occupied bin. Dormand-Prince with an automatic first step spends
/// 2 + 6 (accepted + rejected) evaluations per sample.
void expect_sums_match_histogram(const FlowTally& tally, Method method) {
  const std::uint64_t n = tally.samples();
  ASSERT_EQ(tally.status_counts[0], n);
  ASSERT_EQ(tally.step_histogram.back(), 0u);
  std::uint64_t weighted = 0;
  std::uint32_t highest = 0;
  for (std::size_t b = 0; b < tally.step_histogram.size(); ++b) {
    weighted += b * tally.step_histogram[b];
    if (tally.step_histogram[b] != 0) highest = static_cast<std::uint32_t>(b);
  }
  EXPECT_EQ(tally.accepted_sum, weighted);
  EXPECT_EQ(tally.accepted_max, highest);
  if (method == Method::dopri5) {
    EXPECT_EQ(tally.evaluations_sum,
              2 * n + 6 * (tally.accepted_sum + tally.rejected_sum));
  }
}

/// Compares the device's tally and statistics with the CPU's on the same
/// seed. Labels can differ for a few samples on basin boundaries (see
/// expect_matches_cpu), and each such sample moves one count between two
/// atoms. Fixed-step methods must agree exactly on the step counts;
/// Dormand-Prince may take a step more or less on a few samples.
template <class Value>
void expect_tally_matches_cpu(const Arrays<Value>& cpu,
                              const Arrays<Value>& gpu, Method method,
                              const std::vector<double>& weights) {
  std::size_t label_mismatches = 0;
  for (std::size_t i = 0; i < cpu.labels.size(); ++i) {
    label_mismatches += cpu.labels[i] != gpu.labels[i];
  }
  EXPECT_LE(label_mismatches, cpu.labels.size() / 10000);
  for (std::size_t k = 0; k < cpu.tally.label_counts.size(); ++k) {
    SCOPED_TRACE(testing::Message() << "atom " << k);
    const auto cpu_count = static_cast<double>(cpu.tally.label_counts[k]);
    const auto gpu_count = static_cast<double>(gpu.tally.label_counts[k]);
    EXPECT_LE(std::fabs(cpu_count - gpu_count),
              static_cast<double>(label_mismatches));
  }
  EXPECT_EQ(cpu.tally.status_counts, gpu.tally.status_counts);

  const BasinStatistics cpu_basins = basin_statistics(cpu.tally, weights);
  const BasinStatistics gpu_basins = basin_statistics(gpu.tally, weights);
  EXPECT_EQ(cpu_basins.succeeded, gpu_basins.succeeded);
  const double n = static_cast<double>(cpu.labels.size());
  for (std::size_t k = 0; k < weights.size(); ++k) {
    EXPECT_NEAR(cpu_basins.fractions[k], gpu_basins.fractions[k],
                static_cast<double>(label_mismatches) / n + 1e-15);
  }

  const StepStatistics cpu_steps = step_statistics(cpu.tally);
  const StepStatistics gpu_steps = step_statistics(gpu.tally);
  if (method != Method::dopri5) {
    EXPECT_EQ(cpu.tally.step_histogram, gpu.tally.step_histogram);
    EXPECT_EQ(cpu.tally.accepted_sum, gpu.tally.accepted_sum);
    EXPECT_EQ(cpu.tally.rejected_sum, gpu.tally.rejected_sum);
    EXPECT_EQ(cpu.tally.evaluations_sum, gpu.tally.evaluations_sum);
    EXPECT_EQ(cpu.tally.accepted_max, gpu.tally.accepted_max);
    EXPECT_EQ(cpu_steps.p50, gpu_steps.p50);
    EXPECT_EQ(cpu_steps.p99, gpu_steps.p99);
    EXPECT_EQ(cpu_steps.mean_evaluations, gpu_steps.mean_evaluations);
  } else {
    EXPECT_NEAR(cpu_steps.p50, gpu_steps.p50, 1.0);
    EXPECT_NEAR(cpu_steps.p90, gpu_steps.p90, 1.0);
    EXPECT_NEAR(cpu_steps.p99, gpu_steps.p99, 1.0);
    EXPECT_NEAR(cpu_steps.mean_accepted, gpu_steps.mean_accepted,
                1e-3 * cpu_steps.mean_accepted);
  }
  EXPECT_EQ(cpu_steps.max_steps_reached, gpu_steps.max_steps_reached);
  EXPECT_EQ(cpu_steps.non_finite_state, gpu_steps.non_finite_state);
}

/// Returns a 2-D mixture of `count` equally weighted atoms on a grid of
/// spacing 0.25, 100 atoms to a row.
Mixture grid_mixture(int count) {
  Mixture mixture;
  mixture.dim = 2;
  const int columns = 100;
  for (int k = 0; k < count; ++k) {
    mixture.atoms.push_back(0.25 * (k % columns) - 12.5);
    mixture.atoms.push_back(0.25 * (k / columns) - 6.25);
  }
  mixture.weights.assign(static_cast<std::size_t>(count), 1.0 / count);
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
        RunSpec<double> spec;
        spec.num_samples = n;
        spec.method = method;
        const auto [cpu, gpu] = run_both(spec, mixture_of_dimension(d));
        expect_matches_cpu(cpu, gpu, d, 1e-5);
      }
    }
  }
}

TEST_F(CudaBackend, EveryMethodMatchesCpu) {
  for (int d : {2, 5}) {
    for (Method method : {Method::euler, Method::heun, Method::rk4, Method::dopri5}) {
      SCOPED_TRACE(testing::Message() << "d " << d << " method "
                                      << static_cast<int>(method));
      RunSpec<double> spec;
      spec.num_samples = 4099;
      spec.method = method;
      const auto [cpu, gpu] = run_both(spec, mixture_of_dimension(d));
      expect_matches_cpu(cpu, gpu, d, 1e-5);
      if (method != Method::dopri5) {
        // Fixed steps: every sample takes exactly `steps` steps.
        EXPECT_EQ(cpu.tally.accepted_sum, gpu.tally.accepted_sum);
        EXPECT_EQ(cpu.tally.evaluations_sum, gpu.tally.evaluations_sum);
        EXPECT_EQ(cpu.tally.step_histogram, gpu.tally.step_histogram);
      }
    }
  }
}

TEST_F(CudaBackend, FloatMatchesCpu) {
  for (int d : {1, 2, 3, 5}) {
    for (std::uint64_t n : {std::uint64_t{1}, std::uint64_t{1000},
                            std::uint64_t{100003}}) {
      for (Method method : {Method::rk4, Method::dopri5}) {
        SCOPED_TRACE(testing::Message() << "d " << d << " n " << n << " method "
                                        << static_cast<int>(method));
        RunSpec<float> spec;
        spec.num_samples = n;
        spec.method = method;
        const auto [cpu, gpu] = run_both(spec, mixture_of_dimension(d));
        expect_matches_cpu(cpu, gpu, d, 1e-3);
      }
    }
  }
}

TEST_F(CudaBackend, DynamicDimension64MatchesCpu) {
  for (Method method : {Method::rk4, Method::dopri5}) {
    SCOPED_TRACE(testing::Message() << "method " << static_cast<int>(method));
    RunSpec<double> spec;
    spec.num_samples = 20011;
    spec.method = method;
    const auto [cpu, gpu] = run_both(spec, mixture_of_dimension(64));
    expect_matches_cpu(cpu, gpu, 64, 1e-5);
  }
}

TEST_F(CudaBackend, SingleAtomLabelsEverySample) {
  Mixture mixture;
  mixture.dim = 3;
  mixture.atoms = {1.0, -2.0, 0.5};
  mixture.weights = {1.0};
  RunSpec<double> spec;
  spec.num_samples = 1001;
  spec.method = Method::dopri5;
  const auto [cpu, gpu] = run_both(spec, mixture);
  expect_matches_cpu(cpu, gpu, 3, 1e-5);
  ASSERT_EQ(gpu.tally.label_counts.size(), 1u);
  EXPECT_EQ(gpu.tally.label_counts[0], spec.num_samples);
}

TEST_F(CudaBackend, ZeroWeightAtomGetsNoSamples) {
  Mixture mixture;
  mixture.dim = 2;
  mixture.atoms = {2.4, 0.0, -1.4, 2.0, 40.0, 40.0};
  mixture.weights = {0.6, 0.4, 0.0};
  for (Method method : {Method::rk4, Method::dopri5}) {
    SCOPED_TRACE(testing::Message() << "method " << static_cast<int>(method));
    RunSpec<double> spec;
    spec.num_samples = 5003;
    spec.method = method;
    const auto [cpu, gpu] = run_both(spec, mixture);
    expect_matches_cpu(cpu, gpu, 2, 1e-5);
    EXPECT_EQ(gpu.tally.label_counts[2], 0u);
  }
}

TEST_F(CudaBackend, IdenticalAcrossChunkSizes) {
  for (int d : {2, 5}) {
    for (std::uint64_t n : {std::uint64_t{257}, std::uint64_t{100003}}) {
      SCOPED_TRACE(testing::Message() << "d " << d << " n " << n);
      const Mixture mixture = mixture_of_dimension(d);
      RunSpec<double> spec;
      spec.num_samples = n;
      spec.chunk_size = 100003;
      const Arrays<double> reference = run_on(spec, mixture);
      // Chunks of 1 would need 10^5 round trips at the larger n.
      for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{40000}}) {
        if (chunk == 1 && n > 1000) continue;
        SCOPED_TRACE(testing::Message() << "chunk " << chunk);
        spec.chunk_size = chunk;
        const Arrays<double> run = run_on(spec, mixture);
        EXPECT_EQ(run.base, reference.base);
        EXPECT_EQ(run.endpoints, reference.endpoints);
        EXPECT_EQ(run.labels, reference.labels);
        EXPECT_EQ(run.tally.label_counts, reference.tally.label_counts);
        EXPECT_EQ(run.tally.step_histogram, reference.tally.step_histogram);
        EXPECT_EQ(run.tally.evaluations_sum, reference.tally.evaluations_sum);
      }
    }
  }
}

TEST_F(CudaBackend, LaunchSplitKeepsResults) {
  for (int d : {2, 5}) {
    for (Method method : {Method::rk4, Method::dopri5}) {
      SCOPED_TRACE(testing::Message() << "d " << d << " method "
                                      << static_cast<int>(method));
      const Mixture mixture = mixture_of_dimension(d);
      RunSpec<double> spec;
      spec.num_samples = 2503;
      spec.method = method;
      const Arrays<double> reference = run_on(spec, mixture);

      // Given starting points equal to the Philox samples exercise the
      // offset of the host-to-device copy in each launch.
      const std::vector<double> starts = reference.base;
      spec.starts = &starts;
      const LaunchSampleLimit limit(1000);
      const Arrays<double> split = run_on(spec, mixture);
      EXPECT_EQ(split.base, reference.base);
      EXPECT_EQ(split.endpoints, reference.endpoints);
      EXPECT_EQ(split.labels, reference.labels);
      EXPECT_EQ(split.tally.label_counts, reference.tally.label_counts);
      EXPECT_EQ(split.tally.step_histogram, reference.tally.step_histogram);
      EXPECT_EQ(split.tally.accepted_max, reference.tally.accepted_max);
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

TEST_F(CudaBackend, FusedTallyMatchesCpuOnBuiltinExample) {
  const Mixture mixture = builtin_example();
  for (Method method : {Method::euler, Method::rk4, Method::dopri5}) {
    SCOPED_TRACE(testing::Message() << "method " << static_cast<int>(method));
    RunSpec<double> spec;
    spec.num_samples = 100003;
    spec.method = method;
    const auto [cpu, gpu] = run_both(spec, mixture);
    expect_matches_cpu(cpu, gpu, 2, 1e-5);
    expect_tally_matches_cpu(cpu, gpu, method, mixture.weights);
    expect_sums_match_histogram(gpu.tally, method);
  }
}

TEST_F(CudaBackend, FusedTallyMatchesCpuInFloat) {
  const Mixture mixture = builtin_example();
  for (Method method : {Method::rk4, Method::dopri5}) {
    SCOPED_TRACE(testing::Message() << "method " << static_cast<int>(method));
    RunSpec<float> spec;
    spec.num_samples = 100003;
    spec.method = method;
    const auto [cpu, gpu] = run_both(spec, mixture);
    expect_matches_cpu(cpu, gpu, 2, 1e-3);
    expect_tally_matches_cpu(cpu, gpu, method, mixture.weights);
    expect_sums_match_histogram(gpu.tally, method);
  }
}

TEST_F(CudaBackend, GlobalLabelCountsMatchShared) {
  for (const Mixture& mixture : {builtin_example(), mixture_of_dimension(5)}) {
    SCOPED_TRACE(testing::Message() << "d " << mixture.dim);
    RunSpec<double> spec;
    spec.num_samples = 20011;
    spec.method = Method::dopri5;
    const Arrays<double> shared = run_on(spec, mixture);
    const ForceGlobalLabelCounts force;
    const Arrays<double> global = run_on(spec, mixture);
    EXPECT_EQ(global.labels, shared.labels);
    expect_same_tally(global.tally, shared.tally);
  }
}

TEST_F(CudaBackend, ManyAtomsMatchCpu) {
  // 5001 label counters need 10 KiB of shared memory per block. Forced to
  // global atomics, the kernel takes the path of mixtures too large for
  // shared memory; by default it takes whichever this device's occupancy
  // allows. Both must give the same results.
  const Mixture mixture = grid_mixture(5000);
  for (Method method : {Method::euler, Method::rk4}) {
    SCOPED_TRACE(testing::Message() << "method " << static_cast<int>(method));
    RunSpec<double> spec;
    spec.num_samples = 4099;
    spec.method = method;
    spec.chunk_size = 1000;
    const auto [cpu, gpu] = run_both(spec, mixture);
    expect_matches_cpu(cpu, gpu, 2, 1e-5);
    expect_tally_matches_cpu(cpu, gpu, method, mixture.weights);
    expect_sums_match_histogram(gpu.tally, method);

    const ForceGlobalLabelCounts force;
    const Arrays<double> global = run_on(spec, mixture);
    EXPECT_EQ(global.labels, gpu.labels);
    EXPECT_EQ(global.endpoints, gpu.endpoints);
    expect_same_tally(global.tally, gpu.tally);
  }
}

TEST_F(CudaBackend, ManyAtomsDopri5SameOnBothLabelPaths) {
  const Mixture mixture = grid_mixture(5000);
  RunSpec<double> spec;
  spec.num_samples = 20011;
  spec.method = Method::dopri5;
  spec.outputs = false;
  const Arrays<double> shared = run_on(spec, mixture);
  const ForceGlobalLabelCounts force;
  const Arrays<double> global = run_on(spec, mixture);
  expect_same_tally(global.tally, shared.tally);
  EXPECT_EQ(global.tally.samples(), spec.num_samples);
}

TEST_F(CudaBackend, OverlappedChunksMatchOneChunk) {
  for (int d : {2, 5}) {
    const Mixture mixture = mixture_of_dimension(d);
    RunSpec<double> spec;
    spec.num_samples = 100003;
    spec.method = Method::dopri5;
    spec.chunk_size = spec.num_samples;
    const Arrays<double> reference = run_on(spec, mixture);
    const std::vector<double> starts = reference.base;
    for (std::size_t chunk : {std::size_t{1000}, std::size_t{7919},
                              std::size_t{65536}}) {
      for (bool given_starts : {false, true}) {
        SCOPED_TRACE(testing::Message() << "d " << d << " chunk " << chunk
                                        << " starts " << given_starts);
        spec.chunk_size = chunk;
        spec.starts = given_starts ? &starts : nullptr;
        const Arrays<double> run = run_on(spec, mixture);
        EXPECT_EQ(run.base, reference.base);
        EXPECT_EQ(run.endpoints, reference.endpoints);
        EXPECT_EQ(run.labels, reference.labels);
        expect_same_tally(run.tally, reference.tally);
      }
    }
  }
}

TEST_F(CudaBackend, TallyOnlyRunMatchesFullRun) {
  for (int d : {2, 5}) {
    SCOPED_TRACE(testing::Message() << "d " << d);
    const Mixture mixture = mixture_of_dimension(d);
    RunSpec<double> spec;
    spec.num_samples = 100003;
    spec.method = Method::dopri5;
    spec.chunk_size = 30011;
    const Arrays<double> full = run_on(spec, mixture);
    spec.outputs = false;
    const Arrays<double> tally_only = run_on(spec, mixture);
    EXPECT_TRUE(tally_only.labels.empty());
    expect_same_tally(tally_only.tally, full.tally);
  }
}

TEST_F(CudaBackend, PipelineMatchesRunChunk) {
  const Mixture mixture = builtin_example();
  const HostMixture<double> host = make_host_mixture<double>(mixture);
  FlowProblem<double> problem;
  problem.method = Method::dopri5;
  problem.seed = 77;
  auto backend = make_cuda_flow_backend(host, problem);
  ASSERT_EQ(backend->max_chunks_in_flight(), launch::flow_stream_count);

  constexpr std::size_t count = 5003;
  std::vector<std::int32_t> direct(2 * count);
  FlowTally direct_tally(mixture.num_atoms());
  FlowChunk<double> chunk;
  chunk.count = count;
  for (std::uint64_t c = 0; c < 2; ++c) {
    chunk.first_index = c * count;
    chunk.labels = direct.data() + c * count;
    backend->run_chunk(chunk, direct_tally);
  }

  // Pinned buffers from the backend, as the driver uses them.
  HostAllocation memory = backend->allocate_host(2 * count * sizeof(std::int32_t));
  auto* labels = static_cast<std::int32_t*>(memory.get());
  FlowTally tally(mixture.num_atoms());
  FlowChunk<double> first = chunk;
  first.first_index = 0;
  first.labels = labels;
  FlowChunk<double> second = chunk;
  second.first_index = count;
  second.labels = labels + count;
  backend->submit_chunk(first);
  backend->submit_chunk(second);
  EXPECT_THROW(backend->submit_chunk(first), std::logic_error);
  EXPECT_THROW(backend->run_chunk(first, tally), std::logic_error);
  backend->finish_chunk(tally);
  backend->finish_chunk(tally);
  EXPECT_THROW(backend->finish_chunk(tally), std::logic_error);

  EXPECT_TRUE(std::equal(direct.begin(), direct.end(), labels));
  expect_same_tally(tally, direct_tally);
}

TEST_F(CudaBackend, BlockSizeOverrideKeepsResults) {
  const Mixture mixture = mixture_of_dimension(3);
  RunSpec<double> spec;
  spec.num_samples = 10007;
  spec.method = Method::dopri5;
  const Arrays<double> reference = run_on(spec, mixture);
  for (const char* block_size : {"32", "96", "512"}) {
    SCOPED_TRACE(block_size);
    const BlockSizeVariable variable(block_size);
    const Arrays<double> run = run_on(spec, mixture);
    EXPECT_EQ(run.endpoints, reference.endpoints);
    EXPECT_EQ(run.labels, reference.labels);
    expect_same_tally(run.tally, reference.tally);
  }
}

TEST_F(CudaBackend, InvalidBlockSizeVariableThrows) {
  const BlockSizeVariable variable("100");
  RunSpec<double> spec;
  EXPECT_THROW(run_on(spec, builtin_example()), InvalidArgument);
}

}  // namespace
}  // namespace fmg
