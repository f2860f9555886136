// fmg_flow_bench: times fmg::run_flow for one or more sample counts and
// writes one JSON record per configuration (JSON Lines) with throughput,
// endpoint accuracy against a tight reference and peak resident memory.
//
//   fmg_flow_bench                                  # built-in example, short
//   fmg_flow_bench --n 1e6,1e7 --rtol 1e-8 --atol 1e-10 --out flow.jsonl
//   fmg_flow_bench --K 100 --d 16 --n 1e5
//   fmg_flow_bench --scaling --out scaling.jsonl
//   fmg_flow_bench --scaling --backend cuda --scaling-n 1e6,1e7,1e8,1e9
//   fmg_flow_bench --crossover --backend cpu --out crossover.jsonl
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/flow/bench_problem.hpp"
#include "bench/flow/crossover.hpp"
#include "bench/flow/endpoint_accuracy.hpp"
#include "host/driver.hpp"
#include "host/errors.hpp"
#include "host/format.hpp"
#include "host/names.hpp"

namespace {

using nlohmann::json;

/// Accuracy samples per configuration when --accuracy-samples is not given.
constexpr int default_accuracy_samples = 2000;
/// Accuracy samples with --scaling. A reference sample costs thousands of
/// velocity evaluations of O(K d) each, which outweighs the timed runs of
/// the K and d sweeps at 2000 samples.
constexpr int default_scaling_accuracy_samples = 100;
/// Samples of the untimed warm-up run when the accuracy check is off.
constexpr int warm_up_samples = 1000;

struct BenchArguments {
  std::string n_list = "1e4,1e5,1e6";
  std::string mixture_path;
  std::optional<int> num_atoms;
  std::optional<int> dim;
  std::string schedules = "linear";
  std::string method = "dopri5";
  int steps = 100;
  std::string rtol, atol;
  double eps = 1e-3;
  std::uint64_t seed = 20260617;
  std::string precision = "double";
  std::string backend = "auto";
  int threads = 0;
  bool no_simd = false;
  std::string chunk_size = "1048576";
  std::optional<int> accuracy_samples;
  int repeat = 1;
  std::string out_path;
  bool scaling = false;
  std::string scaling_n = "1e3,1e4,1e5,1e6,1e7";
  std::string scaling_k = "1,10,100,1000,10000";
  std::string scaling_d = "1,4,16,64,256,1024";
  std::string scaling_fixed_n = "1e3";
  std::string velocity_path = "auto";
  bool crossover = false;
  std::string crossover_k = "1,10,100,1000,10000";
  std::string crossover_d = "1,4,16,64,256,1024";
  double crossover_seconds = 1.0;
  bool quiet = false;
};

/// Parses a count written as an integer or in scientific notation ("1e6"),
/// which must be a whole number in [1, max].
std::uint64_t parse_count(const std::string& text, const std::string& option,
                          double max = 9.2e18) {
  const std::string prefix = "invalid " + option + " '" + text + "': ";
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end == text.c_str() || *end != '\0') {
    throw fmg::InvalidArgument(prefix + "it is not a number");
  }
  if (!(value >= 1.0) || value > max || std::floor(value) != value) {
    throw fmg::InvalidArgument(prefix + "it must be a whole number in [1, " +
                               fmg::format_number(max) + "]");
  }
  // Integers above 2^53 are read exactly as integers, not through double.
  if (text.find_first_not_of("0123456789") == std::string::npos) {
    return std::strtoull(text.c_str(), nullptr, 10);
  }
  return static_cast<std::uint64_t>(value);
}

/// Parses a comma-separated list of counts, as parse_count does each item.
std::vector<std::uint64_t> parse_count_list(const std::string& text,
                                            const std::string& option,
                                            double max = 9.2e18) {
  std::vector<std::uint64_t> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    values.push_back(parse_count(item, option, max));
  }
  if (values.empty()) {
    throw fmg::InvalidArgument("invalid " + option +
                               " '': give one or more counts, such as 1e3,1e4");
  }
  return values;
}

double parse_real(const std::string& text, const std::string& option) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end == text.c_str() || *end != '\0') {
    throw fmg::InvalidArgument("invalid " + option + " '" + text +
                               "': it is not a number");
  }
  return value;
}

/// Returns the run options shared by every configuration; the sample count
/// is set per configuration.
fmg::FlowRunOptions base_options(const BenchArguments& args) {
  fmg::FlowRunOptions options;
  options.method = fmg::parse_method(args.method);
  options.precision = fmg::parse_precision(args.precision);
  options.backend = fmg::parse_backend(args.backend);
  const bool single = options.precision == fmg::Precision::float32;
  // The defaults of `fmg sample`.
  options.rtol = args.rtol.empty() ? (single ? 1e-5 : 1e-6)
                                   : parse_real(args.rtol, "--rtol");
  options.atol = args.atol.empty() ? (single ? 1e-6 : 1e-9)
                                   : parse_real(args.atol, "--atol");
  options.steps = args.steps;
  options.eps = args.eps;
  options.seed = args.seed;
  options.threads = args.threads;
  options.cpu_simd = !args.no_simd;
  options.velocity_path = fmg::parse_velocity_path(args.velocity_path);
  options.chunk_size = static_cast<std::size_t>(
      parse_count(args.chunk_size, "--chunk-size", 1e12));
  options.progress = !args.quiet;
  return options;
}

/// Peak resident set size of this process so far, in bytes.
long long peak_resident_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<long long>(usage.ru_maxrss) * 1024;  // KiB on Linux.
}

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const std::size_t colon = line.find(':');
      if (colon != std::string::npos && colon + 2 <= line.size()) {
        return line.substr(colon + 2);
      }
    }
  }
  return "unknown";
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

/// Returns a sink that appends the values of the run's precision to `out`
/// as doubles.
fmg::ArraySink collect_as_double(std::vector<double>& out,
                                 fmg::Precision precision) {
  return [&out, precision](const void* data, std::size_t bytes) {
    if (precision == fmg::Precision::float32) {
      const auto* values = static_cast<const float*>(data);
      out.insert(out.end(), values, values + bytes / sizeof(float));
    } else {
      const auto* values = static_cast<const double*>(data);
      out.insert(out.end(), values, values + bytes / sizeof(double));
    }
  };
}

/// Endpoints of the first samples of a run and their starting points, both
/// as doubles, row-major.
struct FirstSamples {
  std::vector<double> starts;
  std::vector<double> endpoints;
};

/// Runs the first `count` samples of a configuration with the same backend
/// and precision, keeping their starting points and endpoints when `keep`
/// is set. Sample i depends only on (seed, i), so these are the first
/// samples of the timed run too.
FirstSamples run_first_samples(const fmg::bench::BenchProblem& problem,
                               const fmg::FlowRunOptions& options,
                               std::size_t count, bool keep) {
  fmg::FlowRunOptions small = options;
  small.num_samples = count;
  small.progress = false;
  FirstSamples first;
  fmg::FlowRunIo io;
  if (keep) {
    io.base_samples = collect_as_double(first.starts, options.precision);
    io.endpoints = collect_as_double(first.endpoints, options.precision);
  }
  fmg::run_flow(problem.mixture, small, io);
  return first;
}

/// Compares `first` with reference endpoints of its starting points.
json measure_accuracy(const fmg::bench::BenchProblem& problem,
                      const fmg::FlowRunOptions& options,
                      const FirstSamples& first) {
  const fmg::bench::ReferenceEndpoints reference =
      fmg::bench::compute_reference_endpoints(problem.mixture,
                                              options.schedule, options.eps,
                                              first.starts, options.threads);
  const fmg::bench::EndpointErrors errors = fmg::bench::compare_endpoints(
      first.endpoints, reference.endpoints, problem.mixture.dim);

  // JSON has no NaN, so missing statistics become null.
  auto number_or_null = [](double value) {
    return std::isfinite(value) ? json(value) : json(nullptr);
  };
  return {{"samples", first.starts.size() / problem.mixture.dim},
          {"compared", errors.samples},
          {"excluded", errors.excluded},
          {"max_distance", number_or_null(errors.max_distance)},
          {"median_distance", number_or_null(errors.median_distance)},
          {"reference",
           {{"method", "fmg::integrate_sample dopri5, double"},
            {"rtol", fmg::bench::reference_rtol},
            {"atol", fmg::bench::reference_atol},
            {"failures", reference.failures},
            {"wall_seconds", reference.wall_seconds}}}};
}

/// Runs one configuration and returns its record. The first samples run
/// before the timed runs, so thread start-up and first-touch costs are not
/// timed. The fastest of `repeat` timed runs gives the rates.
json run_configuration(const fmg::bench::BenchProblem& problem,
                       fmg::FlowRunOptions options, std::uint64_t n,
                       int accuracy_samples, int repeat,
                       const std::string& sweep) {
  options.num_samples = n;
  const bool check = accuracy_samples > 0;
  const std::size_t first_count = static_cast<std::size_t>(std::min<std::uint64_t>(
      n, static_cast<std::uint64_t>(check ? accuracy_samples
                                          : warm_up_samples)));
  const FirstSamples first =
      run_first_samples(problem, options, first_count, check);

  fmg::FlowRunResult result = fmg::run_flow(problem.mixture, options);
  json walls = json::array({result.wall_seconds});
  for (int r = 1; r < repeat; ++r) {
    fmg::FlowRunResult again = fmg::run_flow(problem.mixture, options);
    walls.push_back(again.wall_seconds);
    if (again.wall_seconds < result.wall_seconds) result = std::move(again);
  }
  const fmg::FlowTally& tally = result.tally;

  json record;
  record["benchmark"] = "fmg_flow_bench";
  record["sweep"] = sweep;
  record["problem"] = {{"mixture", problem.name},
                       {"num_atoms", problem.mixture.num_atoms()},
                       {"dim", problem.mixture.dim}};
  record["schedule"] = std::string(fmg::schedule_name(options.schedule));
  record["method"] = std::string(fmg::method_name(options.method));
  if (options.method == fmg::Method::dopri5) {
    record["rtol"] = options.rtol;
    record["atol"] = options.atol;
  } else {
    record["steps"] = options.steps;
  }
  record["eps"] = options.eps;
  record["seed"] = options.seed;
  record["backend"] = result.backend;
  record["device"] = result.device;
  record["velocity_path"] = result.velocity_path;
  record["precision"] = std::string(fmg::precision_name(options.precision));
  record["n"] = n;
  record["chunk_size"] = options.chunk_size;
  record["cpu_simd"] = options.cpu_simd;
  record["wall_seconds"] = result.wall_seconds;
  record["wall_seconds_all"] = walls;
  record["samples_per_second"] =
      static_cast<double>(n) / result.wall_seconds;
  record["velocity_evaluations"] = tally.evaluations_sum;
  record["velocity_evaluations_per_second"] =
      static_cast<double>(tally.evaluations_sum) / result.wall_seconds;
  record["accepted_steps_mean"] =
      static_cast<double>(tally.accepted_sum) / static_cast<double>(n);
  record["rejected_steps_mean"] =
      static_cast<double>(tally.rejected_sum) / static_cast<double>(n);
  record["failures"] = tally.status_counts[1] + tally.status_counts[2];

  record["accuracy"] =
      check ? measure_accuracy(problem, options, first) : json(nullptr);

  // getrusage reports the peak of the whole process so far, so a record
  // after a larger configuration carries that configuration's peak.
  record["peak_resident_bytes"] = peak_resident_bytes();
  record["host"] = {{"cpu", cpu_model()},
                    {"hardware_threads", std::thread::hardware_concurrency()}};
  record["timestamp"] = utc_timestamp();
  return record;
}

/// Writes each record as one line to stdout and, when open, to a file,
/// flushing after each so a long sweep leaves its finished records behind.
class RecordWriter {
 public:
  explicit RecordWriter(const std::string& path) : path_(path) {
    if (path.empty()) return;
    file_.open(path, std::ios::out | std::ios::trunc);
    if (!file_) {
      throw fmg::FileError("cannot open " + path + " for writing: " +
                           std::strerror(errno));
    }
  }

  void write(const json& record) {
    const std::string line = record.dump();
    std::cout << line << '\n' << std::flush;
    if (!path_.empty()) {
      file_ << line << '\n' << std::flush;
      if (!file_) {
        throw fmg::FileError("failed to write a record to " + path_ + ": " +
                             std::strerror(errno));
      }
    }
  }

 private:
  std::string path_;
  std::ofstream file_;
};

void log_record(const json& record, bool quiet) {
  if (quiet) return;
  const json& accuracy = record["accuracy"];
  std::fprintf(stderr,
               "fmg_flow_bench: sweep %s, K %d, d %d, N %llu: %.3f s, "
               "%.4g samples/s, max error %s\n",
               record["sweep"].get<std::string>().c_str(),
               record["problem"]["num_atoms"].get<int>(),
               record["problem"]["dim"].get<int>(),
               static_cast<unsigned long long>(record["n"].get<std::uint64_t>()),
               record["wall_seconds"].get<double>(),
               record["samples_per_second"].get<double>(),
               accuracy.is_null() ? "not measured"
                                  : accuracy["max_distance"].dump().c_str());
}

/// Times the direct and the matrix velocity path at every (K, d) of the
/// crossover grid, on synthetic mixtures, and writes one record per path
/// and point, the matrix record with its speed-up over the direct one.
void run_crossover(const BenchArguments& args, fmg::FlowRunOptions options) {
  const std::vector<std::uint64_t> k_values =
      parse_count_list(args.crossover_k, "--crossover-k", INT_MAX);
  const std::vector<std::uint64_t> d_values =
      parse_count_list(args.crossover_d, "--crossover-d", INT_MAX);
  if (!(args.crossover_seconds > 0.0)) {
    throw fmg::InvalidArgument("invalid --crossover-seconds " +
                               fmg::format_number(args.crossover_seconds) +
                               ": it must be positive");
  }
  options.schedule = fmg::parse_schedule(args.schedules);
  RecordWriter writer(args.out_path);
  for (const std::uint64_t k : k_values) {
    for (const std::uint64_t d : d_values) {
      const fmg::bench::BenchProblem problem = fmg::bench::synthetic_problem(
          static_cast<int>(k), static_cast<int>(d));
      json direct = fmg::bench::time_velocity_path(
          problem, options, fmg::VelocityPath::direct, args.crossover_seconds);
      json matrix = fmg::bench::time_velocity_path(
          problem, options, fmg::VelocityPath::matrix, args.crossover_seconds);
      const double speedup = matrix["samples_per_second"].get<double>() /
                             direct["samples_per_second"].get<double>();
      for (json* record : {&direct, &matrix}) {
        (*record)["benchmark"] = "fmg_flow_bench";
        (*record)["sweep"] = "crossover";
        (*record)["schedule"] = std::string(fmg::schedule_name(options.schedule));
        (*record)["host"] = {
            {"cpu", cpu_model()},
            {"hardware_threads", std::thread::hardware_concurrency()}};
        (*record)["timestamp"] = utc_timestamp();
      }
      matrix["speedup_over_direct"] = speedup;
      writer.write(direct);
      writer.write(matrix);
      if (!args.quiet) {
        std::fprintf(stderr,
                     "fmg_flow_bench: crossover K %llu, d %llu: direct %.4g, "
                     "matrix %.4g samples/s, speed-up %.3g\n",
                     static_cast<unsigned long long>(k),
                     static_cast<unsigned long long>(d),
                     direct["samples_per_second"].get<double>(),
                     matrix["samples_per_second"].get<double>(), speedup);
      }
    }
  }
}

void run_benchmark(const BenchArguments& args) {
  fmg::FlowRunOptions options = base_options(args);
  if (args.crossover) {
    if (args.scaling) {
      throw fmg::InvalidArgument(
          "--crossover cannot be combined with --scaling; run them one at a "
          "time");
    }
    run_crossover(args, options);
    return;
  }
  const std::vector<fmg::ScheduleKind> schedules =
      fmg::parse_schedules(args.schedules);
  const int accuracy_samples = args.accuracy_samples.value_or(
      args.scaling ? default_scaling_accuracy_samples
                   : default_accuracy_samples);
  if (accuracy_samples < 0) {
    throw fmg::InvalidArgument("invalid --accuracy-samples " +
                               std::to_string(accuracy_samples) +
                               ": it must be 0 (no accuracy check) or more");
  }

  if (args.repeat < 1) {
    throw fmg::InvalidArgument("invalid --repeat " +
                               std::to_string(args.repeat) +
                               ": it must be at least 1");
  }

  const bool synthetic = args.num_atoms.has_value() || args.dim.has_value();
  if (synthetic && !args.mixture_path.empty()) {
    throw fmg::InvalidArgument(
        "--mixture cannot be combined with --K or --d; give either a mixture "
        "file or the size of a synthetic mixture");
  }
  const int fixed_atoms = args.num_atoms.value_or(3);
  const int fixed_dim = args.dim.value_or(2);
  const fmg::bench::BenchProblem main_problem =
      !args.mixture_path.empty()
          ? fmg::bench::file_problem(args.mixture_path)
          : synthetic ? fmg::bench::synthetic_problem(fixed_atoms, fixed_dim)
                      : fmg::bench::builtin_problem();

  // Every list is parsed before the first run, so a typo fails at once.
  const std::vector<std::uint64_t> n_values =
      parse_count_list(args.scaling ? args.scaling_n : args.n_list,
                       args.scaling ? "--scaling-n" : "--n");
  std::vector<std::uint64_t> k_values, d_values;
  std::uint64_t fixed_n = 0;
  if (args.scaling) {
    k_values = parse_count_list(args.scaling_k, "--scaling-k", INT_MAX);
    d_values = parse_count_list(args.scaling_d, "--scaling-d", INT_MAX);
    fixed_n = parse_count(args.scaling_fixed_n, "--scaling-fixed-n");
  }

  RecordWriter writer(args.out_path);
  auto run = [&](const fmg::bench::BenchProblem& problem, std::uint64_t n,
                 const std::string& sweep) {
    const json record = run_configuration(problem, options, n,
                                          accuracy_samples, args.repeat, sweep);
    writer.write(record);
    log_record(record, args.quiet);
  };

  for (const fmg::ScheduleKind schedule : schedules) {
    options.schedule = schedule;
    const std::string n_sweep = args.scaling ? "n" : "none";
    for (const std::uint64_t n : n_values) run(main_problem, n, n_sweep);
    for (const std::uint64_t k : k_values) {
      run(fmg::bench::synthetic_problem(static_cast<int>(k), fixed_dim),
          fixed_n, "k");
    }
    for (const std::uint64_t d : d_values) {
      run(fmg::bench::synthetic_problem(fixed_atoms, static_cast<int>(d)),
          fixed_n, "d");
    }
  }
}

void add_options(CLI::App& app, BenchArguments& args) {
  app.add_option("--n", args.n_list,
                 "sample counts, comma-separated, integers or scientific "
                 "notation (1e6)")
      ->capture_default_str();
  app.add_option("--mixture", args.mixture_path,
                 "mixture JSON file (default: the built-in example)");
  app.add_option("--K", args.num_atoms,
                 "atoms of a synthetic mixture: equal weights, coordinates "
                 "from a fixed hash in [-2, 2) (default 3 when --d is given)");
  app.add_option("--d", args.dim,
                 "dimension of a synthetic mixture (default 2 when --K is "
                 "given)");

  app.add_option("--schedule", args.schedules,
                 "linear, variance-preserving (vp), cosine or all")
      ->capture_default_str();
  app.add_option("--method", args.method, "euler, heun, rk4 or dopri5")
      ->capture_default_str();
  app.add_option("--steps", args.steps, "steps of the fixed-step methods")
      ->capture_default_str();
  app.add_option("--rtol", args.rtol,
                 "Dormand-Prince relative tolerance (default 1e-6 in double, "
                 "1e-5 in float)");
  app.add_option("--atol", args.atol,
                 "Dormand-Prince absolute tolerance (default 1e-9 in double, "
                 "1e-6 in float)");
  app.add_option("--eps", args.eps, "the runs end at t = 1 - eps")
      ->capture_default_str();
  app.add_option("--seed", args.seed, "key of the Philox base samples")
      ->capture_default_str();

  app.add_option("--precision", args.precision, "double or float")
      ->capture_default_str();
  app.add_option("--backend", args.backend, "auto, cpu or cuda")
      ->capture_default_str();
  app.add_option("--threads", args.threads,
                 "CPU threads of the runs and the reference (0: OpenMP "
                 "default)")
      ->capture_default_str();
  app.add_flag("--no-simd", args.no_simd,
               "CPU backend: integrate one sample per thread at a time, "
               "without the SIMD lanes used for d <= 8");
  app.add_option("--chunk-size", args.chunk_size, "samples per chunk")
      ->capture_default_str();

  app.add_option("--accuracy-samples", args.accuracy_samples,
                 "compare the endpoints of the first min(N, this) samples "
                 "with the reference; 0 skips the check (default 2000, or "
                 "100 with --scaling)");
  app.add_option("--repeat", args.repeat,
                 "timed runs per configuration; the fastest gives the rates")
      ->capture_default_str();
  app.add_option("--out", args.out_path,
                 "also write the JSON Lines records to this file "
                 "(overwritten)");

  app.add_flag("--scaling", args.scaling,
               "sweep N over --scaling-n, then K over --scaling-k (synthetic, "
               "d = --d or 2) and d over --scaling-d (synthetic, K = --K or "
               "3) at N = --scaling-fixed-n");
  app.add_option("--scaling-n", args.scaling_n, "sample counts of the N sweep")
      ->capture_default_str();
  app.add_option("--scaling-k", args.scaling_k, "atom counts of the K sweep")
      ->capture_default_str();
  app.add_option("--scaling-d", args.scaling_d, "dimensions of the d sweep")
      ->capture_default_str();
  app.add_option("--scaling-fixed-n", args.scaling_fixed_n,
                 "sample count of the K and d sweeps")
      ->capture_default_str();

  app.add_option("--velocity-path", args.velocity_path,
                 "auto, direct or matrix: how the CPU backend evaluates "
                 "velocities")
      ->capture_default_str();
  app.add_flag("--crossover", args.crossover,
               "time the direct and the matrix velocity path on synthetic "
               "mixtures over --crossover-k x --crossover-d, one schedule, "
               "N grown until a run takes about --crossover-seconds");
  app.add_option("--crossover-k", args.crossover_k,
                 "atom counts of the crossover grid")
      ->capture_default_str();
  app.add_option("--crossover-d", args.crossover_d,
                 "dimensions of the crossover grid")
      ->capture_default_str();
  app.add_option("--crossover-seconds", args.crossover_seconds,
                 "target wall time of each timed run, in seconds")
      ->capture_default_str();

  app.add_flag("-q,--quiet", args.quiet, "no progress lines on stderr");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Times fmg's flow driver on large sample counts and writes one JSON "
      "record per configuration (JSON Lines) to stdout."};
  BenchArguments args;
  add_options(app, args);
  CLI11_PARSE(app, argc, argv);

  try {
    run_benchmark(args);
  } catch (const fmg::InvalidArgument& error) {
    std::fprintf(stderr, "fmg_flow_bench: error: %s\n", error.what());
    return 2;
  } catch (const fmg::FileError& error) {
    std::fprintf(stderr, "fmg_flow_bench: error: %s\n", error.what());
    return 3;
  } catch (const fmg::Unavailable& error) {
    std::fprintf(stderr, "fmg_flow_bench: error: %s\n", error.what());
    return 4;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "fmg_flow_bench: error: %s\n", error.what());
    return 1;
  }
  return 0;
}
