#include "host/io/npy.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "host/errors.hpp"
#include "tests/io/io_test_support.hpp"

namespace fmg {
namespace {

using test::message_of;
using test::read_bytes;
using test::TempDirectory;
using test::write_bytes;

// Builds a .npy file of format version `major`.0 from a header dict, padded
// with spaces and '\n' so that the data starts at a multiple of `alignment`.
std::string make_npy(const std::string& dict, const std::string& data, int major = 1,
                     std::size_t alignment = 64) {
  const std::size_t length_size = major == 1 ? 2 : 4;
  const std::size_t preamble_size = 8 + length_size;
  std::size_t header_length = dict.size() + 1;
  header_length += (alignment - (preamble_size + header_length) % alignment) % alignment;

  std::string bytes("\x93NUMPY", 6);
  bytes += static_cast<char>(major);
  bytes += '\0';
  for (std::size_t i = 0; i < length_size; ++i) {
    bytes += static_cast<char>((header_length >> (8 * i)) & 0xFF);
  }
  bytes += dict;
  bytes.append(header_length - dict.size() - 1, ' ');
  bytes += '\n';
  return bytes + data;
}

std::string header_dict(const std::string& descr, const std::string& shape,
                        const std::string& fortran_order = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran_order +
         ", 'shape': " + shape + ", }";
}

template <class T>
std::string to_bytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

std::string shape_text(const std::vector<std::size_t>& shape) {
  std::ostringstream text;
  text << "(";
  for (std::size_t i = 0; i < shape.size(); ++i) text << (i > 0 ? ", " : "") << shape[i];
  text << (shape.size() == 1 ? ",)" : ")");
  return text.str();
}

// Distinct values of T, negative ones included where T is signed.
template <class T>
std::vector<T> make_values(std::size_t count) {
  std::vector<T> values(count);
  for (std::size_t i = 0; i < count; ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      values[i] = static_cast<T>(i) * T(0.37) - T(2.5);
    } else if constexpr (std::is_signed_v<T>) {
      values[i] = static_cast<T>(static_cast<std::int64_t>(i) * 1000003 - 7);
    } else {
      values[i] = static_cast<T>(i * 37 + 200);
    }
  }
  return values;
}

template <class T>
class NpyRoundTripTest : public ::testing::Test {
 protected:
  TempDirectory directory_;
};

using NpyElementTypes = ::testing::Types<float, double, std::int32_t, std::int64_t,
                                         std::uint8_t, std::uint32_t>;
TYPED_TEST_SUITE(NpyRoundTripTest, NpyElementTypes);

TYPED_TEST(NpyRoundTripTest, ReadReturnsWrittenArray) {
  const std::vector<std::vector<std::size_t>> shapes = {{}, {0, 3}, {5}, {2, 3}, {2, 3, 4}};
  for (const auto& shape : shapes) {
    SCOPED_TRACE("shape " + shape_text(shape));
    std::size_t count = 1;
    for (const std::size_t extent : shape) count *= extent;
    const std::vector<TypeParam> values = make_values<TypeParam>(count);
    const std::string path = this->directory_.file("array.npy");

    write_npy_file(path, shape, values.data());
    const NpyArray array = read_npy(path);

    EXPECT_EQ(array.type, npy_type_of<TypeParam>);
    EXPECT_EQ(array.shape, shape);
    EXPECT_EQ(array.size(), count);
    ASSERT_EQ(array.data.size(), count * sizeof(TypeParam));
    EXPECT_EQ(std::memcmp(array.data.data(), values.data(), array.data.size()), 0);
    EXPECT_EQ((read_bytes(path).size() - array.data.size()) % 64, 0u);
  }
}

class NpyWriteTest : public ::testing::Test {
 protected:
  TempDirectory directory_;
};

// The layout that numpy.lib.format documents and that numpy.save produces
// for numpy.zeros((2, 3)): 10-byte preamble, header padded to 118 bytes.
TEST_F(NpyWriteTest, HeaderMatchesNumpyLayout) {
  const std::string path = directory_.file("array.npy");
  const std::vector<double> values = {1, 2, 3, 4, 5, 6};
  const std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
  const std::string expected_header = std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict +
                                      std::string(118 - dict.size() - 1, ' ') + "\n";

  write_npy_file(path, {2, 3}, values.data());
  const std::string bytes = read_bytes(path);

  ASSERT_EQ(bytes.size(), 128u + 48u);
  EXPECT_EQ(bytes.substr(0, 128), expected_header);
  EXPECT_EQ(bytes.substr(128), to_bytes(values));
}

TEST_F(NpyWriteTest, LargeHeaderUsesVersion2) {
  const std::string path = directory_.file("array.npy");
  const std::vector<std::size_t> shape(30000, 1);
  const std::uint8_t value = 42;

  write_npy_file(path, shape, &value);
  const std::string bytes = read_bytes(path);
  const NpyArray array = read_npy(path);

  EXPECT_EQ(bytes[6], '\x02');
  EXPECT_EQ((bytes.size() - 1) % 64, 0u);
  EXPECT_EQ(array.shape, shape);
  ASSERT_EQ(array.data.size(), 1u);
  EXPECT_EQ(array.data[0], 42);
}

TEST_F(NpyWriteTest, NullDataRejected) {
  std::ostringstream out;

  EXPECT_THROW(write_npy(out, NpyType::float64, {2}, nullptr), InvalidArgument);
}

TEST_F(NpyWriteTest, OverflowingShapeRejected) {
  std::ostringstream out;
  const double value = 0;
  const std::size_t huge = std::size_t(1) << 62;

  EXPECT_THROW(write_npy(out, NpyType::float64, {huge, 8}, &value), InvalidArgument);
}

TEST_F(NpyWriteTest, MissingDirectoryFails) {
  const std::string path = directory_.file("missing/array.npy");
  const double value = 1;

  const std::string message =
      message_of<FileError>([&] { write_npy_file(path, {1}, &value); });

  EXPECT_NE(message.find(path), std::string::npos) << message;
}

class ReadNpyTest : public ::testing::Test {
 protected:
  TempDirectory directory_;
};

TEST_F(ReadNpyTest, AcceptsVersions2And3) {
  const std::vector<double> values = {1.5, -2.5};
  for (const int major : {2, 3}) {
    SCOPED_TRACE("version " + std::to_string(major) + ".0");
    const std::string path = directory_.file("array.npy");
    write_bytes(path, make_npy(header_dict("<f8", "(2,)"), to_bytes(values), major));

    const NpyArray array = read_npy(path);

    EXPECT_EQ(array.shape, std::vector<std::size_t>{2});
    EXPECT_EQ(array.data.size(), 16u);
  }
}

TEST_F(ReadNpyTest, AcceptsOldHeaderVariants) {
  const std::vector<std::int32_t> values = {1, 2, 3, 4, 5, 6};
  const std::vector<std::string> dicts = {
      // 16-byte alignment, as numpy wrote before version 1.14.
      "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }",
      // Python 2 long integers and another key order.
      "{'shape': (2L, 3L), 'fortran_order': False, 'descr': '<i4'}",
      // Double quotes and no spaces.
      "{\"descr\":\"<i4\",\"fortran_order\":False,\"shape\":(2,3)}",
  };
  for (const std::string& dict : dicts) {
    SCOPED_TRACE(dict);
    const std::string path = directory_.file("array.npy");
    write_bytes(path, make_npy(dict, to_bytes(values), 1, 16));

    const NpyArray array = read_npy(path);

    EXPECT_EQ(array.type, NpyType::int32);
    EXPECT_EQ(array.shape, (std::vector<std::size_t>{2, 3}));
    EXPECT_EQ(array.data.size(), 24u);
  }
}

TEST_F(ReadNpyTest, AcceptsLittleEndianByteDescr) {
  const std::string path = directory_.file("array.npy");
  write_bytes(path, make_npy(header_dict("<u1", "(3,)"), "abc"));

  const NpyArray array = read_npy(path);

  EXPECT_EQ(array.type, NpyType::uint8);
}

TEST_F(ReadNpyTest, MissingFileNamesPathAndReason) {
  const std::string path = directory_.file("absent.npy");

  const std::string message = message_of<FileError>([&] { read_npy(path); });

  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
}

struct MalformedNpyCase {
  const char* name;
  std::string bytes;
  std::vector<std::string> expected_parts;
};

std::vector<MalformedNpyCase> malformed_npy_cases() {
  const std::string six_doubles(48, '\0');
  const std::string unknown_key =
      "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), 'extra': 1, }";
  const std::string overflowing =
      header_dict("<f8", "(4611686018427387904, 8)");
  std::string past_end("\x93NUMPY\x01\x00\xFF\xFF{", 11);
  std::string version_1_1 = make_npy(header_dict("<f8", "(6,)"), six_doubles);
  version_1_1[7] = '\x01';

  return {
      {"bad magic", std::string("\x93NUMPX\x01\x00", 8) + std::string(120, ' '),
       {"invalid magic string at byte 0"}},
      {"shorter than magic", std::string("\x93NU", 3), {"invalid magic string"}},
      {"ends after magic", std::string("\x93NUMPY\x01", 7), {"truncated"}},
      {"version 4.0", make_npy(header_dict("<f8", "(6,)"), six_doubles, 4),
       {"version 4.0 at byte 6", "1.0, 2.0 and 3.0"}},
      {"version 1.1", version_1_1, {"version 1.1"}},
      {"header past end", past_end, {"at byte 8", "65535", "runs past the end"}},
      {"missing descr", make_npy("{'fortran_order': False, 'shape': (6,), }", six_doubles),
       {"invalid .npy header at byte 10", "expected key 'descr'"}},
      {"missing fortran_order", make_npy("{'descr': '<f8', 'shape': (6,), }", six_doubles),
       {"at byte 10", "expected key 'fortran_order'"}},
      {"missing shape", make_npy("{'descr': '<f8', 'fortran_order': False}", six_doubles),
       {"at byte 10", "expected key 'shape'"}},
      {"unknown key", make_npy(unknown_key, six_doubles),
       {"at byte " + std::to_string(10 + unknown_key.find("'extra'")), "unknown key 'extra'"}},
      {"duplicate key",
       make_npy("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (6,)}",
                six_doubles),
       {"at byte 27", "duplicate key 'descr'"}},
      {"not a dict", make_npy("[1, 2]", six_doubles), {"at byte 10", "expected '{'"}},
      {"unterminated string", make_npy("{'descr", six_doubles),
       {"at byte 11", "unterminated string"}},
      {"missing colon",
       make_npy("{'descr' '<f8', 'fortran_order': False, 'shape': (6,)}", six_doubles),
       {"at byte 19", "expected ':'"}},
      {"missing comma",
       make_npy("{'descr': '<f8' 'fortran_order': False, 'shape': (6,)}", six_doubles),
       {"at byte 26", "expected ',' or '}'"}},
      {"fortran_order not bool", make_npy(header_dict("<f8", "(6,)", "0"), six_doubles),
       {"expected True or False"}},
      {"shape not a tuple", make_npy(header_dict("<f8", "[6]"), six_doubles),
       {"expected a tuple"}},
      {"shape without comma",
       make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (6)}", six_doubles),
       {"(6,)"}},
      {"negative dimension", make_npy(header_dict("<f8", "(-6,)"), six_doubles),
       {"non-negative integer", "found '-'"}},
      {"dimension overflow",
       make_npy(header_dict("<f8", "(99999999999999999999999,)"), six_doubles),
       {"dimension overflows"}},
      {"size overflow", make_npy(overflowing, six_doubles),
       {"at byte " + std::to_string(10 + overflowing.find("(4611")), "overflows"}},
      {"text after dict", make_npy(header_dict("<f8", "(6,)") + " x", six_doubles),
       {"unexpected text after the closing '}'"}},
      {"unsupported dtype", make_npy(header_dict("<f2", "(6,)"), six_doubles),
       {"unsupported dtype '<f2' at byte 20", "'<f4' (float32)", "'<u4' (uint32)"}},
      {"big-endian dtype", make_npy(header_dict(">f8", "(6,)"), six_doubles),
       {"unsupported dtype '>f8'", "big-endian", "astype('<f8')"}},
      {"structured dtype",
       make_npy("{'descr': [('x', '<f8')], 'fortran_order': False, 'shape': (6,), }",
                six_doubles),
       {"structured", "at byte 20"}},
      {"fortran order", make_npy(header_dict("<f8", "(2, 3)", "True"), six_doubles),
       {"fortran_order is True", "numpy.ascontiguousarray"}},
      {"data too short", make_npy(header_dict("<f8", "(3, 4)"), std::string(40, '\0')),
       {"40 bytes", "needs 96 bytes", "truncated"}},
      {"data too long", make_npy(header_dict("<f8", "(3, 4)"), std::string(104, '\0')),
       {"104 bytes", "needs 96 bytes"}},
  };
}

TEST_F(ReadNpyTest, MalformedFilesRejected) {
  const std::string path = directory_.file("bad.npy");
  for (const MalformedNpyCase& malformed : malformed_npy_cases()) {
    SCOPED_TRACE(malformed.name);
    write_bytes(path, malformed.bytes);

    const std::string message = message_of<FileError>([&] { read_npy(path); });

    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    for (const std::string& part : malformed.expected_parts) {
      EXPECT_NE(message.find(part), std::string::npos) << "missing '" << part << "' in: "
                                                       << message;
    }
  }
}

class ReadNpyMatrixTest : public ::testing::Test {
 protected:
  template <class T>
  std::string write_array(const std::vector<std::size_t>& shape, const std::vector<T>& values) {
    const std::string path = directory_.file("matrix.npy");
    write_npy_file(path, shape, values.data());
    return path;
  }

  TempDirectory directory_;
};

TEST_F(ReadNpyMatrixTest, Float32ToDouble) {
  const std::vector<float> values = {1.5f, -2.25f, 3.0f, 0.1f, 5.0f, 6.0f};
  const std::string path = write_array<float>({3, 2}, values);

  const Matrix<double> matrix = read_npy_matrix<double>(path, 2);

  EXPECT_EQ(matrix.rows, 3u);
  EXPECT_EQ(matrix.cols, 2u);
  ASSERT_EQ(matrix.values.size(), 6u);
  for (std::size_t i = 0; i < values.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(matrix.values[i], static_cast<double>(values[i]));
  }
}

TEST_F(ReadNpyMatrixTest, Float64ToFloat) {
  const std::vector<double> values = {0.1, -1e30, 3.0, 1e-50};
  const std::string path = write_array<double>({2, 2}, values);

  const Matrix<float> matrix = read_npy_matrix<float>(path, 2);

  ASSERT_EQ(matrix.values.size(), 4u);
  for (std::size_t i = 0; i < values.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(matrix.values[i], static_cast<float>(values[i]));
  }
}

TEST_F(ReadNpyMatrixTest, Float64ToDoubleExact) {
  const std::vector<double> values = {0.1, 1e300, -4.9e-324};
  const std::string path = write_array<double>({1, 3}, values);

  const Matrix<double> matrix = read_npy_matrix<double>(path, -1);

  EXPECT_EQ(matrix.values, values);
}

TEST_F(ReadNpyMatrixTest, OneDimensionalIsColumn) {
  const std::string path = write_array<double>({3}, {1, 2, 3});

  const Matrix<double> matrix = read_npy_matrix<double>(path, 1);

  EXPECT_EQ(matrix.rows, 3u);
  EXPECT_EQ(matrix.cols, 1u);
}

TEST_F(ReadNpyMatrixTest, AnyColumnCountWhenNegative) {
  const std::string path = write_array<float>({1, 7}, std::vector<float>(7, 1.0f));

  const Matrix<float> matrix = read_npy_matrix<float>(path, -1);

  EXPECT_EQ(matrix.cols, 7u);
}

TEST_F(ReadNpyMatrixTest, OneDimensionalRejectedForTwoColumns) {
  const std::string path = write_array<double>({3}, {1, 2, 3});

  const std::string message =
      message_of<InvalidArgument>([&] { read_npy_matrix<double>(path, 2); });

  EXPECT_NE(message.find("shape (3,)"), std::string::npos) << message;
  EXPECT_NE(message.find("(rows, 2)"), std::string::npos) << message;
}

TEST_F(ReadNpyMatrixTest, ThreeDimensionalRejected) {
  const std::string path = write_array<double>({1, 1, 2}, {1, 2});

  EXPECT_THROW(read_npy_matrix<double>(path, -1), InvalidArgument);
}

TEST_F(ReadNpyMatrixTest, ZeroRowsRejected) {
  const std::string path = write_array<double>({0, 2}, {});

  const std::string message =
      message_of<InvalidArgument>([&] { read_npy_matrix<double>(path, 2); });

  EXPECT_NE(message.find("no rows"), std::string::npos) << message;
}

TEST_F(ReadNpyMatrixTest, ZeroColumnsRejected) {
  const std::string path = write_array<double>({2, 0}, {});

  EXPECT_THROW(read_npy_matrix<double>(path, -1), InvalidArgument);
}

TEST_F(ReadNpyMatrixTest, WrongColumnCountRejected) {
  const std::string path = write_array<double>({3, 4}, std::vector<double>(12, 0.0));

  const std::string message =
      message_of<InvalidArgument>([&] { read_npy_matrix<double>(path, 3); });

  EXPECT_NE(message.find("has 4 columns"), std::string::npos) << message;
  EXPECT_NE(message.find("3 are expected"), std::string::npos) << message;
  EXPECT_NE(message.find(path), std::string::npos) << message;
}

TEST_F(ReadNpyMatrixTest, NonFiniteValueRejected) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::string path = write_array<double>({3, 2}, {0, 1, 2, 3, nan, 5});

  const std::string message =
      message_of<InvalidArgument>([&] { read_npy_matrix<double>(path, 2); });

  EXPECT_NE(message.find("row 2, column 0"), std::string::npos) << message;
  EXPECT_NE(message.find("nan"), std::string::npos) << message;
}

TEST_F(ReadNpyMatrixTest, InfiniteFloat32Rejected) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::string path = write_array<float>({2, 2}, {0, -inf, 2, 3});

  const std::string as_float =
      message_of<InvalidArgument>([&] { read_npy_matrix<float>(path, 2); });
  const std::string as_double =
      message_of<InvalidArgument>([&] { read_npy_matrix<double>(path, 2); });

  EXPECT_NE(as_float.find("row 0, column 1"), std::string::npos) << as_float;
  EXPECT_NE(as_float.find("-inf"), std::string::npos) << as_float;
  EXPECT_NE(as_double.find("row 0, column 1"), std::string::npos) << as_double;
}

TEST_F(ReadNpyMatrixTest, FloatOverflowRejected) {
  const std::string path = write_array<double>({2, 2}, {0, 1, 2, 1e39});

  const std::string message =
      message_of<InvalidArgument>([&] { read_npy_matrix<float>(path, 2); });
  const Matrix<double> as_double = read_npy_matrix<double>(path, 2);

  EXPECT_NE(message.find("row 1, column 1"), std::string::npos) << message;
  EXPECT_NE(message.find("float32"), std::string::npos) << message;
  EXPECT_EQ(as_double.values[3], 1e39);
}

// An integer dtype is a file error, like any dtype the reader does not
// accept, and the message lists only the two accepted dtypes.
TEST_F(ReadNpyMatrixTest, IntegerDtypeRejected) {
  const std::string path = write_array<std::int32_t>({2, 2}, {1, 2, 3, 4});

  const std::string message =
      message_of<FileError>([&] { read_npy_matrix<double>(path, 2); });

  EXPECT_NE(message.find("unsupported dtype '<i4' (int32)"), std::string::npos) << message;
  EXPECT_NE(message.find("supported dtypes are '<f4' (float32) and '<f8' (float64)"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("int64"), std::string::npos) << message;
  EXPECT_EQ(message.find("uint32"), std::string::npos) << message;
}

TEST_F(ReadNpyMatrixTest, UnknownDtypeListsOnlyFloatDtypes) {
  const std::string path = directory_.file("half.npy");
  write_bytes(path, make_npy(header_dict("<f2", "(2, 2)"), std::string(8, '\0')));

  const std::string message =
      message_of<FileError>([&] { read_npy_matrix<double>(path, 2); });

  EXPECT_NE(message.find("unsupported dtype '<f2'"), std::string::npos) << message;
  EXPECT_NE(message.find("'<f4' (float32) and '<f8' (float64)"), std::string::npos)
      << message;
  EXPECT_EQ(message.find("int32"), std::string::npos) << message;
}

TEST_F(ReadNpyMatrixTest, MalformedFileIsFileError) {
  const std::string path = directory_.file("matrix.npy");
  write_bytes(path, "not numpy");

  EXPECT_THROW(read_npy_matrix<double>(path, 2), FileError);
}

}  // namespace
}  // namespace fmg
