// BASIN_PYTHON_ONLY (pip install .): the package without libtorch has no features or probe.
#include <pybind11/pybind11.h>

namespace basin::python {

bool add_torch_functions(pybind11::module_&) {
    return false;
}

} // namespace basin::python
