#include "host/cli/sample_warnings.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "host/cli/common.hpp"
#include "host/driver.hpp"
#include "host/names.hpp"
#include "kernels/schedule.hpp"

namespace fmg::cli {
namespace {

// The atoms' coordinates in the run's precision: rounded to float in a
// float run.
std::vector<double> atoms_in_precision(const Mixture& mixture, Precision precision) {
  std::vector<double> atoms = mixture.atoms;
  if (precision == Precision::float32) {
    for (double& coordinate : atoms) {
      coordinate = static_cast<double>(static_cast<float>(coordinate));
    }
  }
  return atoms;
}

std::vector<int> positive_weight_atoms(const Mixture& mixture) {
  std::vector<int> indices;
  for (int k = 0; k < mixture.num_atoms(); ++k) {
    if (mixture.weights[k] > 0.0) indices.push_back(k);
  }
  return indices;
}

/// Returns advice on the options whose change may avoid the failures
/// counted in `steps`.
std::string failure_remedies(const FlowRunOptions& options,
                             const StepStatistics& steps) {
  std::vector<std::string> remedies;
  if (steps.max_steps_reached > 0) {
    remedies.push_back("raise --max-steps (now " + std::to_string(options.max_steps) +
                       ") or loosen --rtol and --atol");
  }
  if (steps.non_finite_state > 0) {
    if (options.method == Method::dopri5) {
      remedies.push_back("raise --eps (now " + format_significant(options.eps) + ")");
    } else {
      remedies.push_back("raise --steps (now " + std::to_string(options.steps) +
                         ") or use --method dopri5");
    }
    if (options.precision == Precision::float32) {
      remedies.push_back("use --precision double");
    }
  }
  std::string text;
  for (std::size_t i = 0; i < remedies.size(); ++i) {
    text += (i == 0 ? "" : ", or ") + remedies[i];
  }
  return text;
}

}  // namespace

std::vector<std::string> coinciding_atom_warnings(const Mixture& mixture,
                                                  Precision precision) {
  const int d = mixture.dim;
  const std::vector<double> atoms = atoms_in_precision(mixture, precision);
  std::vector<int> order = positive_weight_atoms(mixture);
  const auto row = [&](int k) { return atoms.cbegin() + static_cast<std::ptrdiff_t>(k) * d; };
  std::sort(order.begin(), order.end(), [&](int i, int j) {
    return std::lexicographical_compare(row(i), row(i) + d, row(j), row(j) + d) ||
           (std::equal(row(i), row(i) + d, row(j)) && i < j);
  });
  std::vector<std::string> warnings;
  for (std::size_t i = 1; i < order.size(); ++i) {
    if (std::equal(row(order[i]), row(order[i]) + d, row(order[i - 1]))) {
      warnings.push_back("atoms " + std::to_string(std::min(order[i - 1], order[i])) +
                         " and " + std::to_string(std::max(order[i - 1], order[i])) +
                         " coincide in " + std::string(precision_name(precision)) +
                         " precision; their samples are all labelled with the lower "
                         "index, so basin fractions cannot match their weights");
    }
  }
  return warnings;
}

namespace {

/// Returns whether comparing every pair of `atoms` atoms in dimension d is
/// cheap enough. It costs K^2 d / 2 multiply-adds, and a bound of 1e8 keeps
/// it to a fraction of a second (an estimate, not a measurement).
bool pair_search_affordable(std::size_t atoms, int d) {
  constexpr double max_pair_work = 1e8;
  return atoms >= 2 &&
         static_cast<double>(atoms) * static_cast<double>(atoms) * d <= max_pair_work;
}

/// `value` with two significant digits, for warnings.
std::string short_number(double value) {
  std::ostringstream text;
  text.precision(2);
  text << value;
  return text.str();
}

}  // namespace

std::vector<std::string> close_atom_warnings(const Mixture& mixture, Precision precision,
                                             const std::vector<ScheduleKind>& schedules,
                                             double eps) {
  // A sample bound for atom j ends at x = b mu_j + a Z with Z ~ N(0, I_d),
  // a = a(t_end) and b = b(t_end), and its label is the atom whose b mu_k is
  // nearest. Between atoms j and k at distance D only the component of Z
  // along (mu_k - mu_j) / D matters, a standard normal whatever d is. The
  // other components move x parallel to the plane midway between b mu_j
  // and b mu_k, so no sqrt(d) enters the threshold. Both
  // centres lie b D / 2 from that plane; when that margin is at least 5 a,
  // a sample crosses the plane with probability Phi(-5) < 3e-7, far below
  // the binomial error of any practical N. Below 5 a this warns.
  const int d = mixture.dim;
  const std::vector<int> indices = positive_weight_atoms(mixture);
  if (!pair_search_affordable(indices.size(), d)) return {};

  const std::vector<double> atoms = atoms_in_precision(mixture, precision);
  const double t_end = 1.0 - eps;
  struct ClosestPair {
    double margin = std::numeric_limits<double>::infinity();
    int first = -1, second = -1;
    double distance = 0.0;
  };
  std::vector<ScheduleValues<double>> values;
  for (ScheduleKind kind : schedules) values.push_back(evaluate_schedule(kind, t_end));
  std::vector<ClosestPair> closest(schedules.size());

  for (std::size_t p = 0; p < indices.size(); ++p) {
    const double* mu_j = atoms.data() + static_cast<std::size_t>(indices[p]) * d;
    for (std::size_t q = p + 1; q < indices.size(); ++q) {
      const double* mu_k = atoms.data() + static_cast<std::size_t>(indices[q]) * d;
      double distance2 = 0.0;
      for (int i = 0; i < d; ++i) distance2 += (mu_k[i] - mu_j[i]) * (mu_k[i] - mu_j[i]);
      // Coinciding atoms have their own warning.
      if (!(distance2 > 0.0)) continue;
      const double distance = std::sqrt(distance2);
      for (std::size_t s = 0; s < schedules.size(); ++s) {
        const double margin = values[s].b * distance / 2.0;
        if (margin < closest[s].margin) {
          closest[s] = {margin, indices[p], indices[q], distance};
        }
      }
    }
  }

  std::vector<std::string> warnings;
  for (std::size_t s = 0; s < schedules.size(); ++s) {
    const double a = values[s].a;
    if (closest[s].first < 0 || !(closest[s].margin < 5.0 * a)) continue;
    warnings.push_back(
        "under the " + std::string(schedule_name(schedules[s])) + " schedule atoms " +
        std::to_string(closest[s].first) + " and " + std::to_string(closest[s].second) +
        " (" + format_significant(closest[s].distance, 3) +
        " apart) are too close for the labels at t_end: a sample of either "
        "atom ends near b(t_end) times that atom with spread a(t_end) = " +
        format_significant(a, 3) + " along each axis, and that centre lies less than "
        "5 a(t_end) from the plane that splits the two atoms' labels, so their basin "
        "fractions are unreliable; lower --eps (now " +
        format_significant(eps) + ")");
  }
  return warnings;
}

std::optional<std::string> relative_tolerance_warning(const Mixture& mixture,
                                                      const FlowRunOptions& options) {
  if (options.method != Method::dopri5) return std::nullopt;
  const int d = mixture.dim;
  const std::vector<int> indices = positive_weight_atoms(mixture);
  if (!pair_search_affordable(indices.size(), d)) return std::nullopt;
  const std::vector<double> shift = flow_shift(mixture);
  // Dormand-Prince allows a local error of about rtol |x|, and |x| reaches
  // the distance R of the atoms from the point the flow is integrated about.
  // Samples within that error of the boundary between two atoms D apart
  // can cross it. With rtol R above 1e-4 D the runs tried sent hundreds of
  // samples in 1e5 to the wrong atom (R = 500 and 3e4, D = 0.1 and 0.5); the
  // built-in example has rtol R / D = 6e-7. The 1e-4 is an estimate.
  double reach = 0.0, closest = std::numeric_limits<double>::infinity();
  int first = -1, second = -1;
  for (std::size_t p = 0; p < indices.size(); ++p) {
    const double* mu_j = mixture.atoms.data() + static_cast<std::size_t>(indices[p]) * d;
    double norm2 = 0.0;
    for (int i = 0; i < d; ++i) norm2 += (mu_j[i] - shift[i]) * (mu_j[i] - shift[i]);
    reach = std::max(reach, std::sqrt(norm2));
    for (std::size_t q = p + 1; q < indices.size(); ++q) {
      const double* mu_k = mixture.atoms.data() + static_cast<std::size_t>(indices[q]) * d;
      double distance2 = 0.0;
      for (int i = 0; i < d; ++i) distance2 += (mu_k[i] - mu_j[i]) * (mu_k[i] - mu_j[i]);
      if (distance2 > 0.0 && distance2 < closest * closest) {
        closest = std::sqrt(distance2);
        first = indices[p];
        second = indices[q];
      }
    }
  }
  if (first < 0 || !(options.rtol * reach > 1e-4 * closest)) return std::nullopt;
  return "atoms " + std::to_string(first) + " and " + std::to_string(second) + " are " +
         short_number(closest) + " apart while atoms lie up to " + short_number(reach) +
         " from the point the flow is integrated about, so --rtol " + short_number(options.rtol) +
         " allows errors of about " + short_number(options.rtol * reach) +
         " that can send samples to the wrong atom; lower --rtol to about " +
         short_number(1e-4 * closest / reach);
}

std::vector<std::string> fixed_step_warnings(const Mixture& mixture,
                                             const FlowRunOptions& options,
                                             const std::vector<ScheduleKind>& schedules) {
  std::vector<std::string> warnings;
  if (options.method == Method::dopri5) return warnings;
  // Atoms D apart split the samples near b D / a^2 = 1; a fixed step ten
  // times longer than first_step_limit (where b D = a^2 / 10) crosses
  // that split in one step.
  const double t_end = 1.0 - options.eps;
  const double step = t_end / options.steps;
  for (ScheduleKind kind : schedules) {
    const double limit = first_step_limit(mixture, kind, t_end);
    if (step > 10.0 * limit) {
      // The steps that would suffice, when --steps can hold them.
      const double needed = std::ceil(t_end / (10.0 * limit));
      const std::string remedy =
          needed <= static_cast<double>(std::numeric_limits<int>::max())
              ? "use --method dopri5 or at least --steps " +
                    std::to_string(static_cast<long long>(needed))
              : "use --method dopri5 (no --steps value is large enough)";
      warnings.push_back(
          "under the " + std::string(schedule_name(kind)) + " schedule the atoms split the samples "
          "near t = " + short_number(10.0 * limit) + ", before the end of the first fixed "
          "step (" + short_number(step) + "), so samples may reach the wrong atom; " + remedy);
    }
  }
  return warnings;
}

std::optional<std::string> failure_warning(const FlowRunOptions& options,
                                           const BasinStatistics& basins,
                                           const StepStatistics& steps) {
  const std::uint64_t failed = steps.max_steps_reached + steps.non_finite_state;
  if (failed == 0) return std::nullopt;

  std::string statuses;
  const auto add_status = [&statuses](std::uint64_t count, SampleStatus status) {
    if (count == 0) return;
    if (!statuses.empty()) statuses += ", ";
    statuses += std::to_string(count) + " " + std::string(status_name(status));
  };
  add_status(steps.max_steps_reached, SampleStatus::max_steps_reached);
  add_status(steps.non_finite_state, SampleStatus::non_finite_state);

  const std::string schedule(schedule_name(options.schedule));
  std::string warning;
  if (basins.succeeded == 0) {
    warning = "every sample failed under the " + schedule + " schedule (" +
              statuses + "); fractions and z-scores are null";
  } else {
    warning = std::to_string(failed) + " of " + std::to_string(options.num_samples) +
              " samples failed under the " + schedule + " schedule (" + statuses +
              "); the fractions leave the failed samples out and may be biased";
  }
  return warning + "; " + failure_remedies(options, steps);
}

}  // namespace fmg::cli
