// Reading and writing NumPy .npy files, format versions 1.0, 2.0 and 3.0.
//
// Layout, as documented in numpy.lib.format: the magic string "\x93NUMPY",
// one byte each for the major and minor version, and the header length as a
// little-endian uint16 (version 1.0) or uint32 (2.0 and 3.0). The ASCII
// header that follows is a Python dict literal with the keys 'descr',
// 'fortran_order' and 'shape'. Spaces and a final '\n' pad it so that the
// data starts at a multiple of 64 bytes. The data follows in C order.
//
// The data bytes are copied as they are, so this code assumes a
// little-endian host, which npy.cpp checks at compile time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace fmg {

/// Element types that fmg reads and writes, with their .npy descr strings.
enum class NpyType {
  float32,  ///< '<f4'
  float64,  ///< '<f8'
  int32,    ///< '<i4'
  int64,    ///< '<i8'
  uint8,    ///< '|u1'
  uint32,   ///< '<u4'
};

/// Returns the .npy descr string of `type`, such as "<f8".
const char* npy_descr(NpyType type);

/// Returns the NumPy name of `type`, such as "float64".
const char* npy_type_name(NpyType type);

/// Returns the size in bytes of one element of `type`.
std::size_t npy_item_size(NpyType type);

namespace detail {
template <class T>
struct NpyTypeOf;
template <>
struct NpyTypeOf<float> { static constexpr NpyType value = NpyType::float32; };
template <>
struct NpyTypeOf<double> { static constexpr NpyType value = NpyType::float64; };
template <>
struct NpyTypeOf<std::int32_t> { static constexpr NpyType value = NpyType::int32; };
template <>
struct NpyTypeOf<std::int64_t> { static constexpr NpyType value = NpyType::int64; };
template <>
struct NpyTypeOf<std::uint8_t> { static constexpr NpyType value = NpyType::uint8; };
template <>
struct NpyTypeOf<std::uint32_t> { static constexpr NpyType value = NpyType::uint32; };
}  // namespace detail

/// The NpyType of the C++ element type T.
template <class T>
constexpr NpyType npy_type_of = detail::NpyTypeOf<T>::value;

/// An array read from a .npy file: its element type, its shape and its
/// elements in C (row-major) order as little-endian bytes.
struct NpyArray {
  NpyType type = NpyType::float64;
  std::vector<std::size_t> shape;  ///< Empty for a 0-d array.
  std::vector<unsigned char> data;  ///< size() * npy_item_size(type) bytes.

  /// Returns the number of elements: the product of the shape, 1 for a 0-d
  /// array.
  std::size_t size() const;
};

/// Reads the .npy file at `path`, with the data in one read call.
///
/// Accepts format versions 1.0, 2.0 and 3.0, any header padding, C order
/// and the element types of NpyType. Throws FileError naming the file and
/// the problem, with the byte offset for header problems. The problems are
/// a missing or unreadable file, an invalid magic string, an unsupported
/// version, a malformed header dict, an unsupported or big-endian dtype,
/// fortran_order True, a shape whose byte size overflows, and data shorter
/// or longer than the shape implies.
NpyArray read_npy(const std::string& path);

/// A dense matrix in row-major order.
template <class T>
struct Matrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<T> values;  ///< rows * cols values; (i, j) is at i * cols + j.
};

/// Reads a float32 or float64 .npy array of shape (rows, cols) and converts
/// it to T (float or double). A 1-D array of shape (rows,) is read as one
/// column, but only when `expected_cols` is 1. A negative `expected_cols`
/// accepts any positive number of columns.
///
/// Throws FileError for an unreadable or malformed file (see read_npy) and
/// for a dtype other than float32 and float64, listing those two. Throws
/// InvalidArgument naming the file when the array has another dimension
/// count, no rows, no columns, a column count other than `expected_cols`,
/// or a value that is NaN or infinite or, with T = float, beyond the float
/// range. Value errors name the row and column (0-based).
template <class T>
Matrix<T> read_npy_matrix(const std::string& path, std::ptrdiff_t expected_cols);

extern template Matrix<float> read_npy_matrix<float>(const std::string&, std::ptrdiff_t);
extern template Matrix<double> read_npy_matrix<double>(const std::string&, std::ptrdiff_t);

/// Writes an array of `type` and `shape` as .npy to `out`, with the header
/// padded so that the data starts at a multiple of 64 bytes. `data` contains
/// the product of `shape` elements in C order (it may be null when that
/// product is 0). Uses format version 1.0 unless the header needs more than
/// 65535 bytes, then 2.0.
///
/// Throws InvalidArgument when the byte size of the array overflows
/// std::size_t or `data` is null for a non-empty array. Write errors are
/// left in the state of `out` for the caller to check.
void write_npy(std::ostream& out, NpyType type, const std::vector<std::size_t>& shape,
               const void* data);

/// Writes only the preamble and header of an array of `type` and `shape`,
/// for a caller that streams the data after it, and returns the number of
/// data bytes the header promises. Throws as write_npy does.
std::size_t write_npy_header(std::ostream& out, NpyType type,
                             const std::vector<std::size_t>& shape);

/// Writes an array of `shape` from `data` to the .npy file `path` through
/// an AtomicFile, so the file appears only when complete. T is float,
/// double, std::int32_t, std::int64_t, std::uint8_t or std::uint32_t.
/// Throws as write_npy does, and FileError when the file cannot be
/// created, written or renamed.
template <class T>
void write_npy_file(const std::string& path, const std::vector<std::size_t>& shape,
                    const T* data);

extern template void write_npy_file<float>(const std::string&,
                                           const std::vector<std::size_t>&, const float*);
extern template void write_npy_file<double>(const std::string&,
                                            const std::vector<std::size_t>&, const double*);
extern template void write_npy_file<std::int32_t>(const std::string&,
                                                  const std::vector<std::size_t>&,
                                                  const std::int32_t*);
extern template void write_npy_file<std::int64_t>(const std::string&,
                                                  const std::vector<std::size_t>&,
                                                  const std::int64_t*);
extern template void write_npy_file<std::uint8_t>(const std::string&,
                                                  const std::vector<std::size_t>&,
                                                  const std::uint8_t*);
extern template void write_npy_file<std::uint32_t>(const std::string&,
                                                   const std::vector<std::size_t>&,
                                                   const std::uint32_t*);

}  // namespace fmg
