// fmg sample: integrate the flow for N samples under one or all schedules
// and report basin fractions against the target weights.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "host/cli/common.hpp"
#include "host/cli/sample_warnings.hpp"
#include "host/driver.hpp"
#include "host/errors.hpp"
#include "kernels/cpu/lanes.hpp"
#include "host/names.hpp"
#include "host/statistics.hpp"

namespace fmg::cli {
namespace {

struct SampleArguments {
  std::string mixture_path;
  std::string schedules = "all";
  std::string samples;  ///< Empty: 1e6, or the rows of --starts.
  std::string method = "dopri5";
  std::string steps = "100";
  std::string rtol, atol;
  std::string initial_step = "0";
  std::string max_steps = "100000";
  std::string eps = "1e-3";
  std::string seed = "20260617";
  std::string backend = "auto";
  std::string velocity_path = "auto";
  std::string precision = "double";
  std::string threads = "0";
  std::string chunk_size = "1048576";
  std::string starts_path;
  std::string summary_path;
  bool json_to_stdout = false;
  std::string endpoints_path, labels_path, base_path;
  std::string trajectories = "0";
  std::string trajectory_points = "101";
  std::string trajectories_path;
  bool quiet = false;
  bool no_simd = false;
  /// Names of the options given on the command line, such as "--steps".
  std::set<std::string> given_options;
};

double default_rtol(Precision precision) {
  return precision == Precision::float32 ? 1e-5 : 1e-6;
}

double default_atol(Precision precision) {
  return precision == Precision::float32 ? 1e-6 : 1e-9;
}

FlowRunOptions to_run_options(const SampleArguments& args,
                              std::uint64_t samples) {
  FlowRunOptions options;
  options.method = parse_method(args.method);
  options.precision = parse_precision(args.precision);
  options.backend = parse_backend(args.backend);
  options.velocity_path = parse_velocity_path(args.velocity_path);
  options.rtol = args.rtol.empty() ? default_rtol(options.precision)
                                   : parse_finite(args.rtol, "--rtol");
  options.atol = args.atol.empty() ? default_atol(options.precision)
                                   : parse_finite(args.atol, "--atol");
  options.steps = static_cast<int>(parse_count_at_most(
      args.steps, "--steps",
      static_cast<std::uint64_t>(std::numeric_limits<int>::max())));
  options.initial_step = parse_finite(args.initial_step, "--initial-step");
  options.max_steps = static_cast<std::uint32_t>(parse_count_at_most(
      args.max_steps, "--max-steps", std::numeric_limits<std::uint32_t>::max()));
  options.eps = parse_finite(args.eps, "--eps");
  options.seed = parse_seed(args.seed, "--seed");
  options.num_samples = samples;
  options.threads = static_cast<int>(
      parse_count_in_range(args.threads, "--threads", 0, max_cpu_threads));
  options.chunk_size = parse_count(args.chunk_size, "--chunk-size");
  options.progress = !args.quiet;
  options.cpu_simd = !args.no_simd;
  return options;
}

/// Returns a warning naming the options given with other than their default
/// values that the run's method ignores, or nothing.
std::optional<std::string> ignored_method_option_warning(const SampleArguments& args,
                                                         const FlowRunOptions& options) {
  const FlowRunOptions defaults;
  const auto changed = [&args](const std::string& name, bool differs) {
    return args.given_options.count(name) > 0 && differs;
  };
  if (options.method == Method::dopri5) {
    if (!changed("--steps", options.steps != defaults.steps)) return std::nullopt;
    return "--steps has no effect with --method dopri5, which chooses its steps "
           "adaptively; it applies to --method euler, heun and rk4";
  }
  std::vector<std::string> ignored;
  if (changed("--rtol", options.rtol != default_rtol(options.precision))) {
    ignored.push_back("--rtol");
  }
  if (changed("--atol", options.atol != default_atol(options.precision))) {
    ignored.push_back("--atol");
  }
  if (changed("--initial-step", options.initial_step != defaults.initial_step)) {
    ignored.push_back("--initial-step");
  }
  if (changed("--max-steps", options.max_steps != defaults.max_steps)) {
    ignored.push_back("--max-steps");
  }
  if (ignored.empty()) return std::nullopt;
  std::string names;
  for (std::size_t i = 0; i < ignored.size(); ++i) {
    names += (i == 0 ? "" : i + 1 == ignored.size() ? " and " : ", ") + ignored[i];
  }
  const std::string verb = ignored.size() == 1 ? "has" : "have";
  return names + " " + verb + " no effect with --method " +
         std::string(method_name(options.method)) + ", which takes --steps fixed steps; " +
         (ignored.size() == 1 ? "it applies" : "they apply") + " to --method dopri5 only";
}

/// Returns a warning when --no-simd was given but the run did not use the
/// SIMD lane engine it turns off, which only the CPU backend's direct path
/// runs, for d <= lanes::max_lane_dim.
std::optional<std::string> ignored_no_simd_warning(const SampleArguments& args,
                                                   const FlowRunResult& result, int dim) {
  if (!args.no_simd) return std::nullopt;
  if (result.backend == "cpu" && result.velocity_path == "direct" &&
      dim <= lanes::max_lane_dim) {
    return std::nullopt;
  }
  return "--no-simd has no effect here: it turns off the SIMD lane engine of the CPU "
         "backend's direct velocity path for d <= " + std::to_string(lanes::max_lane_dim) +
         ", but this run used the " +
         result.backend + " backend's " + result.velocity_path + " path in d = " +
         std::to_string(dim);
}

nlohmann::json run_json(const FlowRunOptions& options,
                        const FlowRunResult& result,
                        const BasinStatistics& basins,
                        const StepStatistics& steps) {
  nlohmann::json run;
  run["schedule"] = schedule_name(options.schedule);
  run["backend"] = result.backend;
  run["device"] = result.device;
  run["velocity_path"] = result.velocity_path;
  run["precision"] = precision_name(options.precision);
  run["seed"] = options.seed;
  run["samples"] = options.num_samples;
  run["succeeded"] = basins.succeeded;
  run["wall_seconds"] = result.wall_seconds;
  run["samples_per_second"] =
      result.wall_seconds > 0
          ? static_cast<double>(options.num_samples) / result.wall_seconds
          : 0.0;
  run["counts"] = basins.counts;
  run["weights"] = basins.weights;
  if (basins.succeeded > 0) {
    run["fractions"] = basins.fractions;
    run["standard_errors"] = basins.standard_errors;
    run["z_scores"] = basins.z_scores;
  } else {
    // With no successful sample there is no fraction to compare.
    const nlohmann::json nulls(std::vector<std::nullptr_t>(basins.counts.size(), nullptr));
    run["fractions"] = nulls;
    run["standard_errors"] = nulls;
    run["z_scores"] = nulls;
  }
  run["failures"] = {{"max_steps_reached", steps.max_steps_reached},
                     {"non_finite_state", steps.non_finite_state}};
  run["steps"] = {
      {"mean_accepted", steps.mean_accepted},
      {"max_accepted", steps.max_accepted},
      {"p50_accepted", steps.p50},
      {"p90_accepted", steps.p90},
      {"p99_accepted", steps.p99},
      {"percentiles_capped", steps.percentiles_capped},
      {"mean_rejected", steps.mean_rejected},
      {"mean_evaluations", steps.mean_evaluations},
      {"total_evaluations", steps.total_evaluations},
      {"evaluations_per_second",
       result.wall_seconds > 0
           ? static_cast<double>(steps.total_evaluations) / result.wall_seconds
           : 0.0}};
  return run;
}

void print_table(const nlohmann::json& summary) {
  const auto& opts = summary["options"];
  const auto& mix = summary["mixture"];
  std::printf("fmg sample: %s (K = %d, d = %d), N = %llu, %s, eps %s, %s\n",
              mix["source"].get<std::string>().c_str(),
              mix["num_atoms"].get<int>(), mix["dim"].get<int>(),
              static_cast<unsigned long long>(opts["samples"].get<std::uint64_t>()),
              opts["method_description"].get<std::string>().c_str(),
              format_significant(opts["eps"].get<double>()).c_str(),
              opts["precision"].get<std::string>().c_str());
  std::printf("%-20s %5s %9s %9s %9s %7s\n", "schedule", "atom", "weight",
              "fraction", "std.err", "z");
  for (const auto& run : summary["runs"]) {
    const auto& fractions = run["fractions"];
    for (std::size_t k = 0; k < fractions.size(); ++k) {
      const auto value = [](const nlohmann::json& entry) {
        return entry.is_null() ? std::nan("") : entry.get<double>();
      };
      std::printf("%-20s %5zu %9.4f %9.6f %9.6f %7.2f\n",
                  k == 0 ? run["schedule"].get<std::string>().c_str() : "", k,
                  run["weights"][k].get<double>(), value(fractions[k]),
                  value(run["standard_errors"][k]), value(run["z_scores"][k]));
    }
    const auto& steps = run["steps"];
    std::printf(
        "%-20s steps mean %.1f, p50 %u, p99 %u, max %u; failures %llu; "
        "%s %s, %.3g s, %.3g samples/s\n",
        "", steps["mean_accepted"].get<double>(),
        steps["p50_accepted"].get<unsigned>(),
        steps["p99_accepted"].get<unsigned>(),
        steps["max_accepted"].get<unsigned>(),
        static_cast<unsigned long long>(
            run["failures"]["max_steps_reached"].get<std::uint64_t>() +
            run["failures"]["non_finite_state"].get<std::uint64_t>()),
        run["backend"].get<std::string>().c_str(),
        run["device"].get<std::string>().c_str(),
        run["wall_seconds"].get<double>(),
        run["samples_per_second"].get<double>());
  }
  std::fflush(stdout);
}

std::string method_description(const FlowRunOptions& options) {
  if (options.method == Method::dopri5) {
    return "dopri5 rtol " + format_significant(options.rtol) + " atol " +
           format_significant(options.atol);
  }
  return std::string(method_name(options.method)) + " with " +
         std::to_string(options.steps) + " steps";
}

void run_sample(const SampleArguments& args) {
  // Inputs first, so invalid input fails before any output file exists.
  const Mixture mixture = load_mixture(args.mixture_path);
  const std::vector<ScheduleKind> schedules = parse_schedules(args.schedules);

  std::optional<std::vector<double>> starts;
  std::uint64_t samples =
      args.samples.empty() ? 1000000 : parse_count(args.samples, "--n");
  if (!args.starts_path.empty()) {
    Matrix<double> matrix = read_npy_matrix<double>(args.starts_path, mixture.dim);
    if (!args.samples.empty() && samples != matrix.rows) {
      throw InvalidArgument("--n " + args.samples + " disagrees with the " +
                            std::to_string(matrix.rows) +
                            " starting points in " + args.starts_path +
                            "; omit --n to use them all");
    }
    samples = matrix.rows;
    starts = std::move(matrix.values);
  }

  FlowRunOptions options = to_run_options(args, samples);
  validate_mixture(mixture, options.precision);
  if (starts) {
    check_point_magnitudes(*starts, static_cast<std::size_t>(mixture.dim), args.starts_path,
                           options.precision);
  }
  validate_flow_options(options, mixture.dim);
  const int trajectories = parse_int_at_least(args.trajectories, "--trajectories", 0);
  const int trajectory_points =
      parse_int_at_least(args.trajectory_points, "--trajectory-points", 2);
  if (static_cast<std::uint64_t>(trajectories) > samples) {
    throw InvalidArgument("invalid --trajectories " +
                          std::to_string(trajectories) +
                          ": it exceeds the number of samples " +
                          std::to_string(samples));
  }
  if (trajectories > 0 && args.trajectories_path.empty()) {
    throw InvalidArgument("--trajectories needs --trajectories-out FILE.npy");
  }
  if (trajectories == 0 && !args.trajectories_path.empty()) {
    throw InvalidArgument("--trajectories-out needs --trajectories M, the number "
                          "of samples whose paths are recorded");
  }
  if (trajectories > 0) {
    // Trajectories stay in memory until written: M x points x d doubles.
    const double bytes = 8.0 * trajectories * trajectory_points * mixture.dim;
    require_memory(bytes, "--trajectories " + std::to_string(trajectories) +
                              " with --trajectory-points " +
                              std::to_string(trajectory_points) + " in d = " +
                              std::to_string(mixture.dim),
                   "record fewer trajectories or points");
  }
  // Fails here, before any work, when CUDA is requested but cannot run.
  resolve_backend(options.backend);

  // Stage every output now: an unwritable path fails before the run, and
  // nothing is renamed into place unless the whole command succeeds.
  OutputSet outputs;
  if (!args.mixture_path.empty()) outputs.add_input(args.mixture_path, "--mixture");
  if (!args.starts_path.empty()) outputs.add_input(args.starts_path, "--starts");
  AtomicFile* summary_file =
      args.summary_path.empty() ? nullptr : &outputs.add(args.summary_path, "--summary");
  const bool several = schedules.size() > 1;
  const auto path_for = [&](const std::string& path, ScheduleKind kind) {
    return several ? tagged_path(path, std::string(schedule_name(kind))) : path;
  };
  const NpyType value_type = options.precision == Precision::float32
                                 ? NpyType::float32
                                 : NpyType::float64;
  const std::size_t d = static_cast<std::size_t>(mixture.dim);

  std::vector<std::unique_ptr<NpyStream>> streams;
  auto open_stream = [&](const std::string& path, const std::string& option, NpyType type,
                         std::vector<std::size_t> shape) {
    streams.push_back(std::make_unique<NpyStream>(outputs.add(path, option), type,
                                                  std::move(shape)));
    return streams.back().get();
  };

  nlohmann::json summary;
  summary["fmg_version"] = FMG_VERSION;
  summary["command"] = "sample";
  nlohmann::json mixture_json = mixture_to_json(mixture);
  mixture_json["source"] = mixture_source(args.mixture_path);
  mixture_json["num_atoms"] = mixture.num_atoms();
  mixture_json["dim"] = mixture.dim;
  summary["mixture"] = mixture_json;
  summary["options"] = {
      {"method", method_name(options.method)},
      {"method_description", method_description(options)},
      {"steps", options.steps},
      {"rtol", options.rtol},
      {"atol", options.atol},
      {"initial_step", options.initial_step},
      {"max_steps", options.max_steps},
      {"eps", options.eps},
      {"t_end", 1.0 - options.eps},
      {"seed", options.seed},
      {"samples", samples},
      {"precision", precision_name(options.precision)},
      {"backend_requested", args.backend},
      {"velocity_path_requested", args.velocity_path},
      {"chunk_size", options.chunk_size},
      {"starts", args.starts_path.empty() ? nlohmann::json("philox")
                                          : nlohmann::json(args.starts_path)}};
  summary["runs"] = nlohmann::json::array();
  std::vector<std::string> warnings;
  if (std::optional<std::string> warning = ignored_method_option_warning(args, options)) {
    warnings.push_back(std::move(*warning));
  }
  if (std::optional<std::string> warning = relative_tolerance_warning(mixture, options)) {
    warnings.push_back(std::move(*warning));
  }
  // The atoms as integrated: a far mixture is shifted first, which keeps in
  // float the digits that tell close atoms apart.
  const Mixture integrated = shifted_mixture(mixture, flow_shift(mixture));
  for (std::vector<std::string> group :
       {coinciding_atom_warnings(integrated, options.precision),
        close_atom_warnings(integrated, options.precision, schedules, options.eps),
        fixed_step_warnings(mixture, options, schedules)}) {
    warnings.insert(warnings.end(), group.begin(), group.end());
  }
  nlohmann::json files = nlohmann::json::object();

  NpyStream* base_stream = nullptr;
  if (!args.base_path.empty()) {
    base_stream = open_stream(args.base_path, "--base-out", value_type, {samples, d});
    files["base_samples"] = args.base_path;
  }

  // Every array file of every schedule is opened before the first run.
  struct ScheduleStreams {
    NpyStream* endpoints = nullptr;
    NpyStream* labels = nullptr;
    NpyStream* trajectories = nullptr;
  };
  std::vector<ScheduleStreams> schedule_streams(schedules.size());
  for (std::size_t s = 0; s < schedules.size(); ++s) {
    const std::string tag(schedule_name(schedules[s]));
    if (!args.endpoints_path.empty()) {
      const std::string path = path_for(args.endpoints_path, schedules[s]);
      schedule_streams[s].endpoints = open_stream(path, "--endpoints-out", value_type, {samples, d});
      files["endpoints_" + tag] = path;
    }
    if (!args.labels_path.empty()) {
      const std::string path = path_for(args.labels_path, schedules[s]);
      schedule_streams[s].labels = open_stream(path, "--labels-out", NpyType::int32, {samples});
      files["labels_" + tag] = path;
    }
    if (trajectories > 0) {
      const std::string path = path_for(args.trajectories_path, schedules[s]);
      schedule_streams[s].trajectories = open_stream(
          path, "--trajectories-out", NpyType::float64,
          {static_cast<std::size_t>(trajectories),
           static_cast<std::size_t>(trajectory_points), d});
      files["trajectories_" + tag] = path;
    }
  }

  for (std::size_t s = 0; s < schedules.size(); ++s) {
    options.schedule = schedules[s];
    FlowRunIo io;
    io.starts = starts ? &*starts : nullptr;
    if (base_stream != nullptr && s == 0) {
      io.base_samples = [base_stream](const void* data, std::size_t bytes) {
        base_stream->append(data, bytes);
      };
    }
    if (NpyStream* stream = schedule_streams[s].endpoints) {
      io.endpoints = [stream](const void* data, std::size_t bytes) {
        stream->append(data, bytes);
      };
    }
    if (NpyStream* stream = schedule_streams[s].labels) {
      io.labels = [stream](const void* data, std::size_t bytes) {
        stream->append(data, bytes);
      };
    }

    const FlowRunResult result = run_flow(mixture, options, io);
    const BasinStatistics basins = basin_statistics(result.tally, mixture.weights);
    const StepStatistics steps = step_statistics(result.tally);
    nlohmann::json run = run_json(options, result, basins, steps);
    if (s == 0) {
      if (std::optional<std::string> warning =
              ignored_no_simd_warning(args, result, mixture.dim)) {
        warnings.push_back(std::move(*warning));
      }
    }

    if (NpyStream* stream = schedule_streams[s].trajectories) {
      const Trajectories paths = record_trajectories(
          mixture, options, static_cast<std::size_t>(trajectories), trajectory_points,
          starts ? &*starts : nullptr);
      stream->append(paths.states.data(), paths.states.size() * sizeof(double));
      run["trajectories"] = {
          {"file", path_for(args.trajectories_path, options.schedule)},
          {"count", paths.count},
          {"times", paths.times}};
    }
    if (std::optional<std::string> warning = failure_warning(options, basins, steps)) {
      warnings.push_back(std::move(*warning));
    }
    summary["runs"].push_back(run);
  }
  summary["files"] = files;
  summary["warnings"] = warnings;
  // Warnings go to stderr even with --quiet, which silences progress only.
  for (const std::string& warning : warnings) {
    std::fprintf(stderr, "fmg: warning: %s\n", warning.c_str());
  }

  for (const auto& stream : streams) stream->finish();
  if (summary_file != nullptr) emit_json(summary, summary_file);
  outputs.commit_all();

  if (args.json_to_stdout) {
    emit_json(summary, nullptr);
  } else {
    print_table(summary);
  }
}

}  // namespace

void add_sample_command(CLI::App& app) {
  auto args = std::make_shared<SampleArguments>();
  CLI::App* cmd = app.add_subcommand(
      "sample",
      "Integrate the flow from N base samples to the mixture and report the "
      "fraction of samples reaching each atom. With no options: the built-in "
      "three-atom example, N = 1e6, every schedule.");
  cmd->add_option("--mixture", args->mixture_path,
                  "Mixture JSON file {\"atoms\": [[...], ...], \"weights\": "
                  "[...]}; default: the built-in three-atom example");
  cmd->add_option("--schedule", args->schedules,
                  "linear, variance-preserving (vp), cosine, or all")
      ->capture_default_str();
  cmd->add_option("-n,--n", args->samples,
                  "Number of samples, as an integer or in scientific notation "
                  "(1e9); default 1e6, or the rows of --starts");
  cmd->add_option("--method", args->method, "euler, heun, rk4 or dopri5")
      ->capture_default_str();
  cmd->add_option("--steps", args->steps,
                  "Steps of the fixed-step methods euler, heun and rk4, as an "
                  "integer or in scientific notation; dopri5 ignores it and "
                  "warns")
      ->capture_default_str();
  cmd->add_option("--rtol", args->rtol,
                  "Dormand-Prince relative tolerance; default 1e-6 in double, "
                  "1e-5 in float. The fixed-step methods ignore it and warn, as "
                  "they do for --atol, --initial-step and --max-steps");
  cmd->add_option("--atol", args->atol,
                  "Dormand-Prince absolute tolerance, in units of the atoms' "
                  "coordinates; default 1e-9 in double, 1e-6 in float");
  cmd->add_option("--initial-step", args->initial_step,
                  "Dormand-Prince first step in time units; 0 chooses it per "
                  "sample")
      ->capture_default_str();
  cmd->add_option("--max-steps", args->max_steps,
                  "Dormand-Prince limit on attempted steps per sample, as an "
                  "integer or in scientific notation")
      ->capture_default_str();
  cmd->add_option("--eps", args->eps,
                  "Integrate to t_end = 1 - eps (the velocity is singular at "
                  "t = 1)")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed,
                  "Seed of the counter-based (Philox) base samples")
      ->capture_default_str();
  cmd->add_option("--backend", args->backend,
                  "auto (CUDA when a device is present, else CPU), cpu or cuda")
      ->capture_default_str();
  cmd->add_option("--velocity-path", args->velocity_path,
                  "direct (each sample sums over the atoms), matrix (blocks "
                  "of samples in lockstep, distances as matrix products) or "
                  "auto (CPU: matrix when d >= 9 and K * d >= 32; CUDA: "
                  "direct)")
      ->capture_default_str();
  cmd->add_option("--precision", args->precision, "double or float")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads,
                  "CPU threads, 0 to 1024; 0 uses OpenMP's default (OMP_NUM_THREADS)")
      ->capture_default_str();
  cmd->add_option("--chunk-size", args->chunk_size,
                  "Samples per chunk; memory use grows with it, not with N")
      ->capture_default_str();
  cmd->add_option("--starts", args->starts_path,
                  "Starting points as an (N, d) float64 or float32 .npy file, "
                  "in place of the Philox base samples; N defaults to its rows");
  cmd->add_option("--summary", args->summary_path,
                  "Write the JSON summary to this file");
  cmd->add_flag("--json", args->json_to_stdout,
                "Print the JSON summary on stdout instead of the table");
  cmd->add_option("--endpoints-out", args->endpoints_path,
                  "Write the (N, d) endpoints at t_end to this .npy file; "
                  "with several schedules the schedule name is appended");
  cmd->add_option("--labels-out", args->labels_path,
                  "Write the (N,) int32 atom labels (-1 for failed samples)");
  cmd->add_option("--base-out", args->base_path,
                  "Write the (N, d) base samples to this .npy file");
  cmd->add_option("--trajectories", args->trajectories,
                  "Record the trajectories of the first M samples")
      ->capture_default_str();
  cmd->add_option("--trajectory-points", args->trajectory_points,
                  "Points of the uniform time grid on [0, t_end]")
      ->capture_default_str();
  cmd->add_option("--trajectories-out", args->trajectories_path,
                  "Write the (M, points, d) float64 trajectories to this .npy "
                  "file; the times are in the summary");
  cmd->add_flag("--no-simd", args->no_simd,
                "CPU backend: integrate one sample at a time instead of 32 "
                "(double) or 64 (float) in lockstep across SIMD lanes, for d <= 8; "
                "with the CUDA backend, the matrix path or d > 8 it has no effect "
                "and warns");
  cmd->add_flag("-q,--quiet", args->quiet, quiet_help);
  cmd->callback([args, cmd]() {
    reject_empty_values(*cmd);
    args->given_options = given_options(*cmd);
    run_sample(*args);
  });
}

}  // namespace fmg::cli
