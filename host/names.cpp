#include "host/names.hpp"

#include "host/driver.hpp"
#include "host/errors.hpp"

namespace fmg {

std::string_view schedule_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::variance_preserving: return "variance-preserving";
    case ScheduleKind::cosine: return "cosine";
    case ScheduleKind::linear:
    default: return "linear";
  }
}

std::string_view method_name(Method method) {
  switch (method) {
    case Method::euler: return "euler";
    case Method::heun: return "heun";
    case Method::rk4: return "rk4";
    case Method::dopri5:
    default: return "dopri5";
  }
}

std::string_view precision_name(Precision precision) {
  return precision == Precision::float32 ? "float" : "double";
}

std::string_view status_name(SampleStatus status) {
  switch (status) {
    case SampleStatus::max_steps_reached: return "max_steps_reached";
    case SampleStatus::non_finite_state: return "non_finite_state";
    case SampleStatus::ok:
    default: return "ok";
  }
}

ScheduleKind parse_schedule(const std::string& text) {
  if (text == "linear") return ScheduleKind::linear;
  if (text == "variance-preserving" || text == "vp") {
    return ScheduleKind::variance_preserving;
  }
  if (text == "cosine") return ScheduleKind::cosine;
  throw InvalidArgument("unknown schedule '" + text +
                        "': valid schedules are linear, variance-preserving "
                        "(or vp) and cosine");
}

std::vector<ScheduleKind> parse_schedules(const std::string& text) {
  if (text == "all") {
    return {ScheduleKind::linear, ScheduleKind::variance_preserving,
            ScheduleKind::cosine};
  }
  if (text == "linear" || text == "variance-preserving" || text == "vp" ||
      text == "cosine") {
    return {parse_schedule(text)};
  }
  throw InvalidArgument("unknown schedule '" + text +
                        "': valid schedules are linear, variance-preserving "
                        "(or vp), cosine and all");
}

Method parse_method(const std::string& text) {
  if (text == "euler") return Method::euler;
  if (text == "heun") return Method::heun;
  if (text == "rk4") return Method::rk4;
  if (text == "dopri5") return Method::dopri5;
  throw InvalidArgument("unknown method '" + text +
                        "': valid methods are euler, heun, rk4 and dopri5");
}

Precision parse_precision(const std::string& text) {
  if (text == "double" || text == "float64") return Precision::float64;
  if (text == "float" || text == "float32") return Precision::float32;
  throw InvalidArgument("unknown precision '" + text +
                        "': valid precisions are double and float");
}

BackendChoice parse_backend(const std::string& text) {
  if (text == "auto") return BackendChoice::automatic;
  if (text == "cpu") return BackendChoice::cpu;
  if (text == "cuda") return BackendChoice::cuda;
  throw InvalidArgument("unknown backend '" + text +
                        "': valid backends are auto, cpu and cuda");
}

VelocityPath parse_velocity_path(const std::string& text) {
  if (text == "auto") return VelocityPath::automatic;
  if (text == "direct") return VelocityPath::direct;
  if (text == "matrix") return VelocityPath::matrix;
  throw InvalidArgument("unknown velocity path '" + text +
                        "': valid velocity paths are auto, direct and matrix");
}

}  // namespace fmg
