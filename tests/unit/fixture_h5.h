// Reading the PyTorch reference fixture (tests/reference/gpt2_fixture.h5) in tests.
#pragma once

#include <hdf5.h>

#include <string>
#include <vector>

namespace shardlm::testing {

class H5Fixture {
 public:
  explicit H5Fixture(const std::string& path);
  ~H5Fixture();
  // Any numeric dataset, converted to double / int.
  std::vector<double> doubles(const std::string& dataset) const;
  std::vector<int> ints(const std::string& dataset) const;
  std::vector<long long> shape(const std::string& dataset) const;
  double attr_double(const std::string& object, const std::string& name) const;
  int attr_int(const std::string& object, const std::string& name) const;
  bool has_attr(const std::string& object, const std::string& name) const;
  // A variable-length string attribute (what h5py writes for a Python str).
  std::string attr_string(const std::string& object, const std::string& name) const;

 private:
  hid_t file_;
};

// max |a - b| / max |b|: the relative error measure the reference tests use for whole tensors.
double max_rel_error(const std::vector<float>& got, const std::vector<double>& want);

}  // namespace shardlm::testing
