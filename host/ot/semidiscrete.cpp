#include "host/ot/semidiscrete.hpp"
#include "kernels/nvtx.hpp"
#include "host/format.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <utility>

#include <Eigen/Cholesky>

#include "host/errors.hpp"
#include "host/ot/checks.hpp"
#include "host/ot/laguerre2d.hpp"
#include "host/ot/monte_carlo.hpp"

namespace fmg {
namespace {

constexpr double infinity = std::numeric_limits<double>::infinity();

// The exact masses are sums of a few rounded Owen's T values per cell, so a
// residual below this is at their rounding level.
constexpr double exact_rounding_level = 1e-12;

// Step halvings before a line search gives up. A Monte Carlo evaluation
// costs a pass over all samples, and below 2^-16 of a Newton step the fixed
// sample set rarely changes by more than a few points.
constexpr int max_halvings_exact = 40;
constexpr int max_halvings_monte_carlo = 16;

// A start is accepted at once when every cell has at least this fraction of
// its weight.
constexpr double good_start_ratio = 0.5;

void check_weights(const Eigen::VectorXd& weights, Eigen::Index num_atoms) {
  if (weights.size() != num_atoms) {
    std::ostringstream message;
    message << "weights has " << weights.size()
            << " entries; expected one per atom (" << num_atoms << ")";
    throw InvalidArgument(message.str());
  }
  for (Eigen::Index k = 0; k < weights.size(); ++k) {
    if (!std::isfinite(weights(k)) || weights(k) < 0.0) {
      std::ostringstream message;
      message << "weight " << k << " is " << weights(k)
              << "; expected a finite value >= 0";
      throw InvalidArgument(message.str());
    }
  }
  const double total = weights.sum();
  if (!(total > 0.0) || !std::isfinite(total)) {
    std::ostringstream message;
    message << "the weights sum to " << total
            << "; expected a finite positive sum";
    throw InvalidArgument(message.str());
  }
}

// Lists indices as "3, 7 and 9", or the first ten and a count.
std::string list_atoms(const std::vector<Eigen::Index>& atoms) {
  std::ostringstream stream;
  const std::size_t listed = std::min<std::size_t>(atoms.size(), 10);
  for (std::size_t i = 0; i < listed; ++i) {
    if (i > 0) stream << (i + 1 == atoms.size() ? " and " : ", ");
    stream << atoms[i];
  }
  if (listed < atoms.size()) {
    stream << " and " << atoms.size() - listed << " more";
  }
  return stream.str();
}

/// The problem on the distinct atoms of positive weight.
struct ReducedProblem {
  Eigen::VectorXd weights;            // all K, normalised
  std::vector<int> owner;             // K; representative or -1
  std::vector<Eigen::Index> active;   // representatives, increasing
  Eigen::VectorXd targets;            // merged weight of each active atom
  std::vector<std::string> notes;
  bool duplicates_merged = false;
};

ReducedProblem reduce_problem(const PointMatrix& atoms,
                              const Eigen::VectorXd& weights) {
  ReducedProblem problem;
  const Eigen::Index num_atoms = atoms.rows();
  problem.weights = weights / weights.sum();
  problem.owner.assign(static_cast<std::size_t>(num_atoms), -1);

  std::map<std::vector<double>, Eigen::Index> first_at_point;
  std::map<Eigen::Index, std::vector<Eigen::Index>> groups;
  std::vector<Eigen::Index> zero_weight;
  for (Eigen::Index k = 0; k < num_atoms; ++k) {
    if (!(problem.weights(k) > 0.0)) {
      zero_weight.push_back(k);
      continue;
    }
    std::vector<double> point(atoms.row(k).data(),
                              atoms.row(k).data() + atoms.cols());
    const auto inserted = first_at_point.emplace(std::move(point), k);
    const Eigen::Index owner = inserted.first->second;
    problem.owner[static_cast<std::size_t>(k)] = static_cast<int>(owner);
    groups[owner].push_back(k);
  }

  problem.targets.resize(static_cast<Eigen::Index>(groups.size()));
  for (const auto& [owner, members] : groups) {
    double target = 0.0;
    for (const Eigen::Index k : members) target += problem.weights(k);
    problem.targets(static_cast<Eigen::Index>(problem.active.size())) = target;
    problem.active.push_back(owner);
    if (members.size() > 1) {
      problem.duplicates_merged = true;
      problem.notes.push_back(
          "atoms " + list_atoms(members) +
          " are at the same point and share the Laguerre cell of atom " +
          std::to_string(owner) + "; their weights are merged into " +
          format_number(target));
    }
  }
  if (!zero_weight.empty()) {
    problem.notes.push_back(
        (zero_weight.size() == 1 ? "atom " : "atoms ") +
        list_atoms(zero_weight) +
        " of weight 0 get no cell and psi = -inf");
  }
  return problem;
}

/// Masses and Hessian of the active cells at one psi.
struct Evaluation {
  Eigen::VectorXd potentials;  // active atoms, the first is 0
  CellMeasures measures;       // all K atoms
  Eigen::VectorXd masses;      // active atoms
  Eigen::VectorXd residual;    // masses - targets
  double max_residual = infinity;
  double norm = infinity;
  double min_mass = 0.0;
  double max_standard_error = 0.0;
  bool finite = false;
};

class Evaluator {
 public:
  Evaluator(const PointMatrix& atoms, const ReducedProblem& problem,
            const SemiDiscreteOptions& options)
      : atoms_(atoms), problem_(problem), options_(options) {
    if (options_.route != MassRoute::exact_2d) {
      band_width_ = default_band_width(atoms_, full_psi(zero_potentials()),
                                       options_.samples);
    }
  }

  Eigen::VectorXd zero_potentials() const {
    return Eigen::VectorXd::Zero(
        static_cast<Eigen::Index>(problem_.active.size()));
  }

  /// psi for all K atoms: -inf off the active set.
  Eigen::VectorXd full_psi(const Eigen::VectorXd& potentials) const {
    Eigen::VectorXd psi = Eigen::VectorXd::Constant(atoms_.rows(), -infinity);
    for (std::size_t a = 0; a < problem_.active.size(); ++a) {
      psi(problem_.active[a]) = potentials(static_cast<Eigen::Index>(a));
    }
    return psi;
  }

  CellMeasures measure(const Eigen::VectorXd& psi,
                       std::uint64_t first_index) {
    ++evaluations_;
    if (options_.route == MassRoute::exact_2d) {
      return exact_cell_measures_2d(atoms_, psi);
    }
    MonteCarloOptions mc;
    mc.samples = options_.samples;
    mc.seed = options_.seed;
    mc.first_index = first_index;
    mc.band_width = band_width_;
    mc.backend = options_.route == MassRoute::monte_carlo_cuda
                     ? MonteCarloBackend::cuda
                     : MonteCarloBackend::cpu;
    return monte_carlo_cell_measures(atoms_, psi, mc);
  }

  Evaluation evaluate(const Eigen::VectorXd& potentials,
                      std::uint64_t first_index = 0) {
    Evaluation e;
    e.potentials = potentials;
    // A step can overflow; such a trial is rejected without evaluating it.
    if (!potentials.allFinite()) return e;
    e.measures = measure(full_psi(potentials), first_index);
    const Eigen::Index num_active = potentials.size();
    e.masses.resize(num_active);
    double max_standard_error = 0.0;
    for (Eigen::Index a = 0; a < num_active; ++a) {
      const Eigen::Index k = problem_.active[static_cast<std::size_t>(a)];
      e.masses(a) = e.measures.masses(k);
      max_standard_error =
          std::max(max_standard_error, e.measures.standard_errors(k));
    }
    e.residual = e.masses - problem_.targets;
    e.finite = e.residual.allFinite() && e.measures.hessian.allFinite();
    if (e.finite) {
      e.max_residual = e.residual.cwiseAbs().maxCoeff();
      e.norm = e.residual.norm();
      e.min_mass = e.masses.minCoeff();
    }
    e.max_standard_error = max_standard_error;
    return e;
  }

  int evaluations() const { return evaluations_; }

 private:
  const PointMatrix& atoms_;
  const ReducedProblem& problem_;
  const SemiDiscreteOptions& options_;
  double band_width_ = 0.0;
  int evaluations_ = 0;
};

/// Hessian of the active cells without the first (whose psi is fixed).
Eigen::MatrixXd reduced_hessian(const Evaluation& e,
                                const ReducedProblem& problem) {
  const Eigen::Index n = static_cast<Eigen::Index>(problem.active.size()) - 1;
  Eigen::MatrixXd reduced(n, n);
  for (Eigen::Index i = 0; i < n; ++i) {
    for (Eigen::Index j = 0; j < n; ++j) {
      reduced(i, j) = e.measures.hessian(
          problem.active[static_cast<std::size_t>(i + 1)],
          problem.active[static_cast<std::size_t>(j + 1)]);
    }
  }
  return reduced;
}

/// Solves H_r x = rhs. H_r is a principal minor of a weighted graph
/// Laplacian, so it is positive definite while the cells have mass and are
/// connected. A sampled Hessian can miss a facet. A small ridge then keeps
/// the solve finite, and the line search shortens the step.
Eigen::VectorXd solve_newton_system(const Eigen::MatrixXd& hessian,
                                    const Eigen::VectorXd& rhs) {
  Eigen::LDLT<Eigen::MatrixXd> ldlt(hessian);
  if (ldlt.info() == Eigen::Success && ldlt.isPositive()) {
    Eigen::VectorXd step = ldlt.solve(rhs);
    if (step.allFinite()) return step;
  }
  const double diagonal_scale =
      std::max(hessian.diagonal().cwiseAbs().maxCoeff(), 1e-300);
  Eigen::MatrixXd ridged = hessian;
  ridged.diagonal().array() += 1e-8 * diagonal_scale;
  for (Eigen::Index i = 0; i < ridged.rows(); ++i) {
    if (!(ridged(i, i) > 1e-8 * diagonal_scale)) {
      ridged(i, i) = diagonal_scale;
    }
  }
  const Eigen::VectorXd step = Eigen::LDLT<Eigen::MatrixXd>(ridged).solve(rhs);
  if (step.allFinite()) return step;
  return rhs / diagonal_scale;
}

/// Start potentials (1 - s) (|mu_a|^2 - |mu_0|^2) / 2 for the active atoms.
Eigen::VectorXd scaled_voronoi_start(const PointMatrix& atoms,
                                     const ReducedProblem& problem,
                                     double scale) {
  const Eigen::Index n = static_cast<Eigen::Index>(problem.active.size());
  Eigen::VectorXd potentials(n);
  const double base = atoms.row(problem.active[0]).squaredNorm();
  for (Eigen::Index a = 0; a < n; ++a) {
    const double norm2 =
        atoms.row(problem.active[static_cast<std::size_t>(a)]).squaredNorm();
    potentials(a) = 0.5 * (1.0 - scale) * (norm2 - base);
  }
  return potentials;
}

struct Start {
  Evaluation evaluation;
  double scale = 1.0;
  double ratio = 0.0;  // smallest mass / weight
};

Start choose_start(const PointMatrix& atoms, const ReducedProblem& problem,
                   Evaluator& evaluator) {
  double max_norm = 0.0;
  for (const Eigen::Index k : problem.active) {
    max_norm = std::max(max_norm, atoms.row(k).norm());
  }
  const double min_scale = 0.5 * std::min(1.0, 1.0 / max_norm);

  Start best;
  best.ratio = -infinity;
  for (double scale = 1.0;; scale *= 0.5) {
    Evaluation e =
        evaluator.evaluate(scaled_voronoi_start(atoms, problem, scale));
    const double ratio =
        e.finite ? (e.masses.array() / problem.targets.array()).minCoeff()
                 : -1.0;
    if (ratio > best.ratio) {
      best.evaluation = std::move(e);
      best.scale = scale;
      best.ratio = ratio;
    }
    if (ratio >= good_start_ratio || scale <= min_scale) break;
  }
  return best;
}

/// Standard errors of the potentials: Cov(psi) = H_r^-1 C H_r^-1, with C
/// the multinomial covariance (diag(m) - m m^T) / N of the sampled masses.
Eigen::VectorXd potential_standard_errors(const Evaluation& e,
                                          const ReducedProblem& problem,
                                          std::int64_t samples) {
  const Eigen::Index n = e.potentials.size();
  Eigen::VectorXd errors = Eigen::VectorXd::Zero(n);
  if (n < 2) return errors;
  const Eigen::VectorXd m = e.masses.tail(n - 1);
  Eigen::MatrixXd covariance = -m * m.transpose();
  covariance.diagonal() += m;
  covariance /= static_cast<double>(samples);
  const Eigen::MatrixXd hessian = reduced_hessian(e, problem);
  Eigen::LDLT<Eigen::MatrixXd> ldlt(hessian);
  if (ldlt.info() != Eigen::Success || !ldlt.isPositive()) {
    errors.tail(n - 1).setConstant(infinity);
    return errors;
  }
  const Eigen::MatrixXd half = ldlt.solve(covariance);
  const Eigen::MatrixXd propagated = ldlt.solve(half.transpose());
  for (Eigen::Index i = 0; i < n - 1; ++i) {
    const double variance = propagated(i, i);
    errors(i + 1) = variance >= 0.0 && std::isfinite(variance)
                        ? std::sqrt(variance)
                        : infinity;
  }
  return errors;
}

/// Sets the status and message of `result` and returns true when the solve
/// ends before another Newton step.
bool stop_before_step(const Evaluation& current,
                      const SemiDiscreteOptions& options,
                      SemiDiscreteResult& result) {
  const bool monte_carlo = options.route != MassRoute::exact_2d;
  const std::string steps =
      " after " + std::to_string(result.iterations) + " Newton steps";
  std::ostringstream message;
  if (current.max_residual <= options.tolerance) {
    result.status = OtStatus::converged;
    message << "converged" << steps << ": max |m_k - w_k| = "
            << format_number(current.max_residual) << " <= tolerance "
            << format_number(options.tolerance);
  } else if (monte_carlo &&
             current.max_residual <=
                 options.noise_floor_multiple * current.max_standard_error) {
    result.status = OtStatus::noise_floor;
    message << "stopped at the Monte Carlo noise floor" << steps
            << ": max |m_k - w_k| = " << format_number(current.max_residual)
            << " <= " << options.noise_floor_multiple
            << " x the mass standard error "
            << format_number(current.max_standard_error) << " of "
            << options.samples << " samples; tolerance "
            << format_number(options.tolerance) << " needs more samples";
  } else if (result.iterations >= options.max_iterations) {
    result.status = OtStatus::max_iterations;
    message << "reached max_iterations" << steps << ": max |m_k - w_k| = "
            << format_number(current.max_residual) << " > tolerance "
            << format_number(options.tolerance);
  } else {
    return false;
  }
  result.message = message.str();
  return true;
}

/// Sets the status and message of `result` when no damped step was found:
/// noise_floor when the residual is already at the precision of the masses,
/// failed otherwise.
void stop_without_step(const Evaluation& current,
                       const SemiDiscreteOptions& options,
                       SemiDiscreteResult& result) {
  const bool monte_carlo = options.route != MassRoute::exact_2d;
  const bool at_floor =
      monte_carlo ? current.max_residual <= 3.0 * current.max_standard_error
                  : current.max_residual <= exact_rounding_level;
  const int max_halvings =
      monte_carlo ? max_halvings_monte_carlo : max_halvings_exact;
  std::ostringstream message;
  if (at_floor) {
    result.status = OtStatus::noise_floor;
    message << "stopped at the "
            << (monte_carlo ? "Monte Carlo noise floor"
                            : "rounding level of the exact masses");
  } else {
    result.status = OtStatus::failed;
    message << "failed";
  }
  message << " after " << result.iterations
          << " Newton steps: no step halved up to " << max_halvings
          << " times lowers max |m_k - w_k| = "
          << format_number(current.max_residual);
  result.message = message.str();
}

/// Takes one damped Newton step from `current`: solves H d = w - m on the
/// free potentials, then halves d until every mass stays above mass_floor
/// and |m - w|_2 falls by the factor 1 - tau / 2. Returns false, leaving
/// `current` unchanged, when no halving is accepted.
bool damped_newton_step(const ReducedProblem& problem,
                        const SemiDiscreteOptions& options, double mass_floor,
                        Evaluator& evaluator, Evaluation& current) {
  const Eigen::Index n = current.potentials.size();
  Eigen::VectorXd step = Eigen::VectorXd::Zero(n);
  step.tail(n - 1) = solve_newton_system(reduced_hessian(current, problem),
                                         -current.residual.tail(n - 1));
  const int max_halvings = options.route == MassRoute::exact_2d
                               ? max_halvings_exact
                               : max_halvings_monte_carlo;
  double tau = 1.0;
  for (int halving = 0; halving <= max_halvings; ++halving, tau *= 0.5) {
    Evaluation trial = evaluator.evaluate(current.potentials + tau * step);
    if (trial.finite && trial.min_mass >= mass_floor &&
        trial.norm <= (1.0 - 0.5 * tau) * current.norm) {
      current = std::move(trial);
      return true;
    }
  }
  return false;
}

double max_abs_difference(const Eigen::VectorXd& masses,
                          const ReducedProblem& problem) {
  double residual = 0.0;
  for (std::size_t a = 0; a < problem.active.size(); ++a) {
    residual = std::max(
        residual, std::fabs(masses(problem.active[a]) -
                            problem.targets(static_cast<Eigen::Index>(a))));
  }
  return residual;
}

/// Fills the per-atom outputs of `result` from the final evaluation.
void report_solution(const PointMatrix& atoms, const ReducedProblem& problem,
                     const SemiDiscreteOptions& options, const Evaluation& e,
                     Evaluator& evaluator, SemiDiscreteResult& result) {
  const Eigen::Index num_atoms = atoms.rows();
  const bool monte_carlo = options.route != MassRoute::exact_2d;
  const Eigen::VectorXd psi_errors =
      monte_carlo && e.finite
          ? potential_standard_errors(e, problem, options.samples)
          : Eigen::VectorXd::Zero(e.potentials.size());

  result.psi = Eigen::VectorXd::Constant(num_atoms, -infinity);
  result.psi_standard_errors = Eigen::VectorXd::Zero(num_atoms);
  result.masses = Eigen::VectorXd::Zero(num_atoms);
  result.mass_standard_errors = Eigen::VectorXd::Zero(num_atoms);
  std::map<Eigen::Index, Eigen::Index> active_index;
  for (std::size_t a = 0; a < problem.active.size(); ++a) {
    active_index[problem.active[a]] = static_cast<Eigen::Index>(a);
  }
  for (Eigen::Index k = 0; k < num_atoms; ++k) {
    const int owner = problem.owner[static_cast<std::size_t>(k)];
    if (owner < 0) continue;
    const Eigen::Index a = active_index.at(owner);
    const double share = problem.weights(k) / problem.targets(a);
    result.psi(k) = e.potentials(a);
    result.psi_standard_errors(k) = psi_errors(a);
    result.masses(k) = share * e.masses(a);
    result.mass_standard_errors(k) =
        share * e.measures.standard_errors(owner);
  }
  result.residual = e.max_residual;
  result.residual_standard_error = monte_carlo ? e.max_standard_error : 0.0;

  const Eigen::VectorXd psi = evaluator.full_psi(e.potentials);
  if (atoms.cols() == 2) {
    result.exact_residual =
        monte_carlo
            ? max_abs_difference(exact_cell_measures_2d(atoms, psi).masses,
                                 problem)
            : e.max_residual;
  }
  if (monte_carlo) {
    const CellMeasures holdout = evaluator.measure(
        psi, static_cast<std::uint64_t>(options.samples));
    result.holdout_residual = max_abs_difference(holdout.masses, problem);
  }
}

}  // namespace

const char* to_string(OtStatus status) {
  switch (status) {
    case OtStatus::converged: return "converged";
    case OtStatus::noise_floor: return "noise_floor";
    case OtStatus::max_iterations: return "max_iterations";
    case OtStatus::failed: return "failed";
  }
  return "failed";
}

const char* to_string(MassRoute route) {
  switch (route) {
    case MassRoute::exact_2d: return "exact_2d";
    case MassRoute::monte_carlo_cpu: return "monte_carlo_cpu";
    case MassRoute::monte_carlo_cuda: return "monte_carlo_cuda";
  }
  return "exact_2d";
}

void validate_semidiscrete_options(const SemiDiscreteOptions& options,
                                   Eigen::Index dim) {
  std::ostringstream message;
  if (!(options.tolerance > 0.0) || !std::isfinite(options.tolerance)) {
    message << "tolerance is " << options.tolerance
            << "; expected a finite value > 0 (a bound on max |m_k - w_k|)";
  } else if (options.max_iterations < 1) {
    message << "max_iterations is " << options.max_iterations
            << "; expected >= 1";
  } else if (options.samples < 1) {
    message << "samples is " << options.samples << "; expected >= 1";
  } else if (!(options.noise_floor_multiple > 0.0) ||
             !std::isfinite(options.noise_floor_multiple)) {
    message << "noise_floor_multiple is " << options.noise_floor_multiple
            << "; expected a finite value > 0";
  } else if (options.route == MassRoute::exact_2d && dim != 2) {
    message << "route exact_2d needs atoms of dimension 2, but the atoms "
               "have dimension "
            << dim << "; use monte_carlo_cpu or monte_carlo_cuda";
  } else {
    return;
  }
  throw InvalidArgument(message.str());
}

SemiDiscreteResult solve_semidiscrete_ot(const PointMatrix& atoms,
                                         const Eigen::VectorXd& weights,
                                         const SemiDiscreteOptions& options) {
  detail::check_atoms(atoms);
  check_weights(weights, atoms.rows());
  validate_semidiscrete_options(options, atoms.cols());

  const ReducedProblem problem = reduce_problem(atoms, weights);
  SemiDiscreteResult result;
  result.weights = problem.weights;
  result.cell_owner = problem.owner;
  result.duplicates_merged = problem.duplicates_merged;
  result.notes = problem.notes;
  Evaluator evaluator(atoms, problem, options);

  if (problem.active.size() == 1) {
    Evaluation e = evaluator.evaluate(evaluator.zero_potentials());
    // One cell covers the whole space; its sampled or exact mass is 1 up to
    // the clip square's 1e-300.
    e.masses.setOnes();
    e.residual.setZero();
    e.max_residual = 0.0;
    e.norm = 0.0;
    result.status = OtStatus::converged;
    result.message =
        "converged: one distinct atom of positive weight, whose cell is the "
        "whole space, so psi = 0";
    result.residual_history.push_back(0.0);
    report_solution(atoms, problem, options, e, evaluator, result);
    result.evaluations = evaluator.evaluations();
    return result;
  }

  Start start = choose_start(atoms, problem, evaluator);
  result.start_scale = start.scale;
  Evaluation current = std::move(start.evaluation);
  if (!(start.ratio > 0.0)) {
    std::ostringstream message;
    message << "failed: no start gives every cell a positive mass (smallest "
               "mass / weight "
            << format_number(std::max(0.0, start.ratio))
            << " down to start scale " << format_number(start.scale) << ")";
    if (options.route != MassRoute::exact_2d) {
      message << "; more samples than " << options.samples
              << " may resolve the smallest cells";
    }
    result.status = OtStatus::failed;
    result.message = message.str();
    result.residual_history.push_back(current.max_residual);
    report_solution(atoms, problem, options, current, evaluator, result);
    result.evaluations = evaluator.evaluations();
    return result;
  }

  const double mass_floor =
      0.5 * std::min(problem.targets.minCoeff(), current.min_mass);
  for (;;) {
    const NvtxRange iteration_range("fmg::ot Newton iteration");
    result.residual_history.push_back(current.max_residual);
    if (stop_before_step(current, options, result)) break;
    if (!damped_newton_step(problem, options, mass_floor, evaluator, current)) {
      stop_without_step(current, options, result);
      break;
    }
    ++result.iterations;
  }
  report_solution(atoms, problem, options, current, evaluator, result);
  result.evaluations = evaluator.evaluations();
  return result;
}

}  // namespace fmg
