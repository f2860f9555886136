// Parser for the header dict of a .npy file. Internal to the I/O library.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace fmg::detail {

/// Values of a .npy header dict, with the file offsets of the values for
/// error messages.
struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::size_t> shape;
  std::size_t descr_offset = 0;
  std::size_t fortran_order_offset = 0;
  std::size_t shape_offset = 0;
};

/// Parses the header dict `text` of the .npy file `path`, which starts at
/// byte `file_offset` of the file. Throws FileError naming the file and the
/// byte offset of the problem: malformed syntax, a missing, unknown or
/// repeated key, or a structured dtype (a descr list), whose message lists
/// `supported_dtypes`, the dtypes the caller accepts.
NpyHeader parse_npy_header(const std::string& path, const std::string& text,
                           std::size_t file_offset, const std::string& supported_dtypes);

}  // namespace fmg::detail
