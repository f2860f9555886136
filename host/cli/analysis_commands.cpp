// fmg density and fmg crosscheck: the marginal density on a grid, and the
// closed-form velocity against the autodiff score of log rho_t.
#include <cmath>
#include <memory>

#include "host/analysis/crosscheck.hpp"
#include "host/analysis/density.hpp"
#include "host/cli/common.hpp"
#include "host/driver.hpp"
#include "host/errors.hpp"
#include "host/format.hpp"
#include "host/names.hpp"
#include "kernels/philox_normal.hpp"
#include "kernels/vec.hpp"

namespace fmg::cli {
namespace {

/// Parses "a,b" into a range with a < b, both finite and at most 1e150 in
/// magnitude, the bound on atoms and input points in float64. Beyond it the
/// width b - a or the squared distances from the grid points to the atoms
/// overflow.
std::pair<double, double> parse_range(const std::string& text,
                                      const std::string& option) {
  const std::size_t comma = text.find(',');
  if (comma == std::string::npos) {
    throw InvalidArgument("invalid " + option + " '" + text +
                          "': expected MIN,MAX such as -5,5");
  }
  const double low = parse_real(text.substr(0, comma), option);
  const double high = parse_real(text.substr(comma + 1), option);
  const double max_magnitude = max_coordinate_magnitude(Precision::float64);
  if (!(std::fabs(low) <= max_magnitude && std::fabs(high) <= max_magnitude)) {
    throw InvalidArgument("invalid " + option + " '" + text +
                          "': MIN and MAX must be finite and at most " +
                          max_coordinate_magnitude_text(Precision::float64) +
                          " in magnitude, so that the width and the squared "
                          "distances to the atoms stay finite");
  }
  if (!(low < high)) {
    throw InvalidArgument("invalid " + option + " '" + text + "': MIN must be below MAX");
  }
  return {low, high};
}

struct DensityArguments {
  std::string mixture_path;
  std::string schedule = "linear";
  std::vector<std::string> times{"0.15", "0.5", "0.9"};
  std::string x_range = "-5,5";
  std::string y_range = "-5,5";
  std::string grid = "240";
  std::string out_path;
  std::string summary_path;
};

void run_density(const DensityArguments& args) {
  const Mixture mixture = load_mixture(args.mixture_path);
  validate_mixture(mixture, Precision::float64);
  if (mixture.dim != 2) {
    throw InvalidArgument("fmg density draws 2-D grids, but the mixture has "
                          "dimension " + std::to_string(mixture.dim) +
                          "; use fmg field --log-density-out for points in "
                          "any dimension");
  }
  const ScheduleKind kind = parse_schedule(args.schedule);
  const std::vector<double> times = parse_times(args.times);
  const auto [x_min, x_max] = parse_range(args.x_range, "--x-range");
  const auto [y_min, y_max] = parse_range(args.y_range, "--y-range");
  const int grid = parse_int_at_least(args.grid, "--grid", 2);
  // 2^28 values (2 GiB of float64) bound the array kept in memory.
  constexpr double max_values = 268435456.0;
  if (static_cast<double>(grid) * grid * times.size() > max_values) {
    const int largest = static_cast<int>(
        std::floor(std::sqrt(max_values / static_cast<double>(times.size()))));
    throw InvalidArgument("invalid --grid " + std::to_string(grid) +
                          ": grid^2 times the number of times must be at most 2^28 "
                          "values (--grid " +
                          std::to_string(largest) + " at most for " +
                          std::to_string(times.size()) + " times)");
  }
  if (args.out_path.empty()) {
    throw InvalidArgument("--out FILE.npy is required");
  }

  OutputSet outputs;
  if (!args.mixture_path.empty()) outputs.add_input(args.mixture_path, "--mixture");
  AtomicFile& out = outputs.add(args.out_path, "--out");
  AtomicFile* summary =
      args.summary_path.empty() ? nullptr : &outputs.add(args.summary_path, "--summary");

  const HostMixture<double> data = make_host_mixture<double>(mixture);
  const std::size_t n = static_cast<std::size_t>(grid);
  std::vector<double> values;
  values.reserve(times.size() * n * n);
  for (double t : times) {
    const std::vector<double> slice = log_density_grid(
        data.view(), kind, t, x_min, x_max, grid, y_min, y_max, grid);
    values.insert(values.end(), slice.begin(), slice.end());
  }
  write_npy(out.stream(), NpyType::float64, {times.size(), n, n}, values.data());
  if (summary != nullptr) {
    nlohmann::json json;
    json["fmg_version"] = FMG_VERSION;
    json["command"] = "density";
    json["schedule"] = schedule_name(kind);
    json["times"] = times;
    json["x_range"] = {x_min, x_max};
    json["y_range"] = {y_min, y_max};
    json["grid"] = grid;
    json["file"] = args.out_path;
    json["layout"] = "(times, y, x), log density";
    emit_json(json, summary);
  }
  outputs.commit_all();
}

struct CrosscheckArguments {
  std::string mixture_path;
  std::string schedules = "all";
  std::string samples = "200";
  std::string seed = "20260617";
  std::vector<std::string> times{"0.05:0.97:40"};
  std::string summary_path;
};

void run_crosscheck(const CrosscheckArguments& args) {
  const Mixture mixture = load_mixture(args.mixture_path);
  validate_mixture(mixture, Precision::float64);
  const std::vector<ScheduleKind> schedules = parse_schedules(args.schedules);
  const std::uint64_t n = parse_count(args.samples, "--n");
  const std::vector<double> times = parse_times(args.times);
  const std::uint64_t seed = parse_seed(args.seed, "--seed");
  for (double t : times) {
    if (!(t > 0.0)) {
      throw InvalidArgument("invalid time " + format_number(t) +
                            ": the cross-check needs t in (0, 1), because at "
                            "t = 0 the score carries no information on the "
                            "posterior mean");
    }
  }
  // The base points stay in memory, in double and in a float copy.
  require_memory(12.0 * static_cast<double>(n) * mixture.dim,
                 "crosscheck of --n " + args.samples + " points in d = " +
                     std::to_string(mixture.dim),
                 "compare at fewer points");
  OutputSet outputs;
  if (!args.mixture_path.empty()) outputs.add_input(args.mixture_path, "--mixture");
  AtomicFile* summary =
      args.summary_path.empty() ? nullptr : &outputs.add(args.summary_path, "--summary");

  const int d = mixture.dim;
  std::vector<double> points(n * d);
  for (std::uint64_t i = 0; i < n; ++i) {
    StridedVec<double> x{points.data() + i * d, d, 1};
    philox_base_sample(seed, i, x);
  }
  const HostMixture<double> data = make_host_mixture<double>(mixture);
  nlohmann::json json;
  json["fmg_version"] = FMG_VERSION;
  json["command"] = "crosscheck";
  json["samples"] = n;
  json["seed"] = seed;
  json["curves"] = nlohmann::json::array();
  for (ScheduleKind kind : schedules) {
    const CrosscheckCurve curve =
        velocity_crosscheck(data.view(), kind, points.data(), n, times);
    json["curves"].push_back({{"schedule", schedule_name(kind)},
                              {"times", curve.times},
                              {"max_abs_error", curve.max_abs_error},
                              {"max_rel_error", curve.max_rel_error}});
  }
  emit_json(json, summary);
  outputs.commit_all();
}

}  // namespace

void add_density_command(CLI::App& app) {
  auto args = std::make_shared<DensityArguments>();
  CLI::App* cmd = app.add_subcommand(
      "density", "Evaluate log rho_t of a 2-D mixture on a grid at given times.");
  cmd->add_option("--mixture", args->mixture_path,
                  "Mixture JSON file; default: the built-in example");
  cmd->add_option("--schedule", args->schedule,
                  "linear, variance-preserving (vp) or cosine")
      ->capture_default_str();
  cmd->add_option("--times", args->times,
                  "Times in [0, 1): a list (0.1,0.5) or START:STOP:COUNT")
      ->capture_default_str();
  cmd->add_option("--x-range", args->x_range,
                  "Grid range MIN,MAX along x, both at most 1e150 in magnitude")
      ->capture_default_str();
  cmd->add_option("--y-range", args->y_range, "Grid range MIN,MAX along y, likewise")
      ->capture_default_str();
  cmd->add_option("--grid", args->grid,
                  "Grid points per axis, at least 2; grid^2 times the number of "
                  "times is at most 2^28")
      ->capture_default_str();
  cmd->add_option("--out", args->out_path,
                  "Write the (times, y, x) float64 log density to this .npy file");
  cmd->add_option("--summary", args->summary_path,
                  "Write a JSON description of the grid to this file");
  cmd->callback([args, cmd]() {
    reject_empty_values(*cmd);
    run_density(*args);
  });
}

void add_crosscheck_command(CLI::App& app) {
  auto args = std::make_shared<CrosscheckArguments>();
  CLI::App* cmd = app.add_subcommand(
      "crosscheck",
      "Compare the closed-form velocity with the velocity rebuilt from the "
      "autodiff score of log rho_t, as a maximum error per time.");
  cmd->add_option("--mixture", args->mixture_path,
                  "Mixture JSON file; default: the built-in example");
  cmd->add_option("--schedule", args->schedules,
                  "linear, variance-preserving (vp), cosine or all")
      ->capture_default_str();
  cmd->add_option("-n,--n", args->samples, "Base samples to compare at")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed of the Philox base samples")
      ->capture_default_str();
  cmd->add_option("--times", args->times,
                  "Times in (0, 1): a list or START:STOP:COUNT")
      ->capture_default_str();
  cmd->add_option("--summary", args->summary_path,
                  "Write the JSON curves to this file instead of stdout");
  cmd->callback([args, cmd]() {
    reject_empty_values(*cmd);
    run_crosscheck(*args);
  });
}

}  // namespace fmg::cli
