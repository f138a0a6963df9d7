// The zip and .npy subset that nnx.save writes; see npz.h.
#include "npz.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace nnx::runtime {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr uint32_t kZip64End = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint64_t kZip64Marker = 0xFFFFFFFFu;  // a 32-bit field whose value is in the zip64 extra

// The little-endian integer of `width` bytes at `pos`; callers check the bounds first.
uint64_t little_endian(const std::string& bytes, size_t pos, int width) {
  uint64_t value = 0;
  for (int i = width - 1; i >= 0; --i) value = (value << 8) | uint8_t(bytes[pos + size_t(i)]);
  return value;
}

// The CRC-32 of zip (reflected polynomial 0xEDB88320), one table lookup per byte.
uint32_t crc32(const char* data, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ uint8_t(data[i])) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

struct CentralDirectory {
  uint64_t offset, size, count;
};

// Where the central directory is, from the end record that closes the archive (followed only by
// a comment of at most 64 KiB), or from the zip64 end record when the archive needs one.
CentralDirectory find_central_directory(const std::string& bytes, const std::string& path) {
  const auto fail = [&path](const std::string& why) { throw std::runtime_error(path + ": " + why); };
  const auto field = [&bytes](size_t pos, int width) { return little_endian(bytes, pos, width); };
  const size_t n = bytes.size();
  if (n < 22) fail("not a zip archive (" + std::to_string(n) + " bytes)");
  size_t end_record = std::string::npos;
  for (size_t pos = n - 22;; --pos) {
    if (field(pos, 4) == kEndOfCentralDirectory) {
      end_record = pos;
      break;
    }
    if (pos == 0 || n - pos >= 22 + 65535) break;
  }
  if (end_record == std::string::npos) fail("not a zip archive (no end of central directory)");
  if (field(end_record + 4, 2) != 0 || field(end_record + 6, 2) != 0)
    fail("multi-disk zip archives are not supported");
  CentralDirectory dir{field(end_record + 16, 4), field(end_record + 12, 4),
                       field(end_record + 10, 2)};
  if (dir.count == 0xFFFF || dir.size == kZip64Marker || dir.offset == kZip64Marker) {
    // Zip64: the real values are in the zip64 end record, which a locator just before points to.
    if (end_record < 20 || field(end_record - 20, 4) != kZip64Locator)
      fail("corrupt zip64 archive (no zip64 end locator)");
    const uint64_t record = field(end_record - 20 + 8, 8);
    if (record > n || n - record < 56 || field(size_t(record), 4) != kZip64End)
      fail("corrupt zip64 archive (bad zip64 end record)");
    dir = {field(size_t(record) + 48, 8), field(size_t(record) + 40, 8), field(size_t(record) + 32, 8)};
  }
  if (dir.offset > n || dir.size > n - dir.offset)
    fail("truncated (the central directory lies past the end of the file)");
  return dir;
}

}  // namespace

NpzArchive::NpzArchive(const std::string& path) : path_(path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw std::runtime_error(path + ": no such file");
  if (std::filesystem::is_directory(path, ec))
    throw std::runtime_error(path + ": is a directory, not a model file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open (" + std::strerror(errno) + ")");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0);
  bytes_.resize(size > 0 ? size_t(size) : 0);
  if (size < 0 || !in.read(bytes_.data(), std::streamsize(bytes_.size())))
    throw std::runtime_error(path + ": read error");
  read_central_directory();
}

void NpzArchive::read_central_directory() {
  const auto fail = [this](const std::string& why) { throw std::runtime_error(path_ + ": " + why); };
  const auto field = [this](size_t pos, int width) { return little_endian(bytes_, pos, width); };
  const auto [dir_offset, dir_size, count] = find_central_directory(bytes_, path_);
  size_t pos = size_t(dir_offset);
  const size_t dir_end = size_t(dir_offset + dir_size);
  for (uint64_t i = 0; i < count; ++i) {
    if (dir_end - pos < 46 || field(pos, 4) != kCentralHeader)
      fail("corrupt central directory (entry " + std::to_string(i) + ")");
    const size_t name_len = field(pos + 28, 2), extra_len = field(pos + 30, 2),
                 comment_len = field(pos + 32, 2);
    if (dir_end - pos - 46 < name_len + extra_len + comment_len)
      fail("corrupt central directory (entry " + std::to_string(i) + ")");
    Entry e;
    e.flags = uint16_t(field(pos + 8, 2));
    e.method = uint16_t(field(pos + 10, 2));
    e.crc = uint32_t(field(pos + 16, 4));
    uint64_t stored = field(pos + 20, 4), size = field(pos + 24, 4), offset = field(pos + 42, 4);
    // The zip64 extra field (id 1) holds, in this order, the 64-bit values of the fields above
    // that read 0xFFFFFFFF.
    size_t x = pos + 46 + name_len;
    const size_t extra_end = x + extra_len;
    while (extra_end - x >= 4) {
      const size_t id = field(x, 2), len = field(x + 2, 2);
      if (extra_end - x - 4 < len) fail("corrupt extra field in the central directory");
      size_t f = x + 4;
      for (uint64_t* value : {&size, &stored, &offset}) {
        if (id != 1 || *value != kZip64Marker) continue;  // not zip64, or a 32-bit value
        if (x + 4 + len - f < 8) fail("corrupt zip64 extra field in the central directory");
        *value = field(f, 8);
        f += 8;
      }
      x += 4 + len;
    }
    if (e.method == 0 && stored != size)
      fail("corrupt central directory (stored entry with two sizes)");
    e.size = stored;
    e.header_offset = offset;
    entries_[bytes_.substr(pos + 46, name_len)] = e;
    pos += 46 + name_len + extra_len + comment_len;
  }
}

std::string NpzArchive::read(const std::string& name) const {
  const auto fail = [&](const std::string& why) { throw std::runtime_error(path_ + ": " + why); };
  const auto it = entries_.find(name);
  if (it == entries_.end()) fail("no entry '" + name + "' in the archive");
  const Entry& e = it->second;
  if (e.flags & 1) fail("entry '" + name + "' is encrypted");
  if (e.method != 0)
    fail("entry '" + name + "' is compressed (zip method " + std::to_string(e.method) +
         "); nnx reads stored entries only, as nnx.save writes them");
  const uint64_t n = bytes_.size(), at = e.header_offset;
  if (at > n || n - at < 30 || little_endian(bytes_, size_t(at), 4) != kLocalHeader)
    fail("truncated or corrupt (entry '" + name + "' has no local header)");
  const uint64_t data = at + 30 + little_endian(bytes_, size_t(at) + 26, 2) +
                        little_endian(bytes_, size_t(at) + 28, 2);
  if (data > n || n - data < e.size)
    fail("truncated (entry '" + name + "' runs past the end of the file)");
  if (crc32(bytes_.data() + data, size_t(e.size)) != e.crc)
    fail("corrupt (CRC-32 mismatch in entry '" + name + "')");
  return bytes_.substr(size_t(data), size_t(e.size));
}

namespace {

// The position just after "'key':" and any spaces in an .npy header dict, or npos.
size_t value_of(const std::string& header, const std::string& key) {
  size_t pos = header.find("'" + key + "':");
  if (pos == std::string::npos) return pos;
  pos += key.size() + 3;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  return pos;
}

}  // namespace

NpyArray parse_npy_as_float(const std::string& bytes, const std::string& what) {
  const auto fail = [&](const std::string& why) { throw std::runtime_error(what + ": " + why); };
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
    fail("not an .npy array (bad magic)");
  const int major = uint8_t(bytes[6]);
  if (major < 1 || major > 3) fail("unsupported .npy format version " + std::to_string(major));
  const size_t start = major == 1 ? 10 : 12;
  if (bytes.size() < start) fail("truncated .npy header");
  const size_t header_len = little_endian(bytes, 8, major == 1 ? 2 : 4);
  if (bytes.size() - start < header_len) fail("truncated .npy header");
  const std::string header = bytes.substr(start, header_len);

  size_t pos = value_of(header, "descr");
  if (pos == std::string::npos || header[pos] != '\'') fail("malformed .npy header: " + header);
  const std::string descr = header.substr(pos + 1, header.find('\'', pos + 1) - pos - 1);
  if (descr != "<f4" && descr != "<f8")
    fail("dtype '" + descr + "': only float32 and float64 arrays can be read as float32");
  pos = value_of(header, "fortran_order");
  if (pos == std::string::npos) fail("malformed .npy header: " + header);
  if (header.compare(pos, 5, "False") != 0) fail("Fortran-ordered arrays are not supported");
  pos = value_of(header, "shape");
  const size_t close = pos == std::string::npos ? pos : header.find(')', pos);
  if (pos == std::string::npos || header[pos] != '(' || close == std::string::npos)
    fail("malformed .npy header: " + header);

  NpyArray out;
  uint64_t count = 1;
  const size_t item = descr == "<f4" ? 4 : 8;
  const size_t available = bytes.size() - start - header_len;
  for (size_t p = pos + 1; p < close;) {
    while (p < close && (header[p] == ' ' || header[p] == ',')) ++p;
    if (p == close) break;
    size_t used = 0;
    int64_t dim = -1;
    try {
      dim = std::stoll(header.substr(p, close - p), &used);
    } catch (const std::exception&) {
    }
    if (used == 0 || dim < 0) fail("malformed shape in .npy header: " + header);
    out.shape.push_back(dim);
    // Capped just above what the bytes present can hold, so that the product cannot overflow.
    const uint64_t most = available / item;
    count = dim == 0 ? 0 : count > most / uint64_t(dim) ? most + 1 : count * uint64_t(dim);
    p += used;
  }
  if (count * item != available)
    fail("holds " + std::to_string(available) + " bytes of data where its header announces " +
         std::to_string(count) + " values of " + std::to_string(item) + " bytes");
  out.values.resize(size_t(count));
  const char* data = bytes.data() + start + header_len;
  if (item == 4) {
    std::memcpy(out.values.data(), data, size_t(count) * 4);
  } else {
    for (size_t i = 0; i < count; ++i) {
      double v;
      std::memcpy(&v, data + 8 * i, 8);
      out.values[i] = float(v);
    }
  }
  return out;
}

}  // namespace nnx::runtime
