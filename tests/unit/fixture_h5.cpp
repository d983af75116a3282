#include "fixture_h5.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace shardlm::testing {

H5Fixture::H5Fixture(const std::string& path) {
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file_ < 0) throw std::runtime_error("cannot open fixture " + path);
}

H5Fixture::~H5Fixture() {
  H5Fclose(file_);
}

namespace {
template <typename T>
std::vector<T> read_all(hid_t file, const std::string& name, hid_t mem_type) {
  hid_t ds = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
  if (ds < 0) throw std::runtime_error("fixture has no dataset " + name);
  hid_t space = H5Dget_space(ds);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  std::vector<T> out(static_cast<size_t>(n));
  H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
  H5Sclose(space);
  H5Dclose(ds);
  return out;
}
}  // namespace

std::vector<double> H5Fixture::doubles(const std::string& name) const {
  return read_all<double>(file_, name, H5T_NATIVE_DOUBLE);
}
std::vector<int> H5Fixture::ints(const std::string& name) const {
  return read_all<int>(file_, name, H5T_NATIVE_INT);
}

std::vector<long long> H5Fixture::shape(const std::string& name) const {
  hid_t ds = H5Dopen2(file_, name.c_str(), H5P_DEFAULT);
  if (ds < 0) throw std::runtime_error("fixture has no dataset " + name);
  hid_t space = H5Dget_space(ds);
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  H5Sclose(space);
  H5Dclose(ds);
  return {dims.begin(), dims.end()};
}

double H5Fixture::attr_double(const std::string& object, const std::string& name) const {
  double v = 0;
  hid_t a = H5Aopen_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) throw std::runtime_error("fixture has no attribute " + object + "@" + name);
  H5Aread(a, H5T_NATIVE_DOUBLE, &v);
  H5Aclose(a);
  return v;
}

int H5Fixture::attr_int(const std::string& object, const std::string& name) const {
  return static_cast<int>(std::lround(attr_double(object, name)));
}

bool H5Fixture::has_attr(const std::string& object, const std::string& name) const {
  return H5Aexists_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

std::string H5Fixture::attr_string(const std::string& object, const std::string& name) const {
  hid_t a = H5Aopen_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) throw std::runtime_error("fixture has no attribute " + object + "@" + name);
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);  // h5py writes str as UTF-8
  char* text = nullptr;
  const herr_t rc = H5Aread(a, type, &text);
  std::string value = rc >= 0 && text ? text : "";
  if (text) H5free_memory(text);
  H5Tclose(type);
  H5Aclose(a);
  if (rc < 0)
    throw std::runtime_error("fixture attribute " + object + "@" + name + " is no string");
  return value;
}

double max_rel_error(const std::vector<float>& got, const std::vector<double>& want) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::abs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return scale > 0 ? err / scale : err;
}

}  // namespace shardlm::testing
