// Names of schedules, methods, backends and precisions as the command line
// and the JSON summary spell them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kernels/common.hpp"

namespace fmg {

enum class BackendChoice;
enum class VelocityPath;

/// "linear", "variance-preserving" or "cosine".
std::string_view schedule_name(ScheduleKind kind);
/// "euler", "heun", "rk4" or "dopri5".
std::string_view method_name(Method method);
/// "float" or "double".
std::string_view precision_name(Precision precision);
/// "ok", "max_steps_reached" or "non_finite_state".
std::string_view status_name(SampleStatus status);

/// Parses a schedule name ("vp" is accepted for variance-preserving).
/// Throws fmg::InvalidArgument listing the valid names.
ScheduleKind parse_schedule(const std::string& text);
/// Parses a schedule list: one name, or "all" for the three schedules.
std::vector<ScheduleKind> parse_schedules(const std::string& text);
Method parse_method(const std::string& text);
Precision parse_precision(const std::string& text);
BackendChoice parse_backend(const std::string& text);
/// Parses "auto", "direct" or "matrix". Throws fmg::InvalidArgument listing
/// the valid names.
VelocityPath parse_velocity_path(const std::string& text);

}  // namespace fmg
