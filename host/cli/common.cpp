#include "host/cli/common.hpp"

#include <sys/statvfs.h>

#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <sstream>

#include "host/errors.hpp"
#include "host/format.hpp"

namespace fmg::cli {

namespace {

// Returns the value of `text` after checking that it is a number in decimal
// notation. Throws InvalidArgument starting with `message_start` otherwise.
double parse_decimal(const std::string& text, const std::string& message_start) {
  if (text.empty()) throw InvalidArgument(message_start + "it is empty");
  if (text.find_first_not_of("0123456789.eE+-") != std::string::npos) {
    throw InvalidArgument(message_start +
                          "it is not a number in decimal notation; write an "
                          "integer or scientific notation such as 1e6");
  }
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0') {
    throw InvalidArgument(message_start + "it is not a number");
  }
  return value;
}

// Returns the whole number `value` parsed from `text`; callers check that
// it is below 2^64. Integers above 2^53 are parsed exactly as integers, not
// through double.
std::uint64_t exact_count(const std::string& text, double value) {
  if (text.find_first_not_of("0123456789") != std::string::npos) {
    return static_cast<std::uint64_t>(value);
  }
  return std::strtoull(text.c_str(), nullptr, 10);
}

}  // namespace

std::uint64_t parse_count(const std::string& text, const std::string& option) {
  const std::string message_start = "invalid " + option + " '" + text + "': ";
  const double value = parse_decimal(text, message_start);
  if (std::isnan(value) || value < 1.0) {
    throw InvalidArgument(message_start + "it must be at least 1");
  }
  if (!(value < 9.2233720368547758e18)) {
    throw InvalidArgument(message_start + "it must be below 2^63");
  }
  if (std::floor(value) != value) {
    throw InvalidArgument(message_start + "it must be a whole number");
  }
  return exact_count(text, value);
}

std::uint64_t parse_count_in_range(const std::string& text, const std::string& option,
                                   std::uint64_t min, std::uint64_t max) {
  const std::string message_start = "invalid " + option + " '" + text + "': ";
  const std::string range_message = message_start +
                                    "it is out of range; give a whole number from " +
                                    std::to_string(min) + " to " + std::to_string(max);
  const double value = parse_decimal(text, message_start);
  // static_cast<double>(max) may round up to 2^64, which the conversion in
  // exact_count must not reach.
  if (!(value >= static_cast<double>(min) && value <= static_cast<double>(max)) ||
      value >= 18446744073709551616.0) {
    throw InvalidArgument(range_message);
  }
  if (std::floor(value) != value) {
    throw InvalidArgument(message_start + "it must be a whole number");
  }
  const std::uint64_t count = exact_count(text, value);
  if (count < min || count > max) throw InvalidArgument(range_message);
  return count;
}

std::uint64_t parse_count_at_most(const std::string& text,
                                  const std::string& option, std::uint64_t max) {
  return parse_count_in_range(text, option, 1, max);
}

int parse_int_at_least(const std::string& text, const std::string& option, int min) {
  return static_cast<int>(parse_count_in_range(
      text, option, static_cast<std::uint64_t>(min),
      static_cast<std::uint64_t>(std::numeric_limits<int>::max())));
}

std::uint64_t parse_seed(const std::string& text, const std::string& option) {
  const std::string valid = ": a seed is a decimal integer from 0 to 18446744073709551615";
  if (text.empty() || text.size() > 20 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    throw InvalidArgument("invalid " + option + " '" + text + "'" + valid);
  }
  errno = 0;
  const unsigned long long value = std::strtoull(text.c_str(), nullptr, 10);
  if (errno == ERANGE) {
    throw InvalidArgument("invalid " + option + " '" + text + "'" + valid);
  }
  return value;
}

double parse_real(const std::string& text, const std::string& option) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end == text.c_str() || *end != '\0') {
    throw InvalidArgument("invalid " + option + " '" + text +
                          "': it is not a number");
  }
  return value;
}

double parse_finite(const std::string& text, const std::string& option) {
  const double value = parse_real(text, option);
  if (!std::isfinite(value)) {
    throw InvalidArgument("invalid " + option + " '" + text + "': it must be a finite number");
  }
  // strtod returns 0 for a nonzero value below the double range (1e-400).
  if (value == 0.0 && text.find_first_of("123456789") != std::string::npos) {
    const std::size_t exponent = text.find_first_of("eE");
    const bool zero_mantissa =
        text.substr(0, exponent).find_first_of("123456789") == std::string::npos;
    if (!zero_mantissa) {
      throw InvalidArgument("invalid " + option + " '" + text +
                            "': it is below the smallest double and would round to 0");
    }
  }
  return value;
}

std::vector<double> parse_times(const std::vector<std::string>& arguments) {
  // Split comma lists here, not in the option parser, which would drop
  // empty items such as the middle one of "0.5,,0.6" without a word.
  std::vector<std::string> items;
  for (const std::string& argument : arguments) {
    std::size_t begin = 0;
    for (;;) {
      const std::size_t comma = argument.find(',', begin);
      const std::string item = argument.substr(begin, comma == std::string::npos
                                                          ? std::string::npos
                                                          : comma - begin);
      if (item.empty()) {
        throw InvalidArgument("invalid --times '" + argument +
                              "': it has an empty item; separate times with single commas");
      }
      items.push_back(item);
      if (comma == std::string::npos) break;
      begin = comma + 1;
    }
  }
  std::vector<double> times;
  for (const std::string& item : items) {
    const std::size_t colon = item.find(':');
    if (colon == std::string::npos) {
      times.push_back(parse_real(item, "--times"));
      continue;
    }
    const std::size_t second = item.find(':', colon + 1);
    if (second == std::string::npos) {
      throw InvalidArgument("invalid --times '" + item +
                            "': expected START:STOP:COUNT such as 0.05:0.97:40");
    }
    const double start = parse_real(item.substr(0, colon), "--times");
    const double stop = parse_real(item.substr(colon + 1, second - colon - 1), "--times");
    const std::string count_message =
        "invalid --times '" + item +
        "': COUNT must be a whole number from 2 to 1000000";
    std::uint64_t count = 0;
    try {
      count = parse_count(item.substr(second + 1), "--times COUNT");
    } catch (const InvalidArgument&) {
      throw InvalidArgument(count_message);
    }
    if (count < 2 || count > 1000000) throw InvalidArgument(count_message);
    for (std::uint64_t i = 0; i < count; ++i) {
      times.push_back(i + 1 == count ? stop
                                     : start + (stop - start) * static_cast<double>(i) /
                                                   static_cast<double>(count - 1));
    }
  }
  if (times.empty()) {
    throw InvalidArgument("--times is empty: give one or more times in [0, 1)");
  }
  for (double t : times) {
    if (!(t >= 0.0 && t < 1.0)) {
      throw InvalidArgument("invalid time " + format_number(t) +
                            ": it must lie in [0, 1); the velocity is "
                            "singular at t = 1");
    }
  }
  return times;
}

Mixture load_mixture(const std::string& path) {
  return path.empty() ? builtin_example() : read_mixture_file(path);
}

void require_memory(double bytes, const std::string& what, const std::string& advice) {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double kibibytes = 0.0;
  std::string unit;
  while (meminfo >> key >> kibibytes >> unit) {
    if (key != "MemAvailable:") continue;
    const double available = kibibytes * 1024.0;
    if (bytes > available) {
      const auto gibibytes = [](double value) {
        std::ostringstream text;
        text.precision(3);
        text << value / 1073741824.0;
        return text.str();
      };
      throw InvalidArgument(what + " needs " + gibibytes(bytes) +
                            " GiB of memory, but only " + gibibytes(available) +
                            " GiB are available; " + advice);
    }
    return;
  }
}

void check_point_magnitudes(const std::vector<double>& points, std::size_t cols,
                            const std::string& path, Precision precision) {
  const double max_magnitude = max_coordinate_magnitude(precision);
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (std::fabs(points[i]) <= max_magnitude) continue;
    throw InvalidArgument(path + ": value " + format_number(points[i]) + " at row " +
                          std::to_string(i / cols) + ", column " +
                          std::to_string(i % cols) + " (0-based) is invalid; in " +
                          (precision == Precision::float32 ? "float32" : "float64") +
                          " coordinates must not exceed " +
                          max_coordinate_magnitude_text(precision) +
                          " in magnitude, so that squared distances stay finite");
  }
}

std::string mixture_source(const std::string& path) {
  return path.empty() ? std::string("built-in example") : path;
}

NpyStream::NpyStream(AtomicFile& file, NpyType type,
                     std::vector<std::size_t> shape)
    : file_(&file) {
  expected_bytes_ = npy_item_size(type);
  // The size in double first: the 64-bit product can wrap around.
  double bytes = static_cast<double>(expected_bytes_);
  for (std::size_t extent : shape) {
    bytes *= static_cast<double>(extent);
    expected_bytes_ *= extent;
  }
  if (!(bytes < 9.2e18)) {
    throw FileError(file.path() + ": the array needs about " + format_significant(bytes, 3) +
                    " bytes, more than a file can hold (2^63)");
  }
  // A file larger than the free space would fail only after the run, or
  // fill the disk; this check makes it fail first.
  const std::filesystem::path parent =
      std::filesystem::absolute(file.temporary_path()).parent_path();
  struct statvfs space {};
  if (::statvfs(parent.c_str(), &space) == 0) {
    const double available = static_cast<double>(space.f_bavail) *
                             static_cast<double>(space.f_frsize);
    if (static_cast<double>(expected_bytes_) > available) {
      throw FileError(file.path() + ": the array needs " +
                      std::to_string(expected_bytes_) + " bytes but only " +
                      std::to_string(static_cast<std::uint64_t>(available)) +
                      " bytes are free on its file system");
    }
  }
  write_npy_header(file.stream(), type, shape);
}

void NpyStream::append(const void* data, std::size_t bytes) {
  file_->stream().write(static_cast<const char*>(data),
                        static_cast<std::streamsize>(bytes));
  written_bytes_ += bytes;
}

void NpyStream::finish() const {
  if (written_bytes_ != expected_bytes_) {
    throw FileError(file_->path() + ": wrote " + std::to_string(written_bytes_) +
                    " data bytes where the header promises " +
                    std::to_string(expected_bytes_));
  }
}

void reject_empty_values(const CLI::App& command) {
  for (const CLI::Option* option : command.get_options()) {
    if (option->count() == 0 || option->get_expected_min() == 0) continue;
    for (const std::string& value : option->results()) {
      if (value.empty()) {
        throw InvalidArgument("option " + option->get_name() +
                              " was given an empty value; give a value or omit "
                              "the option");
      }
    }
  }
}

std::set<std::string> given_options(const CLI::App& command) {
  std::set<std::string> names;
  for (const CLI::Option* option : command.get_options()) {
    if (option->count() > 0) names.insert(option->get_name());
  }
  return names;
}

const char* const quiet_help =
    "No progress lines on stderr; warnings and errors still print there";

std::string format_significant(double value, int digits) {
  std::ostringstream out;
  out.precision(digits);
  out << value;
  return out.str();
}

std::string tagged_path(const std::string& path, const std::string& tag) {
  // A directory would otherwise become a file name beside it (DIR_linear);
  // reject it as a single output path is rejected.
  std::error_code error;
  if (!path.empty() && (path.back() == '/' || std::filesystem::is_directory(path, error))) {
    throw FileError("failed to create output file '" + path +
                    "': the path is a directory, not a file name");
  }
  if (path == "-") {
    throw InvalidArgument("invalid output path '-': it names a file to write, and '-' for "
                          "standard output is not supported here");
  }
  const std::size_t slash = path.find_last_of('/');
  const std::size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) {
    return path + "_" + tag;
  }
  return path.substr(0, dot) + "_" + tag + path.substr(dot);
}

void emit_json(const nlohmann::json& summary, AtomicFile* file) {
  if (file == nullptr) {
    std::cout << summary.dump(2) << "\n";
    std::cout.flush();
    return;
  }
  file->stream() << summary.dump(2) << "\n";
}

}  // namespace fmg::cli
