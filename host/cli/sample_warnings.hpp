// Warnings of fmg sample: mixtures whose basin fractions are unreliable,
// fixed steps too long for the atoms, and samples that failed.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "host/driver.hpp"
#include "host/statistics.hpp"

namespace fmg::cli {

/// Returns a warning for each group of atoms of positive weight at the same
/// point once converted to the run's `precision`. The flow sends such a
/// group's mass to its lowest index, so the others' fractions stay at 0
/// whatever their weights. In a float run, atoms that differ only below
/// float resolution, such as 1 and 1.000000001, coincide.
std::vector<std::string> coinciding_atom_warnings(const Mixture& mixture,
                                                  Precision precision);

/// Returns a warning for each schedule of `schedules` under which two
/// distinct atoms of positive weight lie too close for the nearest-atom
/// labels of the endpoints at t_end = 1 - `eps` to tell their samples
/// apart. The search compares every pair, so it is skipped without a word
/// when K^2 d exceeds 1e8.
std::vector<std::string> close_atom_warnings(const Mixture& mixture, Precision precision,
                                             const std::vector<ScheduleKind>& schedules,
                                             double eps);

/// Returns a warning when Dormand-Prince's relative tolerance, applied to
/// states as far from the integration's centre (see flow_shift) as the
/// atoms, allows errors above 1e-4 times the closest distance between two
/// atoms of positive weight, or nothing. Skipped like close_atom_warnings.
std::optional<std::string> relative_tolerance_warning(const Mixture& mixture,
                                                      const FlowRunOptions& options);

/// Returns a warning for each schedule under which the atoms split the
/// samples before the end of the first step of a fixed-step method, or
/// nothing for Dormand-Prince.
std::vector<std::string> fixed_step_warnings(const Mixture& mixture,
                                             const FlowRunOptions& options,
                                             const std::vector<ScheduleKind>& schedules);

/// Returns a warning for a run in which some samples failed, or nothing
/// when all succeeded. Basin fractions count the successful samples only,
/// so failures that favour some basins bias them.
std::optional<std::string> failure_warning(const FlowRunOptions& options,
                                           const BasinStatistics& basins,
                                           const StepStatistics& steps);

}  // namespace fmg::cli
