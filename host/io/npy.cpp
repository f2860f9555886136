#include "host/io/npy.hpp"
#include "host/format.hpp"

#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <type_traits>

#include "host/errors.hpp"
#include "host/io/atomic_file.hpp"
#include "host/io/npy_header.hpp"

namespace fmg {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              ".npy data is copied byte for byte, which needs a little-endian host");

namespace {

constexpr char npy_magic[] = "\x93NUMPY";
constexpr std::size_t npy_magic_size = 6;
constexpr std::size_t npy_alignment = 64;

std::string shape_to_string(const std::vector<std::size_t>& shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  if (shape.size() == 1) text += ",";
  return text + ")";
}

// Stores the number of elements of `shape` in `count` and the byte size in
// `bytes`; returns false if either overflows std::size_t.
bool compute_array_size(const std::vector<std::size_t>& shape, std::size_t item_size,
                        std::size_t& count, std::size_t& bytes) {
  constexpr std::size_t max_size = std::numeric_limits<std::size_t>::max();
  count = 1;
  for (const std::size_t extent : shape) {
    if (extent != 0 && count > max_size / extent) return false;
    count *= extent;
  }
  if (count > max_size / item_size) return false;
  bytes = count * item_size;
  return true;
}

constexpr NpyType all_npy_types[] = {NpyType::float32, NpyType::float64, NpyType::int32,
                                     NpyType::int64,   NpyType::uint8,   NpyType::uint32};

// Returns whether `descr` is one of `types`, storing it in `type`. A
// one-byte type has no byte order, so '<u1' and '>u1' are uint8.
bool parse_descr(const std::string& descr, const std::vector<NpyType>& types, NpyType& type) {
  for (const NpyType candidate : types) {
    if (descr == npy_descr(candidate) ||
        (candidate == NpyType::uint8 && (descr == "<u1" || descr == ">u1"))) {
      type = candidate;
      return true;
    }
  }
  return false;
}

// Lists `types` for messages: "'<f4' (float32) and '<f8' (float64)".
std::string dtype_list(const std::vector<NpyType>& types) {
  std::string text;
  for (std::size_t i = 0; i < types.size(); ++i) {
    if (i > 0) text += i + 1 == types.size() ? " and " : ", ";
    text += std::string("'") + npy_descr(types[i]) + "' (" + npy_type_name(types[i]) + ")";
  }
  return text;
}

std::uint32_t read_little_endian(const unsigned char* bytes, std::size_t count) {
  std::uint32_t value = 0;
  for (std::size_t i = count; i-- > 0;) value = (value << 8) | bytes[i];
  return value;
}

// Checks that `header` describes a C-ordered array of one of `accepted`,
// storing that type in `type`.
void check_supported_header(const std::string& path, const detail::NpyHeader& header,
                            const std::vector<NpyType>& accepted, NpyType& type) {
  const std::string at_descr = " at byte " + std::to_string(header.descr_offset);
  if (!parse_descr(header.descr, accepted, type)) {
    std::string message = path + ": unsupported dtype '" + header.descr + "'";
    NpyType known = NpyType::float64;
    if (parse_descr(header.descr, {std::begin(all_npy_types), std::end(all_npy_types)},
                    known)) {
      message += std::string(" (") + npy_type_name(known) + ")";
    }
    message += at_descr;
    if (!header.descr.empty() && header.descr[0] == '>') {
      const std::string little = "<" + header.descr.substr(1);
      NpyType little_type = NpyType::float64;
      const std::string target =
          parse_descr(little, accepted, little_type) ? little : npy_descr(accepted.back());
      message += ": big-endian data is not supported; convert it with "
                 "a.astype('" + target + "') before saving";
    }
    throw FileError(message + "; supported dtypes are " + dtype_list(accepted));
  }
  if (header.fortran_order) {
    throw FileError(path + ": fortran_order is True at byte " +
                    std::to_string(header.fortran_order_offset) +
                    ", but only C-ordered arrays are supported; save the array "
                    "with numpy.save(path, numpy.ascontiguousarray(a))");
  }
}

}  // namespace

const char* npy_descr(NpyType type) {
  switch (type) {
    case NpyType::float32: return "<f4";
    case NpyType::float64: return "<f8";
    case NpyType::int32: return "<i4";
    case NpyType::int64: return "<i8";
    case NpyType::uint8: return "|u1";
    case NpyType::uint32: return "<u4";
  }
  throw std::logic_error("npy_descr: invalid NpyType");
}

const char* npy_type_name(NpyType type) {
  switch (type) {
    case NpyType::float32: return "float32";
    case NpyType::float64: return "float64";
    case NpyType::int32: return "int32";
    case NpyType::int64: return "int64";
    case NpyType::uint8: return "uint8";
    case NpyType::uint32: return "uint32";
  }
  throw std::logic_error("npy_type_name: invalid NpyType");
}

std::size_t npy_item_size(NpyType type) {
  switch (type) {
    case NpyType::float32: return 4;
    case NpyType::float64: return 8;
    case NpyType::int32: return 4;
    case NpyType::int64: return 8;
    case NpyType::uint8: return 1;
    case NpyType::uint32: return 4;
  }
  throw std::logic_error("npy_item_size: invalid NpyType");
}

std::size_t NpyArray::size() const {
  std::size_t count = 1;
  for (const std::size_t extent : shape) count *= extent;
  return count;
}

namespace {

// A .npy file whose header has been read and checked, positioned at the
// start of its data section.
struct NpyReader {
  std::ifstream in;
  NpyType type = NpyType::float64;
  std::vector<std::size_t> shape;
  std::size_t count = 0;       // Number of elements.
  std::size_t data_bytes = 0;  // Size of the data section, checked against the file.
};

// Opens `path`, reads and checks the preamble and the header, and checks
// that the dtype is one of `accepted` and that the data section has exactly
// the size that the header implies.
NpyReader open_npy(const std::string& path, const std::vector<NpyType>& accepted) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw FileError(path + ": is a directory, not a .npy file");
  }
  NpyReader reader;
  std::ifstream& in = reader.in;
  in.open(path, std::ios::binary);
  if (!in.is_open()) {
    throw FileError(path + ": failed to open for reading: " +
                    std::generic_category().message(errno));
  }
  in.seekg(0, std::ios::end);
  const std::streamoff file_size_signed = in.tellg();
  in.seekg(0, std::ios::beg);
  if (!in || file_size_signed < 0) {
    throw FileError(path + ": failed to determine the file size");
  }
  const auto file_size = static_cast<std::size_t>(file_size_signed);

  // Preamble: magic string, version, header length.
  unsigned char preamble[12] = {};
  const std::size_t preamble_read = std::min<std::size_t>(file_size, sizeof preamble);
  in.read(reinterpret_cast<char*>(preamble), static_cast<std::streamsize>(preamble_read));
  if (file_size < npy_magic_size ||
      std::memcmp(preamble, npy_magic, npy_magic_size) != 0) {
    throw FileError(path + ": not a .npy file: invalid magic string at byte 0 "
                    "(a .npy file starts with \"\\x93NUMPY\")");
  }
  if (file_size < 8) {
    throw FileError(path + ": truncated .npy file: it ends at byte " +
                    std::to_string(file_size) + " before the format version");
  }
  const int major = preamble[6];
  const int minor = preamble[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    throw FileError(path + ": unsupported .npy format version " + std::to_string(major) +
                    "." + std::to_string(minor) +
                    " at byte 6; the supported versions are 1.0, 2.0 and 3.0");
  }
  const std::size_t length_size = major == 1 ? 2 : 4;
  const std::size_t header_start = 8 + length_size;
  if (file_size < header_start) {
    throw FileError(path + ": truncated .npy file: it ends at byte " +
                    std::to_string(file_size) + " inside the header length");
  }
  const std::size_t header_length = read_little_endian(preamble + 8, length_size);
  const std::size_t data_start = header_start + header_length;
  if (data_start > file_size) {
    throw FileError(path + ": invalid .npy header at byte 8: the header length " +
                    std::to_string(header_length) + " runs past the end of the file (" +
                    std::to_string(file_size) + " bytes)");
  }

  // Header dict.
  std::string header_text(header_length, '\0');
  in.seekg(static_cast<std::streamoff>(header_start), std::ios::beg);
  in.read(header_text.data(), static_cast<std::streamsize>(header_length));
  if (!in) {
    throw FileError(path + ": failed to read the .npy header: " +
                    std::generic_category().message(errno));
  }
  const detail::NpyHeader header =
      detail::parse_npy_header(path, header_text, header_start, dtype_list(accepted));
  check_supported_header(path, header, accepted, reader.type);
  reader.shape = header.shape;

  // Size of the data section.
  if (!compute_array_size(reader.shape, npy_item_size(reader.type), reader.count,
                          reader.data_bytes)) {
    throw FileError(path + ": invalid .npy header at byte " +
                    std::to_string(header.shape_offset) + ": the byte size of shape " +
                    shape_to_string(reader.shape) + " overflows a 64-bit size");
  }
  const std::size_t actual_bytes = file_size - data_start;
  if (actual_bytes != reader.data_bytes) {
    throw FileError(path + ": the data section is " + std::to_string(actual_bytes) +
                    " bytes, but shape " + shape_to_string(reader.shape) + " of dtype '" +
                    npy_descr(reader.type) + "' needs " + std::to_string(reader.data_bytes) +
                    " bytes" + (actual_bytes < reader.data_bytes ? " (truncated file)" : ""));
  }
  return reader;
}

// Reads the whole data section into `destination` in one read call.
void read_npy_data(NpyReader& reader, const std::string& path, void* destination) {
  if (reader.data_bytes == 0) return;
  reader.in.read(static_cast<char*>(destination),
                 static_cast<std::streamsize>(reader.data_bytes));
  if (!reader.in) {
    throw FileError(path + ": failed to read the .npy data: " +
                    std::generic_category().message(errno));
  }
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  NpyReader reader =
      open_npy(path, {std::begin(all_npy_types), std::end(all_npy_types)});
  NpyArray array;
  array.type = reader.type;
  array.shape = reader.shape;
  array.data.resize(reader.data_bytes);
  read_npy_data(reader, path, array.data.data());
  return array;
}

namespace {

[[noreturn]] void throw_invalid_value(const std::string& path, std::size_t index,
                                      std::size_t cols, double value, const std::string& rule) {
  throw InvalidArgument(path + ": value " + format_number(value) + " at row " +
                        std::to_string(index / cols) + ", column " +
                        std::to_string(index % cols) + " (0-based) is invalid; " + rule);
}

// Checks that every value is finite and at most `max_magnitude` in
// magnitude. Blocks are tested without branches, so that the compiler can
// vectorise the loop. Only a block that fails is searched for the first
// offending value.
template <class T>
void check_values(const std::string& path, const T* values, std::size_t count,
                  std::size_t cols, T max_magnitude, const std::string& overflow_rule) {
  constexpr std::size_t block_size = 4096;
  for (std::size_t start = 0; start < count; start += block_size) {
    const std::size_t end = std::min(count, start + block_size);
    bool all_valid = true;
    for (std::size_t i = start; i < end; ++i) {
      // False for NaN, infinities and magnitudes above the limit.
      all_valid &= std::fabs(values[i]) <= max_magnitude;
    }
    if (all_valid) continue;
    for (std::size_t i = start; i < end; ++i) {
      const double value = static_cast<double>(values[i]);
      if (!std::isfinite(value)) {
        throw_invalid_value(path, i, cols, value, "every value must be finite");
      }
      if (std::fabs(value) > static_cast<double>(max_magnitude)) {
        throw_invalid_value(path, i, cols, value, overflow_rule);
      }
    }
  }
}

// Reads the data of `reader`, whose type is float32 or float64, into
// `values` as T, checking every value.
template <class T>
void read_float_data(NpyReader& reader, const std::string& path, std::size_t cols,
                     std::vector<T>& values) {
  values.resize(reader.count);
  if (reader.type == npy_type_of<T>) {
    read_npy_data(reader, path, values.data());
    check_values<T>(path, values.data(), values.size(), cols,
                    std::numeric_limits<T>::max(), "");
    return;
  }

  // The file contains the other floating-point type, so read it into a
  // buffer of that type and convert after the check.
  using Source = std::conditional_t<std::is_same_v<T, float>, double, float>;
  const std::unique_ptr<Source[]> buffer(new Source[reader.count]);
  read_npy_data(reader, path, buffer.get());
  const Source max_magnitude =
      std::is_same_v<T, float> ? static_cast<Source>(FLT_MAX)
                               : std::numeric_limits<Source>::max();
  check_values<Source>(path, buffer.get(), reader.count, cols, max_magnitude,
                       "float32 cannot represent magnitudes above " +
                           format_number(FLT_MAX) + "; run in float64 or rescale the data");
  for (std::size_t i = 0; i < reader.count; ++i) values[i] = static_cast<T>(buffer[i]);
}

}  // namespace

template <class T>
Matrix<T> read_npy_matrix(const std::string& path, std::ptrdiff_t expected_cols) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "read_npy_matrix reads float or double");
  NpyReader reader = open_npy(path, {NpyType::float32, NpyType::float64});
  const std::string shape_text = shape_to_string(reader.shape);

  Matrix<T> matrix;
  if (reader.shape.size() == 2) {
    matrix.rows = reader.shape[0];
    matrix.cols = reader.shape[1];
  } else if (reader.shape.size() == 1 && expected_cols == 1) {
    matrix.rows = reader.shape[0];
    matrix.cols = 1;
  } else {
    const std::string cols_text = expected_cols >= 0 ? std::to_string(expected_cols) : "cols";
    throw InvalidArgument(path + ": array of shape " + shape_text +
                          " is not a matrix; expected shape (rows, " + cols_text + ")" +
                          (expected_cols == 1 ? " or (rows,)" : ""));
  }
  if (matrix.rows == 0) {
    throw InvalidArgument(path + ": array of shape " + shape_text +
                          " has no rows; at least one row is required");
  }
  if (expected_cols >= 0 && matrix.cols != static_cast<std::size_t>(expected_cols)) {
    throw InvalidArgument(path + ": array of shape " + shape_text + " has " +
                          std::to_string(matrix.cols) + " columns, but " +
                          std::to_string(expected_cols) + " are expected");
  }
  if (matrix.cols == 0) {
    throw InvalidArgument(path + ": array of shape " + shape_text +
                          " has no columns; at least one column is required");
  }

  read_float_data(reader, path, matrix.cols, matrix.values);
  return matrix;
}

template Matrix<float> read_npy_matrix<float>(const std::string&, std::ptrdiff_t);
template Matrix<double> read_npy_matrix<double>(const std::string&, std::ptrdiff_t);

void write_npy(std::ostream& out, NpyType type, const std::vector<std::size_t>& shape,
               const void* data) {
  const std::size_t bytes = write_npy_header(out, type, shape);
  if (data == nullptr && bytes > 0) {
    throw InvalidArgument("write_npy: data is null for an array of shape " +
                          shape_to_string(shape));
  }
  if (bytes > 0) {
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  }
}

std::size_t write_npy_header(std::ostream& out, NpyType type,
                             const std::vector<std::size_t>& shape) {
  std::size_t count = 0;
  std::size_t bytes = 0;
  if (!compute_array_size(shape, npy_item_size(type), count, bytes) ||
      bytes > static_cast<std::size_t>(std::numeric_limits<std::streamsize>::max())) {
    throw InvalidArgument("write_npy: the byte size of shape " + shape_to_string(shape) +
                          " of dtype '" + npy_descr(type) + "' overflows a 64-bit size");
  }
  // numpy writes the keys in sorted order with a trailing ", " each.
  const std::string dict = std::string("{'descr': '") + npy_descr(type) +
                           "', 'fortran_order': False, 'shape': " + shape_to_string(shape) +
                           ", }";
  std::size_t length_size = 2;
  std::size_t header_length = 0;
  for (;;) {
    const std::size_t unpadded = 8 + length_size + dict.size() + 1;
    const std::size_t padding = (npy_alignment - unpadded % npy_alignment) % npy_alignment;
    header_length = dict.size() + padding + 1;
    if (length_size == 4 || header_length <= 0xFFFF) break;
    length_size = 4;
  }
  if (header_length > 0xFFFFFFFFu) {
    throw InvalidArgument("write_npy: the header for shape " + shape_to_string(shape) +
                          " exceeds 4 GiB");
  }

  std::string preamble(npy_magic, npy_magic_size);
  preamble += static_cast<char>(length_size == 2 ? 1 : 2);
  preamble += '\0';
  for (std::size_t i = 0; i < length_size; ++i) {
    preamble += static_cast<char>((header_length >> (8 * i)) & 0xFF);
  }
  std::string header = dict;
  header.append(header_length - dict.size() - 1, ' ');
  header += '\n';

  out.write(preamble.data(), static_cast<std::streamsize>(preamble.size()));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  return bytes;
}

template <class T>
void write_npy_file(const std::string& path, const std::vector<std::size_t>& shape,
                    const T* data) {
  AtomicFile file(path);
  write_npy(file.stream(), npy_type_of<T>, shape, data);
  file.commit();
}

template void write_npy_file<float>(const std::string&, const std::vector<std::size_t>&,
                                    const float*);
template void write_npy_file<double>(const std::string&, const std::vector<std::size_t>&,
                                     const double*);
template void write_npy_file<std::int32_t>(const std::string&,
                                           const std::vector<std::size_t>&,
                                           const std::int32_t*);
template void write_npy_file<std::int64_t>(const std::string&,
                                           const std::vector<std::size_t>&,
                                           const std::int64_t*);
template void write_npy_file<std::uint8_t>(const std::string&,
                                           const std::vector<std::size_t>&,
                                           const std::uint8_t*);
template void write_npy_file<std::uint32_t>(const std::string&,
                                            const std::vector<std::size_t>&,
                                            const std::uint32_t*);

}  // namespace fmg
