#include <cstdlib>
#include <new>

#include "internal.h"

namespace nnx::runtime {
namespace {

struct Buffer {
  void* data = nullptr;
  size_t bytes = 0;
  ~Buffer() { std::free(data); }
};

}  // namespace

void* workspace(Slot slot, size_t bytes) {
  thread_local Buffer buffers[int(Slot::count)];
  Buffer& buf = buffers[int(slot)];
  if (bytes > buf.bytes) {
    // Grow by at least 1.5x so a slowly rising size does not reallocate on every call.
    size_t want = bytes > buf.bytes + buf.bytes / 2 ? bytes : buf.bytes + buf.bytes / 2;
    want = (want + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, want);
    if (p == nullptr) throw std::bad_alloc();
    std::free(buf.data);
    buf.data = p;
    buf.bytes = want;
  }
  return buf.data;
}

}  // namespace nnx::runtime
