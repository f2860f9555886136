#include "host/io/mixture_io.hpp"
#include "host/format.hpp"

#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <utility>
#include <fstream>
#include <limits>
#include <system_error>

#include "host/errors.hpp"

namespace fmg {
namespace {

using nlohmann::json;

// Describes a JSON value for an error message: its type, and for a scalar
// its text, shortened to 40 characters.
std::string describe_json(const json& value) {
  std::string text = value.type_name();
  if (value.is_primitive()) {
    std::string dumped = value.dump();
    if (dumped.size() > 40) dumped = dumped.substr(0, 37) + "...";
    text += " " + dumped;
  }
  return text;
}

// Returns the explanation part of a nlohmann::json exception message,
// without the "[json.exception.parse_error.101] parse error at line 3,
// column 5: " prefix that nlohmann adds.
std::string json_error_detail(const std::string& what) {
  std::size_t start = what.find("] ");
  start = start == std::string::npos ? 0 : start + 2;
  if (what.compare(start, 11, "parse error") == 0) {
    const std::size_t colon = what.find(": ", start);
    if (colon != std::string::npos) start = colon + 2;
  }
  return what.substr(start);
}

// Returns the 1-based line and column of the 0-based byte `index` of `text`.
std::pair<std::size_t, std::size_t> line_and_column(const std::string& text,
                                                     std::size_t index) {
  index = std::min(index, text.size());
  const std::size_t line = 1 + static_cast<std::size_t>(
                                   std::count(text.begin(), text.begin() + index, '\n'));
  const std::size_t previous_newline = index == 0 ? std::string::npos
                                                  : text.rfind('\n', index - 1);
  const std::size_t line_start =
      previous_newline == std::string::npos ? 0 : previous_newline + 1;
  return {line, index - line_start + 1};
}

// Formats a position as "SOURCE:L:C: invalid JSON at line L, column C".
std::string invalid_json_at(const std::string& source, const std::string& text,
                            std::size_t index) {
  const auto [line, column] = line_and_column(text, index);
  return source + ":" + std::to_string(line) + ":" + std::to_string(column) +
         ": invalid JSON at line " + std::to_string(line) + ", column " +
         std::to_string(column);
}

// Builds the message for a JSON syntax error from its byte position, which
// nlohmann reports as the 1-based index of the last character it read.
std::string syntax_error_message(const std::string& text, const std::string& source,
                                 const json::parse_error& error) {
  const std::size_t index = error.byte == 0 ? 0 : error.byte - 1;
  return invalid_json_at(source, text, index) + ": " + json_error_detail(error.what());
}

// Builds the message for a number beyond the double range, such as 1e999,
// which nlohmann reports without a position: the number is found in the text.
std::string overflow_message(const std::string& text, const std::string& source,
                             const json::exception& error) {
  const std::string detail = json_error_detail(error.what());
  std::string where = source + ": invalid JSON";
  const std::size_t open = detail.find('\'');
  const std::size_t close = open == std::string::npos ? open : detail.find('\'', open + 1);
  if (close != std::string::npos) {
    const std::size_t at = text.find(detail.substr(open + 1, close - open - 1));
    if (at != std::string::npos) where = invalid_json_at(source, text, at);
  }
  return where + ": " + detail +
         "; numbers must be finite and within the float64 range (magnitude "
         "below about 1.8e308)";
}

// Sum of `values` with Neumaier's compensation, so that the check of
// sum(weights) == 1 does not depend on the number of atoms.
double compensated_sum(const std::vector<double>& values) {
  double sum = 0.0;
  double compensation = 0.0;
  for (const double value : values) {
    const double next = sum + value;
    if (std::fabs(sum) >= std::fabs(value)) {
      compensation += (sum - next) + value;
    } else {
      compensation += (value - next) + sum;
    }
    sum = next;
  }
  return sum + compensation;
}

// Appends the coordinates of every atom to `mixture` and sets its
// dimension, checking the structure of the "atoms" array.
void parse_atoms(const json& atoms, const std::string& source, Mixture& mixture) {
  if (!atoms.is_array() || atoms.empty()) {
    throw FileError(source + ": atoms must be a non-empty array of atoms such as "
                             "[[0, 1], [2, 3]], got " +
                    (atoms.is_array() ? std::string("an empty array") : describe_json(atoms)));
  }
  const std::size_t dim = atoms[0].is_array() ? atoms[0].size() : 0;
  if (dim > static_cast<std::size_t>(INT_MAX)) {
    throw FileError(source + ": atoms[0] has " + std::to_string(dim) +
                    " coordinates; at most " + std::to_string(INT_MAX) + " are supported");
  }
  mixture.dim = static_cast<int>(dim);
  mixture.atoms.reserve(atoms.size() * dim);

  for (std::size_t k = 0; k < atoms.size(); ++k) {
    const json& atom = atoms[k];
    const std::string atom_path = "atoms[" + std::to_string(k) + "]";
    if (!atom.is_array() || atom.empty()) {
      throw FileError(source + ": " + atom_path +
                      " must be a non-empty array of numbers, got " +
                      (atom.is_array() ? std::string("an empty array") : describe_json(atom)));
    }
    if (atom.size() != dim) {
      throw FileError(source + ": " + atom_path + " has " + std::to_string(atom.size()) +
                      " coordinates, but atoms[0] has " + std::to_string(dim) +
                      "; every atom needs the same dimension");
    }
    for (std::size_t j = 0; j < dim; ++j) {
      if (!atom[j].is_number()) {
        throw FileError(source + ": " + atom_path + "[" + std::to_string(j) +
                        "] must be a number, got " + describe_json(atom[j]));
      }
      mixture.atoms.push_back(atom[j].get<double>());
    }
  }
}

void parse_weights(const json& weights, const std::string& source, std::size_t num_atoms,
                   Mixture& mixture) {
  if (!weights.is_array()) {
    throw FileError(source + ": weights must be an array of numbers, got " +
                    describe_json(weights));
  }
  mixture.weights.reserve(weights.size());
  for (std::size_t k = 0; k < weights.size(); ++k) {
    if (!weights[k].is_number()) {
      throw FileError(source + ": weights[" + std::to_string(k) +
                      "] must be a number, got " + describe_json(weights[k]));
    }
    mixture.weights.push_back(weights[k].get<double>());
  }
  if (weights.size() != num_atoms) {
    const auto entries = [](std::size_t count) {
      return std::to_string(count) + (count == 1 ? " entry" : " entries");
    };
    throw FileError(source + ": weights has " + entries(weights.size()) + ", but atoms has " +
                    entries(num_atoms) + "; give one weight per atom");
  }
}

}  // namespace

int Mixture::num_atoms() const {
  return dim >= 1 ? static_cast<int>(atoms.size() / static_cast<std::size_t>(dim)) : 0;
}

Mixture builtin_example() {
  Mixture mixture;
  mixture.dim = 2;
  mixture.atoms = {2.4, 0.0, -1.4, 2.0, -1.4, -2.0};
  mixture.weights = {0.45, 0.30, 0.25};
  return mixture;
}

Mixture parse_mixture_json(const std::string& text, const std::string& source) {
  json document;
  // A key given twice in the top-level object is an error rather than a
  // silent choice of the last value.
  std::vector<std::string> top_level_keys;
  std::string repeated_key;
  const json::parser_callback_t check_keys = [&](int depth, json::parse_event_t event,
                                                 json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) {
      const std::string key = parsed.get<std::string>();
      if (std::find(top_level_keys.begin(), top_level_keys.end(), key) != top_level_keys.end()) {
        if (repeated_key.empty()) repeated_key = key;
      } else {
        top_level_keys.push_back(key);
      }
    }
    return true;
  };
  try {
    document = json::parse(text, check_keys);
  } catch (const json::parse_error& error) {
    throw FileError(syntax_error_message(text, source, error));
  } catch (const json::exception& error) {
    // Numbers beyond the double range, such as 1e400, end here.
    throw FileError(overflow_message(text, source, error));
  }

  if (!repeated_key.empty()) {
    throw FileError(source + ": the key \"" + repeated_key +
                    "\" is given more than once; give each of \"atoms\" and "
                    "\"weights\" once");
  }
  if (!document.is_object()) {
    throw FileError(source + ": the document must be an object with the keys \"atoms\" "
                             "and \"weights\", got " + describe_json(document));
  }
  for (const auto& item : document.items()) {
    if (item.key() != "atoms" && item.key() != "weights") {
      throw FileError(source + ": unknown key \"" + item.key() +
                      "\"; the valid keys are \"atoms\" and \"weights\"");
    }
  }
  for (const char* key : {"atoms", "weights"}) {
    if (!document.contains(key)) {
      throw FileError(source + ": missing key \"" + key +
                      "\"; a mixture needs \"atoms\" and \"weights\"");
    }
  }

  Mixture mixture;
  parse_atoms(document.at("atoms"), source, mixture);
  parse_weights(document.at("weights"), source, document.at("atoms").size(), mixture);
  return mixture;
}

Mixture read_mixture_file(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw FileError(path + ": is a directory, not a mixture file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    throw FileError(path + ": failed to open for reading: " +
                    std::generic_category().message(errno));
  }
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (!in || size < 0) {
    throw FileError(path + ": failed to determine the file size");
  }
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), size);
  if (!in) {
    throw FileError(path + ": failed to read: " + std::generic_category().message(errno));
  }
  return parse_mixture_json(text, path);
}

double max_coordinate_magnitude(Precision precision) {
  // Between two points within the limit a squared coordinate difference is
  // at most 4e300 (float64) or 4e30 (float32), so a squared distance stays
  // below DBL_MAX (1.8e308) or FLT_MAX (3.4e38) for dim up to about 4e7.
  return precision == Precision::float32 ? 1e15 : 1e150;
}

const char* max_coordinate_magnitude_text(Precision precision) {
  return precision == Precision::float32 ? "1e15" : "1e150";
}

void validate_mixture(const Mixture& mixture, Precision precision) {
  const bool is_float = precision == Precision::float32;
  const std::string precision_name = is_float ? "float32" : "float64";

  if (mixture.atoms.empty()) {
    throw InvalidArgument("the mixture has no atoms; at least one atom is required");
  }
  if (mixture.dim < 1) {
    throw InvalidArgument("mixture dimension dim = " + std::to_string(mixture.dim) +
                          " is invalid; dim must be at least 1");
  }
  const auto dim = static_cast<std::size_t>(mixture.dim);
  if (mixture.atoms.size() % dim != 0) {
    throw InvalidArgument("the mixture has " + std::to_string(mixture.atoms.size()) +
                          " coordinates, which is not a multiple of dim = " +
                          std::to_string(dim) + "; atoms must hold K x dim values");
  }
  const std::size_t num_atoms = mixture.atoms.size() / dim;
  if (num_atoms > static_cast<std::size_t>(INT_MAX)) {
    throw InvalidArgument("the mixture has " + std::to_string(num_atoms) +
                          " atoms; at most " + std::to_string(INT_MAX) + " are supported");
  }

  const double max_magnitude = max_coordinate_magnitude(precision);
  const char* max_magnitude_text = max_coordinate_magnitude_text(precision);
  for (std::size_t i = 0; i < mixture.atoms.size(); ++i) {
    const double value = mixture.atoms[i];
    if (std::isfinite(value) && std::fabs(value) <= max_magnitude) continue;
    const std::string name = "atoms[" + std::to_string(i / dim) + "][" +
                             std::to_string(i % dim) + "] = " + format_number(value);
    if (!std::isfinite(value)) {
      throw InvalidArgument(name + " is invalid; coordinates must be finite");
    }
    throw InvalidArgument(name + " is invalid; in " + precision_name +
                          " coordinates must not exceed " + max_magnitude_text +
                          " in magnitude, so that squared distances stay finite");
  }

  if (mixture.weights.size() != num_atoms) {
    throw InvalidArgument("the mixture has " + std::to_string(mixture.weights.size()) +
                          " weights but " + std::to_string(num_atoms) +
                          " atoms; give one weight per atom");
  }
  for (std::size_t k = 0; k < num_atoms; ++k) {
    const double weight = mixture.weights[k];
    if (!std::isfinite(weight) || weight < 0.0) {
      throw InvalidArgument("weights[" + std::to_string(k) + "] = " + format_number(weight) +
                            " is invalid; weights must be finite and non-negative");
    }
  }
  const double sum = compensated_sum(mixture.weights);
  if (sum == 0.0) {
    throw InvalidArgument("all " + std::to_string(num_atoms) +
                          " weights are zero; at least one weight must be positive");
  }
  const double epsilon = is_float ? static_cast<double>(std::numeric_limits<float>::epsilon())
                                  : std::numeric_limits<double>::epsilon();
  const double tolerance = 100.0 * static_cast<double>(num_atoms) * epsilon;
  if (!(std::fabs(sum - 1.0) <= tolerance)) {
    throw InvalidArgument("the weights sum to " + format_number(sum) +
                          ", but must sum to 1 within " + format_number(tolerance) +
                          " (100 * K * machine epsilon of " + precision_name +
                          ", K = " + std::to_string(num_atoms) + "); normalise the weights");
  }
}

std::vector<double> log_weights(const Mixture& mixture) {
  const double sum = compensated_sum(mixture.weights);
  std::vector<double> result(mixture.weights.size());
  for (std::size_t k = 0; k < result.size(); ++k) {
    const double weight = mixture.weights[k];
    result[k] = weight == 0.0 ? -std::numeric_limits<double>::infinity()
                              : std::log(weight / sum);
  }
  return result;
}

nlohmann::json mixture_to_json(const Mixture& mixture) {
  json atoms = json::array();
  const int num_atoms = mixture.num_atoms();
  const auto dim = static_cast<std::size_t>(std::max(mixture.dim, 0));
  for (int k = 0; k < num_atoms; ++k) {
    const auto begin = mixture.atoms.begin() + static_cast<std::ptrdiff_t>(k * dim);
    atoms.push_back(std::vector<double>(begin, begin + static_cast<std::ptrdiff_t>(dim)));
  }
  return json{{"atoms", std::move(atoms)}, {"weights", mixture.weights}};
}

}  // namespace fmg
