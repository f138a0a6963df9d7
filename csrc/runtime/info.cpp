#include <string>

#include "nnx/runtime.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nnx {

BuildInfo build_info() {
  BuildInfo info;
  info.version = NNX_VERSION_STRING;
  info.build_type = NNX_BUILD_TYPE;
#if defined(__clang__)
  info.compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  info.compiler = "gcc " __VERSION__;
#else
  info.compiler = "unknown";
#endif
#ifdef _OPENMP
  // _OPENMP is the date of the spec the compiler implements; name the runtime it links.
  const int spec = _OPENMP;
  const char* version = spec >= 202011 ? "5.1" : spec >= 201811 ? "5.0" : spec >= 201511 ? "4.5"
                        : spec >= 201307 ? "4.0" : "3.x";
#if defined(__clang__)
  info.openmp = std::string("OpenMP ") + version + " (libomp)";
#else
  info.openmp = std::string("OpenMP ") + version + " (libgomp)";
#endif
#else
  info.openmp = "none (single-threaded build)";
#endif
  info.native = NNX_NATIVE_BUILD;
  return info;
}

}  // namespace nnx
