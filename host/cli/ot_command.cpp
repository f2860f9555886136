// fmg ot: the semi-discrete optimal transport map from N(0, I_d) to the
// mixture, its Laguerre labels and straight paths, and the transport cost of
// the OT map against the flow-matching map on the same base samples.
#include <cmath>
#include <memory>
#include <cstdio>
#include <optional>
#include <set>
#include <stdexcept>

#include "host/cli/common.hpp"
#include "host/driver.hpp"
#include "host/errors.hpp"
#include "host/format.hpp"
#include "host/names.hpp"
#include "host/ot/laguerre2d.hpp"
#include "host/ot/semidiscrete.hpp"
#include "host/ot/transport_map.hpp"

namespace fmg::cli {
namespace {

/// Default of --samples, which the exact route does not use.
constexpr const char* default_ot_samples = "1e6";

struct OtArguments {
  std::string mixture_path;
  std::string route = "auto";
  std::string tolerance = "1e-10";
  std::string max_iterations = "100";
  std::string samples = default_ot_samples;
  std::string seed = "20260617";
  std::string summary_path;
  std::string points_path, labels_path;
  std::string starts_path, start_labels_path;
  std::string trajectories = "0";
  std::string trajectory_points = "60";
  std::string trajectories_path;
  std::string cost_samples = "1e5";
  std::string schedule = "linear";
  bool quiet = false;
  /// Names of the options given on the command line, such as "--samples".
  std::set<std::string> given_options;
};



MassRoute parse_route(const std::string& text, int dim) {
  if (text == "exact") return MassRoute::exact_2d;
  if (text == "mc-cpu") return MassRoute::monte_carlo_cpu;
  if (text == "mc-cuda") return MassRoute::monte_carlo_cuda;
  if (text == "auto") {
    if (dim == 2) return MassRoute::exact_2d;
    return cuda_backend_available() ? MassRoute::monte_carlo_cuda
                                    : MassRoute::monte_carlo_cpu;
  }
  throw InvalidArgument("unknown route '" + text +
                        "': valid routes are auto, exact (d = 2 only), "
                        "mc-cpu and mc-cuda");
}

PointMatrix to_points(const std::vector<double>& values, std::size_t rows,
                      int dim) {
  PointMatrix points(static_cast<Eigen::Index>(rows), dim);
  std::copy(values.begin(), values.end(), points.data());
  return points;
}

/// Mean and standard error of per-sample values.
nlohmann::json mean_with_error(const std::vector<double>& values) {
  double sum = 0.0, sum2 = 0.0;
  for (double v : values) {
    sum += v;
    sum2 += v * v;
  }
  const double n = static_cast<double>(values.size());
  const double mean = sum / n;
  const double variance = n > 1 ? std::max(0.0, (sum2 - n * mean * mean) / (n - 1)) : 0.0;
  return {{"value", mean}, {"standard_error", std::sqrt(variance / n)}};
}

/// Transport costs |T(x) - x|^2 of the OT map and of the flow's map (each
/// sample sent to the atom its flow reaches) on the same Philox samples.
nlohmann::json compare_transport_costs(const Mixture& mixture,
                                       const PointMatrix& atoms,
                                       const SemiDiscreteResult& solution,
                                       const OtArguments& args) {
  FlowRunOptions options;
  options.schedule = parse_schedule(args.schedule);
  options.num_samples = parse_count(args.cost_samples, "--cost-samples");
  options.seed = parse_seed(args.seed, "--seed");
  options.rtol = 1e-8;
  options.atol = 1e-10;
  options.progress = !args.quiet;
  const int d = mixture.dim;

  std::vector<double> base;
  std::vector<std::int32_t> flow_labels;
  FlowRunIo io;
  io.base_samples = [&base](const void* data, std::size_t bytes) {
    const auto* p = static_cast<const double*>(data);
    base.insert(base.end(), p, p + bytes / sizeof(double));
  };
  io.labels = [&flow_labels](const void* data, std::size_t bytes) {
    const auto* p = static_cast<const std::int32_t*>(data);
    flow_labels.insert(flow_labels.end(), p, p + bytes / sizeof(std::int32_t));
  };
  const FlowRunResult flow = run_flow(mixture, options, io);

  const PointMatrix points = to_points(base, options.num_samples, d);
  const std::vector<int> ot_labels = laguerre_labels(points, atoms, solution.psi);
  std::vector<double> ot_cost, flow_cost, difference;
  std::uint64_t agree = 0;
  for (std::size_t i = 0; i < options.num_samples; ++i) {
    if (flow_labels[i] < 0) continue;  // A failed flow sample has no atom.
    const auto x = points.row(static_cast<Eigen::Index>(i));
    const double c_ot = (atoms.row(ot_labels[i]) - x).squaredNorm();
    const double c_flow = (atoms.row(flow_labels[i]) - x).squaredNorm();
    ot_cost.push_back(c_ot);
    flow_cost.push_back(c_flow);
    difference.push_back(c_flow - c_ot);
    agree += ot_labels[i] == flow_labels[i];
  }
  return {{"samples", ot_cost.size()},
          {"seed", parse_seed(args.seed, "--seed")},
          {"flow_schedule", schedule_name(options.schedule)},
          {"flow_backend", flow.backend},
          {"ot", mean_with_error(ot_cost)},
          {"flow", mean_with_error(flow_cost)},
          {"flow_minus_ot", mean_with_error(difference)},
          {"same_atom_fraction",
           ot_cost.empty() ? 0.0 : static_cast<double>(agree) / ot_cost.size()}};
}

nlohmann::json vector_json(const Eigen::VectorXd& values) {
  nlohmann::json out = nlohmann::json::array();
  for (Eigen::Index k = 0; k < values.size(); ++k) {
    // -inf (an atom of zero weight) has no JSON number, so null represents it.
    out.push_back(std::isfinite(values[k]) ? nlohmann::json(values[k])
                                           : nlohmann::json(nullptr));
  }
  return out;
}

/// Returns the warnings of a solve: options without effect on the route,
/// and a solve that stopped at --max-iterations above --tolerance.
std::vector<std::string> ot_warnings(const OtArguments& args,
                                     const SemiDiscreteOptions& options,
                                     const SemiDiscreteResult& solution) {
  std::vector<std::string> warnings;
  const bool samples_changed =
      args.given_options.count("--samples") > 0 &&
      options.samples != static_cast<std::int64_t>(parse_count(default_ot_samples, "--samples"));
  if (options.route == MassRoute::exact_2d && samples_changed) {
    warnings.push_back("--samples has no effect with the exact route, which integrates "
                       "the cell masses in closed form; it applies to --route mc-cpu and "
                       "mc-cuda");
  }
  if (solution.status == OtStatus::max_iterations) {
    warnings.push_back(
        "the Newton solve stopped at --max-iterations " +
        std::to_string(options.max_iterations) + " with max_k |mass_k - w_k| = " +
        format_number(solution.residual) + " above --tolerance " +
        format_number(options.tolerance) +
        "; the outputs come from the last iterate and the exit status is " +
        std::to_string(exit_not_converged) + "; raise --max-iterations or loosen --tolerance");
  }
  return warnings;
}

/// Solves the OT problem of `args` and writes its outputs. Returns
/// exit_not_converged when the Newton solve stopped at --max-iterations,
/// after writing the outputs, and exit_ok otherwise.
ExitStatus run_ot(const OtArguments& args) {
  const Mixture mixture = load_mixture(args.mixture_path);
  validate_mixture(mixture, Precision::float64);
  const int d = mixture.dim;
  const PointMatrix atoms = to_points(mixture.atoms, mixture.num_atoms(), d);
  const Eigen::VectorXd weights =
      Eigen::Map<const Eigen::VectorXd>(mixture.weights.data(), mixture.num_atoms());

  const double tolerance = parse_finite(args.tolerance, "--tolerance");
  if (!(tolerance > 0.0) || !std::isfinite(tolerance)) {
    throw InvalidArgument("invalid --tolerance " + args.tolerance +
                          ": it must be a positive finite bound on max_k |mass_k - w_k|");
  }
  const int max_iterations = parse_int_at_least(args.max_iterations, "--max-iterations", 1);
  const int trajectories = parse_int_at_least(args.trajectories, "--ot-trajectories", 0);
  const int trajectory_points =
      parse_int_at_least(args.trajectory_points, "--trajectory-points", 2);
  SemiDiscreteOptions options;
  options.route = parse_route(args.route, d);
  if (options.route == MassRoute::exact_2d && d != 2) {
    throw InvalidArgument("--route exact needs a 2-D mixture, but the atoms have dimension " +
                          std::to_string(d) + "; use --route mc-cpu or --route mc-cuda");
  }
  options.tolerance = tolerance;
  options.max_iterations = max_iterations;
  options.samples = static_cast<std::int64_t>(parse_count(args.samples, "--samples"));
  options.seed = parse_seed(args.seed, "--seed");
  validate_semidiscrete_options(options, d);
  parse_count(args.cost_samples, "--cost-samples");
  parse_schedule(args.schedule);
  if (trajectories > 0 && (args.starts_path.empty() || args.trajectories_path.empty())) {
    throw InvalidArgument("--ot-trajectories needs --starts FILE.npy and "
                          "--ot-trajectories-out FILE.npy");
  }
  if (trajectories == 0 && !args.trajectories_path.empty()) {
    throw InvalidArgument("--ot-trajectories-out needs --ot-trajectories M, the number "
                          "of rows of --starts whose paths are written");
  }
  if (!args.labels_path.empty() && args.points_path.empty()) {
    throw InvalidArgument("--labels-out needs --points FILE.npy");
  }
  if (!args.start_labels_path.empty() && args.starts_path.empty()) {
    throw InvalidArgument("--start-labels-out needs --starts FILE.npy");
  }
  std::optional<Matrix<double>> grid_points, starts;
  if (!args.points_path.empty()) {
    grid_points = read_npy_matrix<double>(args.points_path, d);
    check_point_magnitudes(grid_points->values, grid_points->cols, args.points_path,
                           Precision::float64);
  }
  if (!args.starts_path.empty()) {
    starts = read_npy_matrix<double>(args.starts_path, d);
    check_point_magnitudes(starts->values, starts->cols, args.starts_path,
                           Precision::float64);
  }
  if (starts && static_cast<std::size_t>(trajectories) > starts->rows) {
    throw InvalidArgument("invalid --ot-trajectories " + std::to_string(trajectories) +
                          ": " + args.starts_path + " has only " +
                          std::to_string(starts->rows) + " rows");
  }

  OutputSet outputs;
  if (!args.mixture_path.empty()) outputs.add_input(args.mixture_path, "--mixture");
  if (!args.points_path.empty()) outputs.add_input(args.points_path, "--points");
  if (!args.starts_path.empty()) outputs.add_input(args.starts_path, "--starts");
  AtomicFile* summary =
      args.summary_path.empty() ? nullptr : &outputs.add(args.summary_path, "--summary");
  AtomicFile* labels_file =
      args.labels_path.empty() ? nullptr : &outputs.add(args.labels_path, "--labels-out");
  AtomicFile* start_labels_file =
      args.start_labels_path.empty()
          ? nullptr
          : &outputs.add(args.start_labels_path, "--start-labels-out");
  AtomicFile* trajectories_file =
      args.trajectories_path.empty()
          ? nullptr
          : &outputs.add(args.trajectories_path, "--ot-trajectories-out");

  const SemiDiscreteResult solution = solve_semidiscrete_ot(atoms, weights, options);
  if (solution.status == OtStatus::failed) {
    throw std::runtime_error("the OT solve failed: " + solution.message);
  }

  nlohmann::json json;
  json["fmg_version"] = FMG_VERSION;
  json["command"] = "ot";
  json["route"] = to_string(options.route);
  json["status"] = to_string(solution.status);
  json["message"] = solution.message;
  json["notes"] = solution.notes;
  const std::vector<std::string> warnings = ot_warnings(args, options, solution);
  json["warnings"] = warnings;
  json["psi"] = vector_json(solution.psi);
  json["psi_standard_errors"] = vector_json(solution.psi_standard_errors);
  json["masses"] = vector_json(solution.masses);
  json["mass_standard_errors"] = vector_json(solution.mass_standard_errors);
  json["weights"] = vector_json(solution.weights);
  json["iterations"] = solution.iterations;
  json["evaluations"] = solution.evaluations;
  json["residual"] = solution.residual;
  json["residual_standard_error"] = solution.residual_standard_error;
  json["residual_history"] = solution.residual_history;
  json["exact_residual"] = solution.exact_residual ? nlohmann::json(*solution.exact_residual)
                                                   : nlohmann::json(nullptr);
  json["holdout_residual"] = solution.holdout_residual
                                 ? nlohmann::json(*solution.holdout_residual)
                                 : nlohmann::json(nullptr);
  json["samples"] = options.route == MassRoute::exact_2d ? 0 : options.samples;
  json["seed"] = options.seed;

  json["transport_cost"] = compare_transport_costs(mixture, atoms, solution, args);
  if (d == 2) {
    // The OT map's cost by exact Gaussian moments over the Laguerre cells.
    json["transport_cost"]["ot_exact"] = exact_transport_cost_2d(atoms, solution.psi);
  }
  if (grid_points && labels_file != nullptr) {
    const std::vector<int> labels = laguerre_labels(
        to_points(grid_points->values, grid_points->rows, d), atoms, solution.psi);
    const std::vector<std::int32_t> out(labels.begin(), labels.end());
    write_npy(labels_file->stream(), NpyType::int32, {out.size()}, out.data());
  }
  if (starts) {
    const PointMatrix start_points = to_points(starts->values, starts->rows, d);
    if (start_labels_file != nullptr) {
      const std::vector<int> labels = laguerre_labels(start_points, atoms, solution.psi);
      const std::vector<std::int32_t> out(labels.begin(), labels.end());
      write_npy(start_labels_file->stream(), NpyType::int32, {out.size()}, out.data());
    }
    if (trajectories_file != nullptr) {
      const std::size_t m = static_cast<std::size_t>(trajectories);
      const std::size_t t_count = static_cast<std::size_t>(trajectory_points);
      std::vector<double> times(t_count);
      for (std::size_t g = 0; g < t_count; ++g) {
        times[g] = static_cast<double>(g) / static_cast<double>(t_count - 1);
      }
      const PointMatrix paths =
          ot_trajectories(start_points.topRows(static_cast<Eigen::Index>(m)), atoms,
                          solution.psi, times);
      // Rows come time-major (t N + i); the file is (M, T, d), sample-major.
      std::vector<double> out(m * t_count * d);
      for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t g = 0; g < t_count; ++g) {
          for (int j = 0; j < d; ++j) {
            out[(i * t_count + g) * d + j] = paths(static_cast<Eigen::Index>(g * m + i), j);
          }
        }
      }
      write_npy(trajectories_file->stream(), NpyType::float64, {m, t_count, std::size_t(d)},
                out.data());
      json["trajectory_times"] = times;
    }
  }
  // Warnings go to stderr even with --quiet, which silences progress only.
  for (const std::string& warning : warnings) {
    std::fprintf(stderr, "fmg: warning: %s\n", warning.c_str());
  }
  emit_json(json, summary);
  outputs.commit_all();
  return solution.status == OtStatus::max_iterations ? exit_not_converged : exit_ok;
}

}  // namespace

void add_ot_command(CLI::App& app, ExitStatus& exit_status) {
  auto args = std::make_shared<OtArguments>();
  CLI::App* cmd = app.add_subcommand(
      "ot",
      "Solve the semi-discrete optimal transport map from N(0, I_d) to the "
      "mixture (cost |x - y|^2 / 2) by damped Newton, and compare its "
      "transport cost with the flow-matching map's. A solve that stops at "
      "--max-iterations above --tolerance still writes its outputs, warns, "
      "and exits with status 5.");
  cmd->add_option("--mixture", args->mixture_path,
                  "Mixture JSON file; default: the built-in example");
  cmd->add_option("--route", args->route,
                  "Cell masses: exact (Gaussian polygon integrals, d = 2), mc-cpu "
                  "or mc-cuda (Monte Carlo), or auto (exact in 2-D)")
      ->capture_default_str();
  cmd->add_option("--tolerance", args->tolerance,
                  "Stop when max_k |mass_k - w_k| is below this")
      ->capture_default_str();
  cmd->add_option("--max-iterations", args->max_iterations,
                  "Maximum number of Newton steps; stopping there above "
                  "--tolerance exits with status 5")
      ->capture_default_str();
  cmd->add_option("--samples", args->samples,
                  "Monte Carlo samples per mass evaluation; the exact route "
                  "ignores it and warns")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed,
                  "Seed of the Monte Carlo and transport-cost base samples")
      ->capture_default_str();
  cmd->add_option("--summary", args->summary_path,
                  "Write the JSON result to this file instead of stdout");
  cmd->add_option("--points", args->points_path,
                  "Points as an (n, d) .npy file to label by Laguerre cell");
  cmd->add_option("--labels-out", args->labels_path,
                  "Write the (n,) int32 Laguerre labels of --points");
  cmd->add_option("--starts", args->starts_path,
                  "Starting points as an (N, d) .npy file for OT paths");
  cmd->add_option("--start-labels-out", args->start_labels_path,
                  "Write the (N,) int32 OT atoms of --starts");
  cmd->add_option("--ot-trajectories", args->trajectories,
                  "Straight OT paths of the first M rows of --starts")
      ->capture_default_str();
  cmd->add_option("--trajectory-points", args->trajectory_points,
                  "Times of the OT paths, uniform on [0, 1]")
      ->capture_default_str();
  cmd->add_option("--ot-trajectories-out", args->trajectories_path,
                  "Write the (M, points, d) float64 OT paths to this .npy file");
  cmd->add_option("--cost-samples", args->cost_samples,
                  "Base samples of the transport-cost comparison")
      ->capture_default_str();
  cmd->add_option("--schedule", args->schedule,
                  "Schedule of the flow whose map is compared")
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", args->quiet, quiet_help);
  cmd->callback([args, cmd, &exit_status]() {
    reject_empty_values(*cmd);
    args->given_options = given_options(*cmd);
    exit_status = run_ot(*args);
  });
}

}  // namespace fmg::cli
