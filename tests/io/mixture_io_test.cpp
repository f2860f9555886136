#include "host/io/mixture_io.hpp"

#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "host/errors.hpp"
#include "tests/io/io_test_support.hpp"

namespace fmg {
namespace {

using test::message_of;
using test::TempDirectory;
using test::write_bytes;

constexpr double nan_value = std::numeric_limits<double>::quiet_NaN();
constexpr double inf_value = std::numeric_limits<double>::infinity();

class MixtureJsonTest : public ::testing::Test {
 protected:
  TempDirectory directory_;
};

class MixtureTest : public ::testing::Test {};

TEST_F(MixtureTest, BuiltinExample) {
  const Mixture mixture = builtin_example();

  EXPECT_EQ(mixture.dim, 2);
  EXPECT_EQ(mixture.num_atoms(), 3);
  EXPECT_EQ(mixture.atoms, (std::vector<double>{2.4, 0, -1.4, 2, -1.4, -2}));
  EXPECT_EQ(mixture.weights, (std::vector<double>{0.45, 0.30, 0.25}));
  EXPECT_NO_THROW(validate_mixture(mixture, Precision::float64));
  EXPECT_NO_THROW(validate_mixture(mixture, Precision::float32));
}

TEST_F(MixtureJsonTest, ReadsValidFile) {
  const std::string path = directory_.file("mixture.json");
  write_bytes(path,
              "{\n"
              "  \"weights\": [0.5, 0.25, 0.25],\n"
              "  \"atoms\": [[1, -2, 3.5], [0, 0, 0], [1e3, 2E-3, -7]]\n"
              "}\n");

  const Mixture mixture = read_mixture_file(path);

  EXPECT_EQ(mixture.dim, 3);
  EXPECT_EQ(mixture.num_atoms(), 3);
  EXPECT_EQ(mixture.atoms, (std::vector<double>{1, -2, 3.5, 0, 0, 0, 1e3, 2e-3, -7}));
  EXPECT_EQ(mixture.weights, (std::vector<double>{0.5, 0.25, 0.25}));
}

TEST_F(MixtureJsonTest, RoundTripThroughJson) {
  Mixture mixture = builtin_example();
  mixture.weights = {0.1, 0.2, 0.7};

  const Mixture parsed = parse_mixture_json(mixture_to_json(mixture).dump(), "summary");

  EXPECT_EQ(parsed.dim, mixture.dim);
  EXPECT_EQ(parsed.atoms, mixture.atoms);
  EXPECT_EQ(parsed.weights, mixture.weights);
}

TEST_F(MixtureJsonTest, MissingFileNamesPathAndReason) {
  const std::string path = directory_.file("absent.json");

  const std::string message = message_of<FileError>([&] { read_mixture_file(path); });

  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
}

TEST_F(MixtureJsonTest, SyntaxErrorGivesLineAndColumn) {
  const std::string path = directory_.file("mixture.json");
  write_bytes(path,
              "{\n"
              "  \"atoms\": [[1, 2]],\n"
              "  \"weights\": [1,]\n"
              "}\n");

  const std::string message = message_of<FileError>([&] { read_mixture_file(path); });

  EXPECT_EQ(message.rfind(path + ":3:17: ", 0), 0u) << message;
  EXPECT_NE(message.find("line 3, column 17"), std::string::npos) << message;
  EXPECT_NE(message.find("unexpected ']'"), std::string::npos) << message;
}

TEST_F(MixtureJsonTest, UnexpectedEndGivesPosition) {
  const std::string message =
      message_of<FileError>([] { parse_mixture_json("{\"atoms\": [[1]],\n", "text"); });

  EXPECT_NE(message.find("text:2:1"), std::string::npos) << message;
  EXPECT_NE(message.find("end of input"), std::string::npos) << message;
}

TEST_F(MixtureJsonTest, NumberOverflowRejected) {
  const std::string message = message_of<FileError>(
      [] { parse_mixture_json("{\"atoms\": [[1e400]], \"weights\": [1]}", "text"); });

  EXPECT_NE(message.find("1e400"), std::string::npos) << message;
}

struct InvalidJsonCase {
  const char* name;
  std::string text;
  std::vector<std::string> expected_parts;
};

TEST_F(MixtureJsonTest, InvalidStructureRejected) {
  const std::vector<InvalidJsonCase> cases = {
      {"not an object", "[[1, 2]]", {"must be an object", "got array"}},
      {"missing atoms", "{\"weights\": [1]}", {"missing key \"atoms\""}},
      {"missing weights", "{\"atoms\": [[1]]}", {"missing key \"weights\""}},
      {"unknown key", "{\"atoms\": [[1]], \"weight\": [1]}",
       {"unknown key \"weight\"", "\"atoms\" and \"weights\""}},
      {"atoms not an array", "{\"atoms\": 3, \"weights\": [1]}",
       {"atoms must be a non-empty array", "got number 3"}},
      {"atoms empty", "{\"atoms\": [], \"weights\": []}",
       {"atoms must be a non-empty array", "got an empty array"}},
      {"atom not an array", "{\"atoms\": [[1], 2], \"weights\": [0.5, 0.5]}",
       {"atoms[1] must be a non-empty array", "got number 2"}},
      {"atom empty", "{\"atoms\": [[], []], \"weights\": [0.5, 0.5]}",
       {"atoms[0] must be a non-empty array", "got an empty array"}},
      {"coordinate not a number",
       "{\"atoms\": [[0, 0], [1, 1], [2, 2], [3, \"x\"]], \"weights\": [0.25, 0.25, 0.25, "
       "0.25]}",
       {"atoms[3][1] must be a number", "got string \"x\""}},
      {"coordinate boolean", "{\"atoms\": [[true]], \"weights\": [1]}",
       {"atoms[0][0]", "boolean"}},
      {"unequal dimensions", "{\"atoms\": [[0, 0], [1, 1, 1]], \"weights\": [0.5, 0.5]}",
       {"atoms[1] has 3 coordinates", "atoms[0] has 2"}},
      {"weights not an array", "{\"atoms\": [[1]], \"weights\": 1}",
       {"weights must be an array of numbers", "got number 1"}},
      {"weight null", "{\"atoms\": [[1], [2], [3]], \"weights\": [0.5, 0.5, null]}",
       {"weights[2] must be a number", "got null"}},
      {"weight string", "{\"atoms\": [[1]], \"weights\": [\"1\"]}",
       {"weights[0] must be a number", "got string \"1\""}},
      {"counts disagree", "{\"atoms\": [[1], [2], [3]], \"weights\": [0.5, 0.5]}",
       {"weights has 2 entries", "atoms has 3 entries"}},
      {"one weight", "{\"atoms\": [[1], [2]], \"weights\": [1]}",
       {"weights has 1 entry,", "atoms has 2 entries"}},
  };
  for (const InvalidJsonCase& invalid : cases) {
    SCOPED_TRACE(invalid.name);

    const std::string message =
        message_of<FileError>([&] { parse_mixture_json(invalid.text, "mix.json"); });

    EXPECT_EQ(message.rfind("mix.json: ", 0), 0u) << message;
    for (const std::string& part : invalid.expected_parts) {
      EXPECT_NE(message.find(part), std::string::npos) << "missing '" << part << "' in: "
                                                       << message;
    }
  }
}

TEST_F(MixtureJsonTest, ManyAtomsParseQuickly) {
  constexpr int num_atoms = 10000;
  std::string text = "{\"atoms\": [";
  std::string weights = "\"weights\": [";
  for (int k = 0; k < num_atoms; ++k) {
    if (k > 0) {
      text += ", ";
      weights += ", ";
    }
    text += "[" + std::to_string(k) + ", " + std::to_string(-k) + ".5]";
    weights += "1e-4";
  }
  text += "], " + weights + "]}";

  const Mixture mixture = parse_mixture_json(text, "large");

  EXPECT_EQ(mixture.num_atoms(), num_atoms);
  EXPECT_EQ(mixture.atoms[2 * 9999 + 1], -9999.5);
  EXPECT_NO_THROW(validate_mixture(mixture, Precision::float64));
}

class ValidateMixtureTest : public ::testing::Test {};

struct InvalidMixtureCase {
  const char* name;
  Mixture mixture;
  Precision precision;
  std::vector<std::string> expected_parts;
};

Mixture example_with_atoms(std::vector<double> atoms) {
  Mixture mixture = builtin_example();
  mixture.atoms = std::move(atoms);
  return mixture;
}

Mixture example_with_weights(std::vector<double> weights) {
  Mixture mixture = builtin_example();
  mixture.weights = std::move(weights);
  return mixture;
}

TEST_F(ValidateMixtureTest, InvalidMixturesRejected) {
  Mixture zero_dim = builtin_example();
  zero_dim.dim = 0;
  const std::vector<InvalidMixtureCase> cases = {
      {"no atoms", Mixture{}, Precision::float64, {"no atoms"}},
      {"zero dimension", zero_dim, Precision::float64, {"dim = 0", "at least 1"}},
      {"ragged atoms", example_with_atoms({1, 2, 3, 4, 5}), Precision::float64,
       {"5 coordinates", "dim = 2"}},
      {"NaN coordinate", example_with_atoms({1, 2, nan_value, 4, 5, 6}), Precision::float64,
       {"atoms[1][0] = nan", "finite"}},
      {"infinite coordinate", example_with_atoms({1, 2, 3, 4, 5, -inf_value}),
       Precision::float32, {"atoms[2][1] = -inf", "finite"}},
      {"coordinate too large for float64", example_with_atoms({1, 2e150, 3, 4, 5, 6}),
       Precision::float64, {"atoms[0][1] = 2", "1e150", "float64"}},
      {"coordinate too large for float32", example_with_atoms({1, 2, 3, -2e15, 5, 6}),
       Precision::float32, {"atoms[1][1] = -2", "1e15", "float32"}},
      {"weight count", example_with_weights({0.5, 0.5}), Precision::float64,
       {"2 weights but 3 atoms"}},
      {"negative weight", example_with_weights({0.6, -0.1, 0.5}), Precision::float64,
       {"weights[1] = -0.1", "non-negative"}},
      {"NaN weight", example_with_weights({0.5, 0.5, nan_value}), Precision::float64,
       {"weights[2] = nan"}},
      {"infinite weight", example_with_weights({inf_value, 0.5, 0.5}), Precision::float32,
       {"weights[0] = inf"}},
      {"all weights zero", example_with_weights({0, 0, 0}), Precision::float64,
       {"all 3 weights are zero"}},
      {"sum not one", example_with_weights({0.45, 0.2, 0.25}), Precision::float64,
       {"sum to 0.9,", "within 6.661338147750939e-14", "float64", "K = 3"}},
      {"sum off by 1e-9 in float64", example_with_weights({0.45, 0.3, 0.25 + 1e-9}),
       Precision::float64, {"sum to 1.000000001"}},
  };
  for (const InvalidMixtureCase& invalid : cases) {
    SCOPED_TRACE(invalid.name);

    const std::string message = message_of<InvalidArgument>(
        [&] { validate_mixture(invalid.mixture, invalid.precision); });

    for (const std::string& part : invalid.expected_parts) {
      EXPECT_NE(message.find(part), std::string::npos) << "missing '" << part << "' in: "
                                                       << message;
    }
  }
}

TEST_F(ValidateMixtureTest, FloatToleranceScalesWithEpsilon) {
  const Mixture mixture = example_with_weights({0.45, 0.3, 0.25 + 1e-9});

  EXPECT_NO_THROW(validate_mixture(mixture, Precision::float32));
}

TEST_F(ValidateMixtureTest, LargeCoordinateValidInFloat64) {
  const Mixture mixture = example_with_atoms({1, 2, 3, -2e15, 5, 1e150});

  EXPECT_NO_THROW(validate_mixture(mixture, Precision::float64));
}

TEST_F(ValidateMixtureTest, SingleZeroWeightValid) {
  const Mixture mixture = example_with_weights({0.5, 0.0, 0.5});

  EXPECT_NO_THROW(validate_mixture(mixture, Precision::float64));
}

TEST_F(ValidateMixtureTest, ManyAtomsAndHighDimensionAccepted) {
  const std::vector<std::pair<int, int>> sizes = {{10000, 2}, {3, 4096}, {10000, 64}};
  for (const auto& [num_atoms, dim] : sizes) {
    SCOPED_TRACE("K = " + std::to_string(num_atoms) + ", d = " + std::to_string(dim));
    Mixture mixture;
    mixture.dim = dim;
    mixture.atoms.assign(static_cast<std::size_t>(num_atoms) * dim, 0.0);
    for (std::size_t i = 0; i < mixture.atoms.size(); ++i) {
      mixture.atoms[i] = std::sin(static_cast<double>(i));
    }
    mixture.weights.assign(num_atoms, 1.0 / num_atoms);
    const auto start = std::chrono::steady_clock::now();

    validate_mixture(mixture, Precision::float32);
    validate_mixture(mixture, Precision::float64);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;

    EXPECT_LT(elapsed.count(), 0.5);
  }
}

TEST_F(MixtureTest, LogWeightsNormalise) {
  Mixture mixture = builtin_example();
  mixture.weights = {2.0, 0.0, 6.0};

  const std::vector<double> logs = log_weights(mixture);

  ASSERT_EQ(logs.size(), 3u);
  EXPECT_DOUBLE_EQ(logs[0], std::log(0.25));
  EXPECT_EQ(logs[1], -inf_value);
  EXPECT_DOUBLE_EQ(logs[2], std::log(0.75));
}

TEST_F(MixtureTest, ToJsonLayout) {
  const nlohmann::json json = mixture_to_json(builtin_example());

  ASSERT_TRUE(json.at("atoms").is_array());
  ASSERT_EQ(json.at("atoms").size(), 3u);
  EXPECT_EQ(json.at("atoms")[1], (nlohmann::json{-1.4, 2.0}));
  EXPECT_EQ(json.at("weights"), (nlohmann::json{0.45, 0.30, 0.25}));
  EXPECT_EQ(json.size(), 2u);
}

}  // namespace
}  // namespace fmg
