// The command line of a benchmark program: "--name value" flags and bare "--name" switches,
// declared once with their targets (which hold the defaults). Numbers go through core/parse, so
// every benchmark refuses "--steps x" the same way the `shardlm` binary does.
//   int steps = 5;
//   bench::Flags flags("usage: bench_x [--steps N]");
//   flags.add("steps", &steps);
//   if (!flags.parse(argc, argv)) { std::puts(flags.usage().c_str()); return 0; }  // --help
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace shardlm::bench {

class Flags {
 public:
  explicit Flags(std::string usage) : usage_(std::move(usage)) {}

  // `name` without the leading "--". The target keeps its value unless the flag is given.
  Flags& add(std::string name, int* target);
  Flags& add(std::string name, int64_t* target);
  Flags& add(std::string name, double* target);
  Flags& add(std::string name, float* target);
  Flags& add(std::string name, std::string* target);
  Flags& add(std::string name, std::vector<int>* target);  // "a,b,c"
  // A flag without a value: sets *target to true.
  Flags& add_switch(std::string name, bool* target);

  // Reads argv[1..argc). Returns false when --help was given (nothing else is read); throws
  // shardlm::Error naming the flag on an unknown flag, a missing value or a
  // malformed number.
  bool parse(int argc, char** argv) const;
  const std::string& usage() const { return usage_; }

 private:
  using Target = std::variant<int*, int64_t*, double*, float*, std::string*, std::vector<int>*>;
  struct Flag {
    std::string name;
    Target target;
    bool* switch_target = nullptr;  // set for switches, which take no value
  };

  Flags& add_flag(std::string name, Target target, bool* switch_target = nullptr);
  const Flag* find(const std::string& arg) const;

  std::string usage_;
  std::vector<Flag> flags_;
};

}  // namespace shardlm::bench
