// The CPU backend and the chunked driver: invariance to threads and chunks,
// basin fractions of the built-in example, statistics and validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "host/driver.hpp"
#include "host/errors.hpp"
#include "host/statistics.hpp"
#include "kernels/schedule.hpp"

namespace fmg {
namespace {

struct Captured {
  std::vector<unsigned char> endpoints, labels, base;
  FlowTally tally;
};

Captured run_captured(const FlowRunOptions& options,
                      const Mixture& mixture = builtin_example()) {
  Captured out;
  FlowRunIo io;
  auto sink = [](std::vector<unsigned char>& buffer) {
    return [&buffer](const void* data, std::size_t bytes) {
      const auto* p = static_cast<const unsigned char*>(data);
      buffer.insert(buffer.end(), p, p + bytes);
    };
  };
  io.endpoints = sink(out.endpoints);
  io.labels = sink(out.labels);
  io.base_samples = sink(out.base);
  out.tally = run_flow(mixture, options, io).tally;
  return out;
}

FlowRunOptions small_run() {
  FlowRunOptions options;
  options.backend = BackendChoice::cpu;
  options.num_samples = 3001;
  options.progress = false;
  options.rtol = 1e-7;
  options.atol = 1e-9;
  return options;
}

TEST(CpuBackend, IdenticalAcrossThreadsAndChunks) {
  FlowRunOptions reference_options = small_run();
  reference_options.threads = 1;
  reference_options.chunk_size = 1 << 20;
  const Captured reference = run_captured(reference_options);
  for (int threads : {1, 2, 3}) {
    for (std::size_t chunk : {std::size_t{1}, std::size_t{97}, std::size_t{1000}}) {
      SCOPED_TRACE(testing::Message() << threads << " threads, chunk " << chunk);
      FlowRunOptions options = small_run();
      options.threads = threads;
      options.chunk_size = chunk;
      const Captured run = run_captured(options);
      EXPECT_EQ(run.base, reference.base);
      EXPECT_EQ(run.endpoints, reference.endpoints);
      EXPECT_EQ(run.labels, reference.labels);
      EXPECT_EQ(run.tally.label_counts, reference.tally.label_counts);
      EXPECT_EQ(run.tally.evaluations_sum, reference.tally.evaluations_sum);
    }
  }
}

// Chunks of a few thousand samples run on one thread; these are large
// enough for every thread to take several lane ranges.
TEST(CpuBackend, IdenticalOnLargeChunks) {
  FlowRunOptions reference_options = small_run();
  reference_options.num_samples = 30001;
  reference_options.threads = 1;
  const Captured reference = run_captured(reference_options);
  for (int threads : {2, 3}) {
    for (std::size_t chunk : {std::size_t{1} << 20, std::size_t{13000}}) {
      SCOPED_TRACE(testing::Message() << threads << " threads, chunk " << chunk);
      FlowRunOptions options = reference_options;
      options.threads = threads;
      options.chunk_size = chunk;
      const Captured run = run_captured(options);
      EXPECT_EQ(run.endpoints, reference.endpoints);
      EXPECT_EQ(run.labels, reference.labels);
      EXPECT_EQ(run.tally.label_counts, reference.tally.label_counts);
      EXPECT_EQ(run.tally.evaluations_sum, reference.tally.evaluations_sum);
      EXPECT_EQ(run.tally.step_histogram, reference.tally.step_histogram);
    }
  }
}

TEST(CpuBackend, FloatPrecisionRuns) {
  FlowRunOptions options = small_run();
  options.precision = Precision::float32;
  options.rtol = 1e-5;
  options.atol = 1e-6;
  const Captured run = run_captured(options);
  EXPECT_EQ(run.endpoints.size(), options.num_samples * 2 * sizeof(float));
  EXPECT_EQ(run.tally.status_counts[0], options.num_samples);
}

TEST(CpuBackend, StartsReplaceBaseSamples) {
  FlowRunOptions options = small_run();
  options.num_samples = 3;
  const std::vector<double> starts{3.0, 0.0, -1.0, 3.0, -1.0, -3.0};
  FlowRunIo io;
  std::vector<std::int32_t> labels;
  io.starts = &starts;
  io.labels = [&labels](const void* data, std::size_t bytes) {
    const auto* p = static_cast<const std::int32_t*>(data);
    labels.insert(labels.end(), p, p + bytes / sizeof(std::int32_t));
  };
  run_flow(builtin_example(), options, io);
  EXPECT_EQ(labels, (std::vector<std::int32_t>{0, 1, 2}));
}

TEST(CpuBackend, HighDimensionAndManyAtoms) {
  Mixture mixture;
  mixture.dim = 64;
  const int k_count = 40;
  for (int k = 0; k < k_count; ++k) {
    for (int j = 0; j < mixture.dim; ++j) {
      mixture.atoms.push_back(3.0 * std::sin(1.0 + k * 0.7 + j * 1.3));
    }
    mixture.weights.push_back(1.0 / k_count);
  }
  FlowRunOptions options = small_run();
  options.num_samples = 200;
  options.method = Method::rk4;
  options.steps = 64;
  const Captured run = run_captured(options, mixture);
  EXPECT_EQ(run.tally.samples(), 200u);
  const auto* endpoints = reinterpret_cast<const double*>(run.endpoints.data());
  for (std::size_t i = 0; i < 200 * 64; ++i) ASSERT_TRUE(std::isfinite(endpoints[i]));
}

TEST(BuiltinExample, FractionsMatchWeightsAtOneMillion) {
  for (ScheduleKind kind : {ScheduleKind::linear, ScheduleKind::variance_preserving,
                            ScheduleKind::cosine}) {
    SCOPED_TRACE(static_cast<int>(kind));
    FlowRunOptions options;
    options.backend = BackendChoice::cpu;
    options.schedule = kind;
    options.num_samples = 1000000;
    options.progress = false;
    const FlowRunResult result = run_flow(builtin_example(), options);
    const BasinStatistics basins =
        basin_statistics(result.tally, builtin_example().weights);
    EXPECT_EQ(basins.succeeded, options.num_samples);
    for (std::size_t k = 0; k < 3; ++k) {
      SCOPED_TRACE(k);
      EXPECT_LT(std::fabs(basins.z_scores[k]), 4.0);
    }
  }
}

/// Two equal-weight atoms `scale` apart along the second axis.
Mixture far_apart_atoms(double scale) {
  Mixture mixture;
  mixture.dim = 2;
  mixture.atoms = {0.0, scale, 1.0, 1.0};
  mixture.weights = {0.5, 0.5};
  return mixture;
}

// Atoms 3e9 apart split the samples near t = 1e-5 under the cosine
// schedule, where a'(0) = b'(0) = 0 leaves the first velocity zero. The
// first automatic step must stay below that split, so every schedule sends
// the same samples to the same atoms, in float and double.
TEST(FarApartAtoms, EverySchedulePicksTheSameAtoms) {
  for (double scale : {3e9, 1e16}) {
    for (Precision precision : {Precision::float64, Precision::float32}) {
      SCOPED_TRACE(testing::Message() << "scale " << scale << " precision "
                                      << static_cast<int>(precision));
      FlowRunOptions options = small_run();
      options.num_samples = 1000;
      options.precision = precision;
      if (precision == Precision::float32) {
        options.rtol = 1e-5;
        options.atol = 1e-6;
      }
      const Mixture mixture = far_apart_atoms(precision == Precision::float32 ? 1e10 : scale);
      options.schedule = ScheduleKind::linear;
      const Captured linear = run_captured(options, mixture);
      for (ScheduleKind kind : {ScheduleKind::variance_preserving, ScheduleKind::cosine}) {
        SCOPED_TRACE(static_cast<int>(kind));
        options.schedule = kind;
        const Captured other = run_captured(options, mixture);
        EXPECT_EQ(other.labels, linear.labels);
        EXPECT_EQ(other.tally.status_counts[0], options.num_samples);
      }
      // Both atoms take about half the samples (4 standard errors: 63).
      EXPECT_NEAR(static_cast<double>(linear.tally.label_counts[0]), 500.0, 63.0);
    }
  }
}

TEST(FirstStepLimit, MarksWhereFarAtomsSplitTheSamples) {
  const Mixture mixture = far_apart_atoms(3e9);
  const double extent = std::hypot(1.0, 3e9 - 1.0);
  for (ScheduleKind kind : {ScheduleKind::linear, ScheduleKind::variance_preserving,
                            ScheduleKind::cosine}) {
    SCOPED_TRACE(static_cast<int>(kind));
    const double limit = first_step_limit(mixture, kind, 0.999);
    const ScheduleValues<double> v = evaluate_schedule(kind, limit);
    EXPECT_GT(limit, 0.0);
    EXPECT_NEAR(v.b * extent / (0.1 * v.a * v.a), 1.0, 2e-3);
  }
}

TEST(FirstStepLimit, IsTheEndTimeWithoutFarAtoms) {
  Mixture one_positive = far_apart_atoms(3e9);
  one_positive.weights = {0.0, 1.0};
  EXPECT_EQ(first_step_limit(one_positive, ScheduleKind::cosine, 0.999), 0.999);
  Mixture close;
  close.dim = 1;
  close.atoms = {0.0, 1e-8};
  close.weights = {0.5, 0.5};
  EXPECT_EQ(first_step_limit(close, ScheduleKind::linear, 0.999), 0.999);
}

// The cosine schedule splits atoms 1e140 apart near t = 2e-71, far below
// what a bisection on t itself reaches in 200 halvings (6e-61).
TEST(FirstStepLimit, ReachesSplitOfHugeExtents) {
  const Mixture mixture = far_apart_atoms(1e140);
  const double limit = first_step_limit(mixture, ScheduleKind::cosine, 0.999);
  const ScheduleValues<double> v = evaluate_schedule(ScheduleKind::cosine, limit);
  EXPECT_LT(limit, 1e-70);
  EXPECT_NEAR(v.b * std::hypot(1.0, 1e140 - 1.0) / (0.1 * v.a * v.a), 1.0, 2e-3);
}

/// Returns the options of a quiet CPU run of n samples in `precision`, with
/// the command line's default tolerances for that precision.
FlowRunOptions cpu_run_in(Precision precision, std::uint64_t n) {
  FlowRunOptions options;
  options.backend = BackendChoice::cpu;
  options.num_samples = n;
  options.progress = false;
  options.precision = precision;
  if (precision == Precision::float32) {
    options.rtol = 1e-5;
    options.atol = 1e-6;
  }
  return options;
}

// At the largest allowed coordinates (1e150 in double, 1e15 in float) the
// first velocity scaled by the tolerances squares past the largest double:
// the first-step norm overflowed, the trial step became 0 and every sample
// ran into the step limit. Every schedule must finish and split the samples.
TEST(FirstStepLimit, CoordinateLimitAtomsFinish) {
  for (Precision precision : {Precision::float64, Precision::float32}) {
    SCOPED_TRACE(static_cast<int>(precision));
    const Mixture mixture =
        far_apart_atoms(precision == Precision::float64 ? 1e150 : 1e15);
    for (ScheduleKind kind : {ScheduleKind::linear, ScheduleKind::variance_preserving,
                              ScheduleKind::cosine}) {
      SCOPED_TRACE(static_cast<int>(kind));
      FlowRunOptions options = cpu_run_in(precision, 400);
      options.schedule = kind;
      options.max_steps = 2000;
      const FlowTally tally = run_flow(mixture, options).tally;
      EXPECT_EQ(tally.status_counts[0], 400u);
      // Four binomial standard errors: 40.
      EXPECT_NEAR(static_cast<double>(tally.label_counts[0]), 200.0, 40.0);
    }
  }
}

Mixture close_atoms_far_from_origin() {
  Mixture mixture;
  mixture.dim = 2;
  mixture.atoms = {1000.0, 0.0, 1000.1, 0.0};
  mixture.weights = {0.5, 0.5};
  return mixture;
}

TEST(FlowShift, MovesOnlyFarAtoms) {
  EXPECT_EQ(flow_shift(builtin_example()), std::vector<double>(2, 0.0));
  const std::vector<double> shift = flow_shift(close_atoms_far_from_origin());
  ASSERT_EQ(shift.size(), 2u);
  EXPECT_DOUBLE_EQ(shift[0], 1000.05);
  EXPECT_EQ(shift[1], 0.0);
}

/// Labels as ints from a captured run.
std::vector<std::int32_t> labels_of(const Captured& run) {
  std::vector<std::int32_t> labels(run.labels.size() / sizeof(std::int32_t));
  std::memcpy(labels.data(), run.labels.data(), run.labels.size());
  return labels;
}

// Atoms 0.1 apart near (1000, 0): with the relative tolerance applied to
// states of magnitude 1000, the variance-preserving and cosine schedules
// sent hundreds of samples in 1e5 to the other atom, in float tens of
// thousands. Integrated about the atoms' centre, every schedule sends each
// sample to the same atom in both precisions.
TEST(FlowShift, SchedulesAgreeFarFromOrigin) {
  const Mixture mixture = close_atoms_far_from_origin();
  for (Precision precision : {Precision::float64, Precision::float32}) {
    SCOPED_TRACE(static_cast<int>(precision));
    FlowRunOptions options = cpu_run_in(precision, 20000);
    options.schedule = ScheduleKind::linear;
    const std::vector<std::int32_t> linear = labels_of(run_captured(options, mixture));
    EXPECT_NEAR(static_cast<double>(std::count(linear.begin(), linear.end(), 0)), 10000.0,
                283.0);  // four binomial standard errors
    for (ScheduleKind kind : {ScheduleKind::variance_preserving, ScheduleKind::cosine}) {
      SCOPED_TRACE(static_cast<int>(kind));
      options.schedule = kind;
      const std::vector<std::int32_t> other = labels_of(run_captured(options, mixture));
      ASSERT_EQ(other.size(), linear.size());
      std::size_t differing = 0;
      for (std::size_t i = 0; i < other.size(); ++i) differing += other[i] != linear[i];
      EXPECT_LE(differing, 2u);
    }
  }
}

// The endpoints are written in the atoms' frame: near b(t_end) mu_k of
// their label, and equal to the last trajectory point.
TEST(FlowShift, OutputsInAtomsFrame) {
  const Mixture mixture = close_atoms_far_from_origin();
  FlowRunOptions options;
  options.backend = BackendChoice::cpu;
  options.num_samples = 50;
  options.progress = false;
  options.schedule = ScheduleKind::linear;
  options.cpu_simd = false;
  const Captured run = run_captured(options, mixture);
  std::vector<double> ends(run.endpoints.size() / sizeof(double));
  std::memcpy(ends.data(), run.endpoints.data(), run.endpoints.size());
  const std::vector<std::int32_t> labels = labels_of(run);
  const Trajectories paths = record_trajectories(mixture, options, 50, 11);
  for (std::size_t i = 0; i < 50; ++i) {
    const double* mu = mixture.atoms.data() + 2 * labels[i];
    // Spread a(t_end) = 1e-3 per axis; 0.01 is ten of those.
    EXPECT_NEAR(ends[2 * i], 0.999 * mu[0], 0.01);
    EXPECT_NEAR(ends[2 * i + 1], 0.999 * mu[1], 0.01);
    const double* last = paths.states.data() + (i * 11 + 10) * 2;
    EXPECT_NEAR(last[0], ends[2 * i], 1e-9);
    EXPECT_NEAR(last[1], ends[2 * i + 1], 1e-9);
  }
}

TEST(Statistics, PercentilesFromHistogram) {
  FlowTally tally(1);
  // 50 samples with 10 steps, 40 with 20, 10 with 30.
  tally.step_histogram[10] = 50;
  tally.step_histogram[20] = 40;
  tally.step_histogram[30] = 10;
  tally.status_counts[0] = 100;
  tally.accepted_sum = 50 * 10 + 40 * 20 + 10 * 30;
  tally.accepted_max = 30;
  const StepStatistics steps = step_statistics(tally);
  EXPECT_EQ(steps.p50, 10u);
  EXPECT_EQ(steps.p90, 20u);
  EXPECT_EQ(steps.p99, 30u);
  EXPECT_DOUBLE_EQ(steps.mean_accepted, 16.0);
  EXPECT_FALSE(steps.percentiles_capped);
}

TEST(Statistics, StandardErrorsAgainstWeights) {
  FlowTally tally(2);
  tally.label_counts = {30, 70};
  tally.status_counts[0] = 100;
  const BasinStatistics basins = basin_statistics(tally, {0.25, 0.75});
  EXPECT_DOUBLE_EQ(basins.fractions[0], 0.3);
  EXPECT_DOUBLE_EQ(basins.standard_errors[0], std::sqrt(0.25 * 0.75 / 100));
  EXPECT_NEAR(basins.z_scores[0], 0.05 / std::sqrt(0.25 * 0.75 / 100), 1e-12);
}

// An atom of weight 0 has no binomial spread, so its z-score is undefined
// (null in the summary), not 0.
TEST(Statistics, ZScoreOfZeroWeightIsUndefined) {
  FlowTally tally(2);
  tally.label_counts = {100, 0};
  tally.status_counts[0] = 100;
  const BasinStatistics basins = basin_statistics(tally, {1.0, 0.0});
  EXPECT_TRUE(std::isnan(basins.z_scores[0]));
  EXPECT_TRUE(std::isnan(basins.z_scores[1]));
  EXPECT_EQ(basins.standard_errors[1], 0.0);
}

TEST(FlowOptions, RejectsInvalidValues) {
  const struct {
    const char* name;
    void (*change)(FlowRunOptions&);
    const char* fragment;
  } cases[] = {
      {"zero samples", [](FlowRunOptions& o) { o.num_samples = 0; }, "samples 0"},
      {"eps zero", [](FlowRunOptions& o) { o.eps = 0.0; }, "eps 0"},
      {"eps one", [](FlowRunOptions& o) { o.eps = 1.0; }, "eps 1"},
      {"eps below resolution", [](FlowRunOptions& o) { o.eps = 1e-16; }, "time resolution"},
      {"float eps below resolution",
       [](FlowRunOptions& o) {
         o.precision = Precision::float32;
         o.rtol = 1e-4;
         o.atol = 1e-4;
         o.eps = 1e-7;
       },
       "float"},
      {"rtol zero", [](FlowRunOptions& o) { o.rtol = 0.0; }, "rtol 0"},
      {"atol negative", [](FlowRunOptions& o) { o.atol = -1.0; }, "atol -1"},
      {"rtol NaN", [](FlowRunOptions& o) { o.rtol = std::nan(""); }, "rtol nan"},
      {"float rtol too small",
       [](FlowRunOptions& o) {
         o.precision = Precision::float32;
         o.rtol = 1e-8;
       },
       "cannot meet"},
      {"steps zero", [](FlowRunOptions& o) { o.steps = 0; }, "steps 0"},
      {"max steps zero", [](FlowRunOptions& o) { o.max_steps = 0; }, "maximum number of steps"},
      {"negative initial step", [](FlowRunOptions& o) { o.initial_step = -0.1; }, "initial step"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    FlowRunOptions options = small_run();
    c.change(options);
    try {
      validate_flow_options(options, 2);
      ADD_FAILURE() << "no exception";
    } catch (const InvalidArgument& error) {
      EXPECT_NE(std::string(error.what()).find(c.fragment), std::string::npos)
          << error.what();
    }
  }
}

TEST(FlowOptions, CudaRequestWithoutDeviceIsUnavailable) {
  if (cuda_backend_available()) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_THROW(resolve_backend(BackendChoice::cuda), Unavailable);
  EXPECT_EQ(resolve_backend(BackendChoice::automatic), BackendChoice::cpu);
}

TEST(Trajectories, DenseOutputMatchesDirectIntegration) {
  FlowRunOptions options = small_run();
  options.rtol = 1e-9;
  options.atol = 1e-11;
  const Trajectories paths = record_trajectories(builtin_example(), options, 3, 11);
  ASSERT_EQ(paths.times.size(), 11u);
  EXPECT_EQ(paths.times.front(), 0.0);
  EXPECT_EQ(paths.times.back(), 1.0 - options.eps);
  // Integrating straight to an intermediate grid time must agree with the
  // dense output there, to the tolerance of the run.
  for (std::size_t i = 0; i < 3; ++i) {
    for (int g : {3, 7}) {
      SCOPED_TRACE(testing::Message() << "sample " << i << " point " << g);
      FlowRunOptions partial = options;
      partial.eps = 1.0 - paths.times[g];
      const Trajectories direct = record_trajectories(builtin_example(), partial, i + 1, 2);
      for (int j = 0; j < 2; ++j) {
        EXPECT_NEAR(paths.states[(i * 11 + g) * 2 + j],
                    direct.states[(i * 2 + 1) * 2 + j], 1e-6);
      }
    }
  }
}

TEST(Trajectories, FixedStepEndsAtEndpoint) {
  FlowRunOptions options = small_run();
  options.method = Method::rk4;
  options.steps = 50;
  options.num_samples = 4;
  const Trajectories paths = record_trajectories(builtin_example(), options, 4, 26);
  const Captured run = run_captured(options);
  const auto* endpoints = reinterpret_cast<const double*>(run.endpoints.data());
  for (std::size_t i = 0; i < 4; ++i) {
    for (int j = 0; j < 2; ++j) {
      // Trajectories use the per-sample path and the batch the SIMD lanes,
      // whose exp differs from the C library's in the last bits.
      EXPECT_NEAR(paths.states[(i * 26 + 25) * 2 + j], endpoints[i * 2 + j], 1e-12);
    }
  }
}

}  // namespace
}  // namespace fmg

namespace fmg {
namespace {

TEST(EndpointLabel, SkipsAtomsOfZeroWeight) {
  // Atom 1 has zero weight and sits at b(t_end) mu_0, where the endpoints
  // flowing to atom 0 end up, so it is their nearest atom. They still
  // belong to atom 0, because an atom of zero weight attracts no mass.
  Mixture mixture;
  mixture.dim = 2;
  mixture.atoms = {2.0, 0.0, 1.998, 0.0, -2.0, 0.0};
  mixture.weights = {0.5, 0.0, 0.5};
  FlowRunOptions options = small_run();
  options.num_samples = 2000;
  const Captured run = run_captured(options, mixture);
  EXPECT_EQ(run.tally.label_counts[1], 0u);
  EXPECT_EQ(run.tally.label_counts[0] + run.tally.label_counts[2], 2000u);
}

// Endpoints at t_end lie near b(t_end) mu_k, not mu_k: for atoms 0.1 apart
// at distance 1000 and eps = 1e-3 that offset is 1, ten times the atoms'
// separation, so labels taken from the atoms themselves sent every sample
// to atom 0. Each path (lanes, per-sample, matrix) must split the samples
// by the weights.
TEST(EndpointLabel, CloseFarAtomsSplitByWeight) {
  Mixture mixture;
  mixture.dim = 2;
  mixture.atoms = {1000.0, 0.0, 1000.1, 0.0};
  mixture.weights = {0.5, 0.5};
  for (int path = 0; path < 3; ++path) {
    SCOPED_TRACE(path);
    FlowRunOptions options = small_run();
    options.num_samples = 4000;
    options.cpu_simd = path == 0;
    options.velocity_path = path == 2 ? VelocityPath::matrix : VelocityPath::direct;
    const Captured run = run_captured(options, mixture);
    // Four binomial standard errors, sqrt(0.25 * 4000) = 31.6 each.
    EXPECT_NEAR(static_cast<double>(run.tally.label_counts[0]), 2000.0, 127.0);
    EXPECT_EQ(run.tally.label_counts[0] + run.tally.label_counts[1], 4000u);
  }
}

}  // namespace
}  // namespace fmg
