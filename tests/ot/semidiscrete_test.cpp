#include "host/ot/semidiscrete.hpp"

#include <cmath>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "host/errors.hpp"
#include "host/ot/laguerre2d.hpp"

namespace fmg {
namespace {

constexpr double infinity = std::numeric_limits<double>::infinity();

PointMatrix example_atoms() {
  PointMatrix atoms(3, 2);
  atoms << 2.4, 0.0, -1.4, 2.0, -1.4, -2.0;
  return atoms;
}

Eigen::VectorXd example_weights() {
  Eigen::VectorXd weights(3);
  weights << 0.45, 0.30, 0.25;
  return weights;
}

// Exact Laguerre potentials of the example.
Eigen::VectorXd reference_psi() {
  Eigen::VectorXd psi(3);
  psi << 0.0, -0.7875089379, -1.181375982;
  return psi;
}

SemiDiscreteOptions exact_options() {
  SemiDiscreteOptions options;
  options.route = MassRoute::exact_2d;
  options.tolerance = 1e-12;
  return options;
}

SemiDiscreteOptions monte_carlo_options(std::int64_t samples) {
  SemiDiscreteOptions options;
  options.route = MassRoute::monte_carlo_cpu;
  options.samples = samples;
  options.seed = 20260617;
  return options;
}

// Checks what every solve promises: finite masses and residuals, and psi
// finite except -inf for atoms of zero weight.
void expect_no_nan(const SemiDiscreteResult& result) {
  EXPECT_TRUE(result.masses.allFinite());
  EXPECT_TRUE(std::isfinite(result.residual));
  for (const double r : result.residual_history) EXPECT_TRUE(std::isfinite(r));
  for (Eigen::Index k = 0; k < result.psi.size(); ++k) {
    SCOPED_TRACE(::testing::Message() << "atom " << k);
    EXPECT_FALSE(std::isnan(result.psi(k)));
    EXPECT_EQ(std::isinf(result.psi(k)), result.cell_owner[k] < 0);
  }
  EXPECT_FALSE(result.message.empty());
}

std::string invalid_option_message(const SemiDiscreteOptions& options,
                                   const PointMatrix& atoms) {
  try {
    solve_semidiscrete_ot(atoms, Eigen::VectorXd::Ones(atoms.rows()), options);
  } catch (const InvalidArgument& error) {
    return error.what();
  }
  return "no InvalidArgument";
}

TEST(SemiDiscreteOt, ExactRouteMatchesReferencePsi) {
  const SemiDiscreteResult result =
      solve_semidiscrete_ot(example_atoms(), example_weights(), exact_options());
  ASSERT_EQ(result.status, OtStatus::converged) << result.message;
  for (Eigen::Index k = 0; k < 3; ++k) {
    SCOPED_TRACE(::testing::Message() << "atom " << k);
    EXPECT_NEAR(result.psi(k), reference_psi()(k), 1e-9);
  }
  ASSERT_TRUE(result.exact_residual.has_value());
  EXPECT_LT(*result.exact_residual, 1e-12);
  EXPECT_LT(result.iterations, 10);
  EXPECT_EQ(result.residual_history.size(),
            static_cast<std::size_t>(result.iterations) + 1);
  EXPECT_FALSE(result.holdout_residual.has_value());
}

TEST(SemiDiscreteOt, MonteCarloRouteWithinReportedError) {
  const SemiDiscreteResult result = solve_semidiscrete_ot(
      example_atoms(), example_weights(), monte_carlo_options(400'000));
  ASSERT_EQ(result.status, OtStatus::noise_floor) << result.message;
  EXPECT_EQ(result.psi(0), 0.0);
  for (Eigen::Index k = 1; k < 3; ++k) {
    SCOPED_TRACE(::testing::Message() << "atom " << k);
    EXPECT_GT(result.psi_standard_errors(k), 0.0);
    EXPECT_NEAR(result.psi(k), reference_psi()(k),
                4.0 * result.psi_standard_errors(k));
  }
  ASSERT_TRUE(result.exact_residual.has_value());
  ASSERT_TRUE(result.holdout_residual.has_value());
  EXPECT_LT(*result.exact_residual, 4.0 * result.residual_standard_error);
  EXPECT_LT(*result.holdout_residual, 6.0 * result.residual_standard_error);
  expect_no_nan(result);
}

TEST(SemiDiscreteOt, MonteCarloRouteIsDeterministic) {
  const SemiDiscreteResult first = solve_semidiscrete_ot(
      example_atoms(), example_weights(), monte_carlo_options(50'000));
  const SemiDiscreteResult second = solve_semidiscrete_ot(
      example_atoms(), example_weights(), monte_carlo_options(50'000));
  EXPECT_EQ(first.psi, second.psi);
  EXPECT_EQ(first.iterations, second.iterations);
}

TEST(SemiDiscreteOt, MonteCarloConvergesAtLooseTolerance) {
  SemiDiscreteOptions options = monte_carlo_options(100'000);
  options.tolerance = 0.02;
  const SemiDiscreteResult result =
      solve_semidiscrete_ot(example_atoms(), example_weights(), options);
  EXPECT_EQ(result.status, OtStatus::converged) << result.message;
  EXPECT_LE(result.residual, 0.02);
}

TEST(SemiDiscreteOt, ThreeDimensionalMonteCarloSolve) {
  PointMatrix atoms(3, 3);
  atoms << 2.4, 0.0, 0.5, -1.4, 2.0, 0.0, -1.4, -2.0, -0.5;
  const SemiDiscreteResult result = solve_semidiscrete_ot(
      atoms, example_weights(), monte_carlo_options(100'000));
  EXPECT_EQ(result.status, OtStatus::noise_floor) << result.message;
  EXPECT_FALSE(result.exact_residual.has_value());
  ASSERT_TRUE(result.holdout_residual.has_value());
  EXPECT_LT(*result.holdout_residual, 6.0 * result.residual_standard_error);
  expect_no_nan(result);
}

TEST(SemiDiscreteOt, StartsWhereVoronoiCellIsEmpty) {
  PointMatrix atoms(4, 2);
  atoms << 2.4, 0.0, -1.4, 2.0, -1.4, -2.0, 100.0, 0.0;
  Eigen::VectorXd weights(4);
  weights << 0.4, 0.25, 0.25, 0.1;
  // At psi = 0 the far atom's cell starts at x = 51, beyond every
  // representable Gaussian mass.
  ASSERT_EQ(exact_cell_measures_2d(atoms, Eigen::VectorXd::Zero(4)).masses(3),
            0.0);

  const SemiDiscreteResult result =
      solve_semidiscrete_ot(atoms, weights, exact_options());
  EXPECT_EQ(result.status, OtStatus::converged) << result.message;
  EXPECT_LT(result.start_scale, 1.0);
  EXPECT_NEAR(result.masses(3), 0.1, 1e-11);
  expect_no_nan(result);
}

TEST(SemiDiscreteOt, FarAtomWithMonteCarlo) {
  PointMatrix atoms(4, 2);
  atoms << 2.4, 0.0, -1.4, 2.0, -1.4, -2.0, 100.0, 0.0;
  Eigen::VectorXd weights(4);
  weights << 0.4, 0.25, 0.25, 0.1;
  const SemiDiscreteResult result =
      solve_semidiscrete_ot(atoms, weights, monte_carlo_options(100'000));
  EXPECT_EQ(result.status, OtStatus::noise_floor) << result.message;
  ASSERT_TRUE(result.exact_residual.has_value());
  EXPECT_LT(*result.exact_residual, 4.0 * result.residual_standard_error);
  expect_no_nan(result);
}

TEST(SemiDiscreteOt, ZeroWeightAtomIsExcluded) {
  PointMatrix atoms(4, 2);
  atoms << 2.4, 0.0, 0.5, 0.5, -1.4, 2.0, -1.4, -2.0;
  Eigen::VectorXd weights(4);
  weights << 0.45, 0.0, 0.30, 0.25;
  const SemiDiscreteResult result =
      solve_semidiscrete_ot(atoms, weights, exact_options());
  EXPECT_EQ(result.status, OtStatus::converged) << result.message;
  EXPECT_EQ(result.psi(1), -infinity);
  EXPECT_EQ(result.masses(1), 0.0);
  EXPECT_EQ(result.cell_owner[1], -1);
  EXPECT_NEAR(result.psi(2), reference_psi()(1), 1e-9);
  EXPECT_NEAR(result.psi(3), reference_psi()(2), 1e-9);
  ASSERT_EQ(result.notes.size(), 1u);
  EXPECT_NE(result.notes[0].find("atom 1 of weight 0"), std::string::npos)
      << result.notes[0];
  expect_no_nan(result);
}

TEST(SemiDiscreteOt, ZeroWeightFirstAtomMovesTheGauge) {
  PointMatrix atoms(4, 2);
  atoms << 0.5, 0.5, 2.4, 0.0, -1.4, 2.0, -1.4, -2.0;
  Eigen::VectorXd weights(4);
  weights << 0.0, 0.45, 0.30, 0.25;
  const SemiDiscreteResult result =
      solve_semidiscrete_ot(atoms, weights, exact_options());
  EXPECT_EQ(result.status, OtStatus::converged) << result.message;
  EXPECT_EQ(result.psi(0), -infinity);
  EXPECT_EQ(result.psi(1), 0.0);
  EXPECT_NEAR(result.psi(2), reference_psi()(1), 1e-9);
  expect_no_nan(result);
}

TEST(SemiDiscreteOt, DuplicateAtomsShareOneCell) {
  PointMatrix atoms(4, 2);
  atoms << 2.4, 0.0, -1.4, 2.0, -1.4, -2.0, -1.4, 2.0;
  Eigen::VectorXd weights(4);
  weights << 0.45, 0.10, 0.25, 0.20;
  const SemiDiscreteResult result =
      solve_semidiscrete_ot(atoms, weights, exact_options());
  EXPECT_EQ(result.status, OtStatus::converged) << result.message;
  EXPECT_TRUE(result.duplicates_merged);
  EXPECT_EQ(result.cell_owner[3], 1);
  EXPECT_EQ(result.psi(3), result.psi(1));
  EXPECT_NEAR(result.psi(1), reference_psi()(1), 1e-9);
  EXPECT_NEAR(result.masses(1), 0.10, 1e-11);
  EXPECT_NEAR(result.masses(3), 0.20, 1e-11);
  ASSERT_EQ(result.notes.size(), 1u);
  EXPECT_NE(result.notes[0].find("share the Laguerre cell of atom 1"),
            std::string::npos)
      << result.notes[0];
  expect_no_nan(result);
}

TEST(SemiDiscreteOt, SingleAtomConvergesAtOnce) {
  PointMatrix atoms(1, 2);
  atoms << 3.0, -1.0;
  const SemiDiscreteResult result =
      solve_semidiscrete_ot(atoms, Eigen::VectorXd::Ones(1), exact_options());
  EXPECT_EQ(result.status, OtStatus::converged);
  EXPECT_EQ(result.psi(0), 0.0);
  EXPECT_EQ(result.iterations, 0);
  EXPECT_EQ(result.masses(0), 1.0);
  expect_no_nan(result);
}

TEST(SemiDiscreteOt, SingleAtomWithMonteCarlo) {
  PointMatrix atoms(1, 4);
  atoms << 3.0, -1.0, 0.0, 2.0;
  const SemiDiscreteResult result = solve_semidiscrete_ot(
      atoms, Eigen::VectorXd::Ones(1), monte_carlo_options(1000));
  EXPECT_EQ(result.status, OtStatus::converged);
  EXPECT_EQ(result.psi(0), 0.0);
  expect_no_nan(result);
}

TEST(SemiDiscreteOt, MaxIterationsEndsWithStatus) {
  SemiDiscreteOptions options = exact_options();
  options.max_iterations = 1;
  options.tolerance = 1e-14;
  const SemiDiscreteResult result =
      solve_semidiscrete_ot(example_atoms(), example_weights(), options);
  EXPECT_EQ(result.status, OtStatus::max_iterations) << result.message;
  EXPECT_EQ(result.iterations, 1);
  expect_no_nan(result);
}

TEST(SemiDiscreteOt, UnreachableToleranceStopsAtRoundingLevel) {
  SemiDiscreteOptions options = exact_options();
  options.tolerance = 1e-30;
  const SemiDiscreteResult result =
      solve_semidiscrete_ot(example_atoms(), example_weights(), options);
  EXPECT_EQ(result.status, OtStatus::noise_floor) << result.message;
  EXPECT_LT(result.residual, 1e-12);
  expect_no_nan(result);
}

TEST(SemiDiscreteOt, TinyClusterEndsWithStatus) {
  // Atoms 1e-9 apart next to a far one: ill-conditioned but valid.
  PointMatrix atoms(3, 2);
  atoms << 0.0, 0.0, 1e-9, 0.0, 5.0, 5.0;
  const SemiDiscreteResult result = solve_semidiscrete_ot(
      atoms, Eigen::VectorXd::Ones(3), exact_options());
  EXPECT_NE(result.status, OtStatus::failed) << result.message;
  expect_no_nan(result);
}

// An atom ringed by four others 1e-3 away: its Voronoi cell is a square of
// side 1e-3, with mass near 1.6e-7.
PointMatrix ringed_atoms() {
  PointMatrix atoms(5, 2);
  atoms << 0.0, 0.0, 1e-3, 0.0, -1e-3, 0.0, 0.0, 1e-3, 0.0, -1e-3;
  return atoms;
}

TEST(SemiDiscreteOt, UnsampledCellFailsWithMessage) {
  const SemiDiscreteResult result = solve_semidiscrete_ot(
      ringed_atoms(), Eigen::VectorXd::Ones(5), monte_carlo_options(1000));
  EXPECT_EQ(result.status, OtStatus::failed);
  EXPECT_NE(result.message.find("no start gives every cell a positive mass"),
            std::string::npos)
      << result.message;
  EXPECT_NE(result.message.find("more samples"), std::string::npos)
      << result.message;
  expect_no_nan(result);
}

TEST(SemiDiscreteOt, RingedAtomConvergesExactly) {
  const SemiDiscreteResult result = solve_semidiscrete_ot(
      ringed_atoms(), Eigen::VectorXd::Ones(5), exact_options());
  EXPECT_EQ(result.status, OtStatus::converged) << result.message;
  EXPECT_NEAR(result.masses(0), 0.2, 1e-11);
  expect_no_nan(result);
}

TEST(SemiDiscreteOt, RejectsInvalidOptions) {
  const PointMatrix atoms = example_atoms();
  SemiDiscreteOptions options = exact_options();
  options.tolerance = 0.0;
  EXPECT_NE(invalid_option_message(options, atoms).find("tolerance is 0"),
            std::string::npos);
  options.tolerance = std::nan("");
  EXPECT_NE(invalid_option_message(options, atoms).find("tolerance is nan"),
            std::string::npos);
  options = exact_options();
  options.max_iterations = 0;
  EXPECT_NE(invalid_option_message(options, atoms).find("max_iterations is 0"),
            std::string::npos);
  options = monte_carlo_options(0);
  EXPECT_NE(invalid_option_message(options, atoms).find("samples is 0"),
            std::string::npos);
  options = monte_carlo_options(10);
  options.noise_floor_multiple = -1.0;
  EXPECT_NE(invalid_option_message(options, atoms)
                .find("noise_floor_multiple is -1"),
            std::string::npos);
}

TEST(SemiDiscreteOt, RejectsExactRouteOutsidePlane) {
  const PointMatrix atoms = PointMatrix::Zero(2, 3);
  const std::string message = invalid_option_message(exact_options(), atoms);
  EXPECT_NE(message.find("dimension 3"), std::string::npos) << message;
  EXPECT_NE(message.find("exact_2d"), std::string::npos) << message;
}

TEST(SemiDiscreteOt, RejectsInvalidWeights) {
  const PointMatrix atoms = example_atoms();
  Eigen::VectorXd weights = example_weights();
  weights(1) = -0.1;
  EXPECT_THROW(solve_semidiscrete_ot(atoms, weights, exact_options()),
               InvalidArgument);
  weights(1) = std::nan("");
  EXPECT_THROW(solve_semidiscrete_ot(atoms, weights, exact_options()),
               InvalidArgument);
  EXPECT_THROW(
      solve_semidiscrete_ot(atoms, Eigen::VectorXd::Zero(3), exact_options()),
      InvalidArgument);
  EXPECT_THROW(
      solve_semidiscrete_ot(atoms, Eigen::VectorXd::Ones(2), exact_options()),
      InvalidArgument);
}

TEST(SemiDiscreteOt, NormalisesWeights) {
  const SemiDiscreteResult result = solve_semidiscrete_ot(
      example_atoms(), 2.0 * example_weights(), exact_options());
  EXPECT_EQ(result.status, OtStatus::converged);
  EXPECT_NEAR(result.weights.sum(), 1.0, 1e-15);
  EXPECT_NEAR(result.psi(1), reference_psi()(1), 1e-9);
}

#if defined(FMG_WITH_CUDA)
TEST(SemiDiscreteOt, CudaRouteMatchesCpu) {
  SemiDiscreteOptions cuda_options = monte_carlo_options(20'000);
  cuda_options.route = MassRoute::monte_carlo_cuda;
  SemiDiscreteResult cuda_result;
  try {
    cuda_result =
        solve_semidiscrete_ot(example_atoms(), example_weights(), cuda_options);
  } catch (const Unavailable& error) {
    GTEST_SKIP() << error.what();
  }
  const SemiDiscreteResult cpu_result = solve_semidiscrete_ot(
      example_atoms(), example_weights(), monte_carlo_options(20'000));
  EXPECT_EQ(cuda_result.psi, cpu_result.psi);
  EXPECT_EQ(cuda_result.status, cpu_result.status);
}
#else
TEST(SemiDiscreteOt, CudaRouteUnavailableWithoutCuda) {
  SemiDiscreteOptions cuda_options = monte_carlo_options(20'000);
  cuda_options.route = MassRoute::monte_carlo_cuda;
  EXPECT_THROW(
      solve_semidiscrete_ot(example_atoms(), example_weights(), cuda_options),
      Unavailable);
}
#endif

TEST(SemiDiscreteOt, StatusNames) {
  EXPECT_STREQ(to_string(OtStatus::converged), "converged");
  EXPECT_STREQ(to_string(OtStatus::noise_floor), "noise_floor");
  EXPECT_STREQ(to_string(OtStatus::max_iterations), "max_iterations");
  EXPECT_STREQ(to_string(OtStatus::failed), "failed");
  EXPECT_STREQ(to_string(MassRoute::monte_carlo_cuda), "monte_carlo_cuda");
}

}  // namespace
}  // namespace fmg
