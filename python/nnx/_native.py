"""Where an installed nnx keeps its C++ library (headers, static library, CMake package), for
C++ programs built against it: ``nnx.get_include()`` and ``nnx.get_cmake_dir()`` (docs/cpp.md).

A wheel (``pip install .``) installs them inside the package: ``nnx/include/nnx/*.h``,
``nnx/lib/libnnx.a`` and ``nnx/lib/cmake/nnx/nnxConfig.cmake``.
"""

from __future__ import annotations

import os

__all__ = ["get_cmake_dir", "get_include"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _installed(folder: str, marker: str) -> str:
    if not os.path.isfile(os.path.join(folder, marker)):
        raise FileNotFoundError(
            f"nnx: no C++ library in {folder} ({marker} is missing): only an nnx installed from "
            "a wheel (pip install .) carries one; from a source tree, install it with CMake "
            "(cmake --install, see docs/cpp.md)")
    return folder


def get_include() -> str:
    """The folder holding ``nnx/*.h``, the headers of nnx's C++ API (add it to the include
    path; the library itself is in ``get_cmake_dir()``'s package)."""
    return _installed(os.path.join(_PACKAGE, "include"), os.path.join("nnx", "nnx.h"))


def get_cmake_dir() -> str:
    """The folder holding ``nnxConfig.cmake``: configure a CMake project with
    ``-Dnnx_DIR=<this folder>`` and ``find_package(nnx CONFIG REQUIRED)`` finds the library
    installed with this nnx (``target_link_libraries(app PRIVATE nnx::nnx)``)."""
    return _installed(os.path.join(_PACKAGE, "lib", "cmake", "nnx"), "nnxConfig.cmake")
