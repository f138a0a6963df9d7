// Reader of the checkpoints that nnx.save writes (python/nnx/io.py): a zip archive of stored,
// uncompressed entries, one .npy array each, plus the JSON entry nnx.json. Only that subset of
// zip is read (no compression, no encryption, no multi-disk archives), which keeps nnx free of
// zlib; anything else is refused with a message, never misread. Little-endian hosts only, as nnx.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace nnx::runtime {

class NpzArchive {
 public:
  // Reads the whole file and its central directory. std::runtime_error naming the file if it is
  // missing, unreadable, not a zip archive, or truncated.
  explicit NpzArchive(const std::string& path);

  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  // The bytes of entry `name`, CRC-32 checked. std::runtime_error if absent, compressed or corrupt.
  std::string read(const std::string& name) const;
  const std::string& path() const { return path_; }

 private:
  struct Entry {
    uint64_t header_offset = 0, size = 0;
    uint32_t crc = 0;
    uint16_t method = 0, flags = 0;
  };
  void read_central_directory();

  std::string path_;
  std::string bytes_;
  std::map<std::string, Entry> entries_;
};

// An .npy array converted to float32 (from little-endian float32 or float64).
struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// Parses the bytes of an .npy file (format versions 1 to 3, C order). `what` names the array in
// errors (std::runtime_error): another dtype, Fortran order, a malformed header or a size that
// does not match the shape.
NpyArray parse_npy_as_float(const std::string& bytes, const std::string& what);

}  // namespace nnx::runtime
