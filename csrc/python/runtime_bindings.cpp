#include <pybind11/stl.h>

#include <cstdlib>
#include <new>

#include "arrays.h"
#include "nnx/runtime.h"

namespace nnx::python {

void bind_runtime(py::module_& m) {
  m.def("cpu_features", [] {
    const CpuFeatures& f = cpu_features();
    py::dict d;
    d["vendor"] = f.vendor;
    d["brand"] = f.brand;
    d["sse4_2"] = f.sse42;
    d["avx"] = f.avx;
    d["avx2"] = f.avx2;
    d["fma"] = f.fma;
    d["avx512f"] = f.avx512f;
    d["avx512bw"] = f.avx512bw;
    d["avx512vl"] = f.avx512vl;
    d["avx512dq"] = f.avx512dq;
    d["os_saves_zmm"] = f.os_saves_zmm;
    return d;
  }, "CPU features detected with CPUID/XGETBV.");
  m.def("supported_isas", [] {
    std::vector<std::string> out;
    for (Isa isa : {Isa::ref, Isa::avx2, Isa::avx512})
      if (cpu_features().supports(isa)) out.emplace_back(isa_name(isa));
    return out;
  }, "ISA levels this CPU can run, from slowest to fastest.");
  m.def("active_isa", [] { return std::string(isa_name(active_isa())); },
        "The ISA level whose kernels run (set by NNX_ISA or CPUID).");
  m.def("set_isa", [](const std::string& name) { set_isa(parse_isa(name)); }, py::arg("name"),
        "Switch the kernel tables to 'ref', 'avx2' or 'avx512'. For tests and benchmarks: not "
        "safe while kernels run on other threads.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("get_num_threads", &get_num_threads);
  m.def("measure_fma_peak_gflops", [](int threads, double seconds) {
    py::gil_scoped_release release;
    return measure_fma_peak_gflops(threads, seconds);
  }, py::arg("num_threads") = 1, py::arg("seconds") = 0.2,
     "Best float32 FMA throughput of the active ISA, GFLOP/s, with num_threads threads.");
  // Uninitialised C-contiguous array on a 64-byte boundary, freed when numpy drops it. A C++
  // allocation because the same thing in Python (over-allocate, find the offset) costs ~5 us.
  m.def("empty_aligned", [](const std::vector<py::ssize_t>& shape, const py::dtype& dtype) {
    // Uninitialised memory read as Python object pointers would crash the interpreter.
    if (dtype.attr("hasobject").cast<bool>())
      throw py::type_error("empty_aligned: dtype " + std::string(py::str(dtype)) +
                           " holds Python objects; only plain numeric dtypes are allowed");
    return new_array(dtype, shape);
}, py::arg("shape"), py::arg("dtype"));
  m.def("build_info", [] {
    const BuildInfo b = build_info();
    py::dict d;
    d["version"] = b.version;
    d["build_type"] = b.build_type;
    d["compiler"] = b.compiler;
    d["openmp"] = b.openmp;
    d["native"] = b.native;
    return d;
  });
}

}  // namespace nnx::python
