// The CPU backend's matrix path against its direct per-sample path on the
// same seeds: labels, statuses and counters, and endpoints to a tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "host/driver.hpp"
#include "host/io/mixture_io.hpp"
#include "tests/core/velocity_path_support.hpp"

namespace fmg {
namespace {

using testing_support::hashed_mixture;
using testing_support::PathRun;

/// Runs on the CPU backend. The direct path there is the scalar per-sample
/// code of kernels/integrators.hpp, not the SIMD lane engine, whose own exp
/// and pow round differently.
template <class Value>
PathRun<Value> run_path(const Mixture& mixture, FlowRunOptions options,
                        VelocityPath path,
                        const std::vector<double>* starts = nullptr) {
  options.cpu_simd = false;
  return testing_support::run_path<Value>(mixture, options, BackendChoice::cpu,
                                          path, starts);
}

Mixture single_atom() {
  Mixture mixture;
  mixture.dim = 3;
  mixture.atoms = {1.0, -2.0, 0.5};
  mixture.weights = {1.0};
  return mixture;
}

/// Three atoms 1000 apart, far from the origin, so <x, mu_k> is large.
Mixture far_atoms() {
  Mixture mixture;
  mixture.dim = 2;
  mixture.atoms = {1000.0, 1000.0, 2000.0, 1000.0, 1000.0, 2000.0};
  mixture.weights = {0.5, 0.25, 0.25};
  return mixture;
}

/// Atom 1 has zero weight and lies where atom 0's samples end; atom 3 has
/// zero weight and lies where no sample goes.
Mixture zero_weight_atoms() {
  Mixture mixture;
  mixture.dim = 2;
  mixture.atoms = {2.0, 0.0, 1.998, 0.0, -2.0, 0.0, 0.0, 5.0};
  mixture.weights = {0.5, 0.0, 0.5, 0.0};
  return mixture;
}

struct MixtureCase {
  std::string name;
  Mixture mixture;
  std::uint64_t samples;
};

std::vector<MixtureCase> mixture_cases() {
  return {{"single atom", single_atom(), 500},
          {"built-in example", builtin_example(), 1000},
          {"K 500, d 64", hashed_mixture(500, 64), 300},
          {"atoms 1000 apart", far_atoms(), 500},
          {"zero weights", zero_weight_atoms(), 1000}};
}

/// Largest difference of corresponding endpoint coordinates, relative to
/// max(1, the largest atom coordinate).
template <class Value>
double max_endpoint_difference(const PathRun<Value>& a,
                               const PathRun<Value>& b,
                               const Mixture& mixture) {
  double scale = 1.0;
  for (const double v : mixture.atoms) scale = std::max(scale, std::fabs(v));
  double worst = 0.0;
  for (std::size_t i = 0; i < a.endpoints.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(a.endpoints[i]) -
                                      static_cast<double>(b.endpoints[i])));
  }
  return worst / scale;
}

template <class Value>
std::size_t label_mismatches(const PathRun<Value>& a, const PathRun<Value>& b) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < a.labels.size(); ++i) {
    count += a.labels[i] != b.labels[i] ? 1 : 0;
  }
  return count;
}

template <class Value>
FlowRunOptions fixed_step_options(Method method) {
  FlowRunOptions options;
  options.method = method;
  // Unused by fixed steps, but validated against the precision.
  options.rtol = 1e-5;
  options.atol = 1e-6;
  options.steps = 40;
  options.threads = 2;
  return options;
}

template <class Value>
FlowRunOptions dopri5_options() {
  FlowRunOptions options;
  options.method = Method::dopri5;
  const bool single = std::is_same_v<Value, float>;
  options.rtol = single ? 1e-5 : 1e-8;
  options.atol = single ? 1e-6 : 1e-10;
  options.threads = 2;
  return options;
}

/// Fixed steps share the time grid, so counters must agree exactly; only
/// the velocities' rounding separates the endpoints.
template <class Value>
void expect_fixed_step_paths_agree(Method method, double tolerance) {
  for (const MixtureCase& c : mixture_cases()) {
    SCOPED_TRACE(c.name);
    FlowRunOptions options = fixed_step_options<Value>(method);
    options.num_samples = c.samples;
    const PathRun<Value> direct =
        run_path<Value>(c.mixture, options, VelocityPath::direct);
    const PathRun<Value> matrix =
        run_path<Value>(c.mixture, options, VelocityPath::matrix);

    EXPECT_EQ(direct.path, "direct");
    EXPECT_EQ(matrix.path, "matrix");
    EXPECT_EQ(label_mismatches(direct, matrix), 0u);
    EXPECT_EQ(matrix.tally.label_counts, direct.tally.label_counts);
    EXPECT_EQ(matrix.tally.status_counts, direct.tally.status_counts);
    EXPECT_EQ(matrix.tally.accepted_sum, direct.tally.accepted_sum);
    EXPECT_EQ(matrix.tally.evaluations_sum, direct.tally.evaluations_sum);
    EXPECT_LE(max_endpoint_difference(direct, matrix, c.mixture), tolerance);
  }
}

// Tolerances are relative to max(1, largest atom coordinate). Fixed steps
// share the time grid, so the endpoints differ only by the rounding of the
// velocities, which the flow does not amplify: near t_end each sample's
// responsibilities sit on one atom, far from any logit tie. Measured: at
// most 3e-15 in double and 2.2e-6 in float over these mixtures.
TEST(MatrixPath, EulerMatchesDirectInDouble) {
  expect_fixed_step_paths_agree<double>(Method::euler, 1e-12);
}

TEST(MatrixPath, Rk4MatchesDirectInDouble) {
  expect_fixed_step_paths_agree<double>(Method::rk4, 1e-12);
}

TEST(MatrixPath, HeunMatchesDirectInFloat) {
  expect_fixed_step_paths_agree<float>(Method::heun, 1e-4);
}

TEST(MatrixPath, Rk4MatchesDirectInFloat) {
  expect_fixed_step_paths_agree<float>(Method::rk4, 1e-4);
}

/// Under Dormand-Prince a rounding difference in the error estimate can
/// flip a step's acceptance, after which the two step sequences differ and
/// the endpoints agree only to about the integration tolerance. Statuses
/// and labels must still agree, and the total work nearly so.
template <class Value>
void expect_dopri5_paths_agree(double tolerance, double work_tolerance) {
  for (const MixtureCase& c : mixture_cases()) {
    SCOPED_TRACE(c.name);
    FlowRunOptions options = dopri5_options<Value>();
    options.num_samples = c.samples;
    const PathRun<Value> direct =
        run_path<Value>(c.mixture, options, VelocityPath::direct);
    const PathRun<Value> matrix =
        run_path<Value>(c.mixture, options, VelocityPath::matrix);

    EXPECT_EQ(label_mismatches(direct, matrix), 0u);
    EXPECT_EQ(matrix.tally.status_counts, direct.tally.status_counts);
    const double work_ratio =
        static_cast<double>(matrix.tally.evaluations_sum) /
        static_cast<double>(direct.tally.evaluations_sum);
    EXPECT_NEAR(work_ratio, 1.0, work_tolerance);
    EXPECT_LE(max_endpoint_difference(direct, matrix, c.mixture), tolerance);
  }
}

// Measured: endpoints within 2.3e-12 in double (rtol 1e-8) with identical
// step counts, and within 2.5e-5 in float (rtol 1e-5), where the matrix
// path's noisier velocities near t_end cost up to 2% more evaluations.
TEST(MatrixPath, Dopri5MatchesDirectInDouble) {
  expect_dopri5_paths_agree<double>(1e-6, 0.01);
}

TEST(MatrixPath, Dopri5MatchesDirectInFloat) {
  expect_dopri5_paths_agree<float>(2e-4, 0.05);
}

TEST(MatrixPath, Dopri5CountersEqualInDouble) {
  // On the built-in example no accept or reject decision is close enough
  // to flip, so the counters and histograms agree exactly.
  FlowRunOptions options = dopri5_options<double>();
  options.num_samples = 2000;
  const Mixture mixture = builtin_example();
  const PathRun<double> direct =
      run_path<double>(mixture, options, VelocityPath::direct);
  const PathRun<double> matrix =
      run_path<double>(mixture, options, VelocityPath::matrix);
  EXPECT_EQ(matrix.tally.accepted_sum, direct.tally.accepted_sum);
  EXPECT_EQ(matrix.tally.rejected_sum, direct.tally.rejected_sum);
  EXPECT_EQ(matrix.tally.evaluations_sum, direct.tally.evaluations_sum);
  EXPECT_EQ(matrix.tally.step_histogram, direct.tally.step_histogram);
}

TEST(MatrixPath, MaxStepsStatusMatchesDirect) {
  FlowRunOptions options = dopri5_options<double>();
  options.num_samples = 300;
  options.max_steps = 5;
  const Mixture mixture = builtin_example();
  const PathRun<double> direct =
      run_path<double>(mixture, options, VelocityPath::direct);
  const PathRun<double> matrix =
      run_path<double>(mixture, options, VelocityPath::matrix);
  EXPECT_GT(direct.tally.status_counts[1], 0u);
  EXPECT_EQ(matrix.tally.status_counts, direct.tally.status_counts);
  EXPECT_EQ(matrix.labels, direct.labels);
}

TEST(MatrixPath, NonFiniteStartsFailAsOnDirect) {
  // Rows 1 and 3 start at NaN and infinity, so their first velocity is not
  // finite; the other rows must finish normally around them.
  const double nan = std::nan("");
  const double inf = HUGE_VAL;
  const std::vector<double> starts = {0.5, -0.2, nan, 0.0, 1.0, 1.0,
                                      inf, 0.0, -1.0, 0.3};
  const Mixture mixture = builtin_example();
  for (const Method method : {Method::rk4, Method::dopri5}) {
    SCOPED_TRACE(static_cast<int>(method));
    FlowRunOptions options = dopri5_options<double>();
    options.method = method;
    options.num_samples = 5;
    const PathRun<double> direct =
        run_path<double>(mixture, options, VelocityPath::direct, &starts);
    const PathRun<double> matrix =
        run_path<double>(mixture, options, VelocityPath::matrix, &starts);
    EXPECT_EQ(direct.tally.status_counts[2], 2u);
    EXPECT_EQ(matrix.tally.status_counts, direct.tally.status_counts);
    EXPECT_EQ(matrix.labels, direct.labels);
    EXPECT_EQ(matrix.tally.evaluations_sum, direct.tally.evaluations_sum);
  }
}

TEST(MatrixPath, IdenticalAcrossThreadCounts) {
  // Blocks have a fixed size, so a sample's block and its arithmetic do not
  // depend on the thread count.
  FlowRunOptions options = dopri5_options<double>();
  options.num_samples = 300;
  options.rtol = 1e-6;
  options.atol = 1e-9;
  options.threads = 1;
  const Mixture mixture = hashed_mixture(50, 16);
  const PathRun<double> one =
      run_path<double>(mixture, options, VelocityPath::matrix);
  options.threads = 3;
  const PathRun<double> three =
      run_path<double>(mixture, options, VelocityPath::matrix);
  EXPECT_EQ(one.endpoints, three.endpoints);
  EXPECT_EQ(one.labels, three.labels);
}

TEST(MatrixPath, AutomaticChoiceFollowsThreshold) {
  EXPECT_FALSE(cpu_uses_matrix_path(VelocityPath::automatic, 3, 2));
  EXPECT_FALSE(cpu_uses_matrix_path(VelocityPath::automatic, 10000, 3));
  EXPECT_FALSE(cpu_uses_matrix_path(VelocityPath::automatic, 1, 9));
  // d <= 8 runs on the lane engine, at every K.
  EXPECT_FALSE(cpu_uses_matrix_path(VelocityPath::automatic, 10000, 8));
  EXPECT_TRUE(cpu_uses_matrix_path(VelocityPath::automatic, 4, 9));
  EXPECT_TRUE(cpu_uses_matrix_path(VelocityPath::automatic, 500, 64));
  EXPECT_TRUE(cpu_uses_matrix_path(VelocityPath::matrix, 1, 1));
  EXPECT_FALSE(cpu_uses_matrix_path(VelocityPath::direct, 10000, 1024));
  EXPECT_FALSE(cuda_uses_matrix_path(VelocityPath::automatic, 10000, 1024));
  EXPECT_TRUE(cuda_uses_matrix_path(VelocityPath::matrix, 1, 1));
}

}  // namespace
}  // namespace fmg
