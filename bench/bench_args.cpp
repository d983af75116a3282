#include "bench_args.h"

#include <utility>

#include "core/error.h"
#include "core/parse.h"

namespace shardlm::bench {

namespace {

// Stores the text of flag `what` into one target, parsed for the target's type.
struct Assign {
  const std::string& what;
  const std::string& text;
  void operator()(int* t) const { *t = parse_int(what, text); }
  void operator()(int64_t* t) const { *t = parse_int64(what, text); }
  void operator()(double* t) const { *t = parse_double(what, text); }
  void operator()(float* t) const { *t = static_cast<float>(parse_double(what, text)); }
  void operator()(std::string* t) const { *t = text; }
  void operator()(std::vector<int>* t) const { *t = parse_int_list(what, text); }
};

}  // namespace

Flags& Flags::add_flag(std::string name, Target target, bool* switch_target) {
  flags_.push_back({"--" + std::move(name), target, switch_target});
  return *this;
}

Flags& Flags::add(std::string name, int* target) {
  return add_flag(std::move(name), target);
}
Flags& Flags::add(std::string name, int64_t* target) {
  return add_flag(std::move(name), target);
}
Flags& Flags::add(std::string name, double* target) {
  return add_flag(std::move(name), target);
}
Flags& Flags::add(std::string name, float* target) {
  return add_flag(std::move(name), target);
}
Flags& Flags::add(std::string name, std::string* target) {
  return add_flag(std::move(name), target);
}
Flags& Flags::add(std::string name, std::vector<int>* target) {
  return add_flag(std::move(name), target);
}
Flags& Flags::add_switch(std::string name, bool* target) {
  return add_flag(std::move(name), Target{}, target);
}

const Flags::Flag* Flags::find(const std::string& arg) const {
  for (const Flag& f : flags_)
    if (f.name == arg) return &f;
  return nullptr;
}

bool Flags::parse(int argc, char** argv) const {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return false;
    const Flag* flag = find(arg);
    if (!flag) fail("unknown flag '" + arg + "' (--help lists the flags)");
    if (flag->switch_target) {
      *flag->switch_target = true;
      continue;
    }
    if (i + 1 >= argc) fail(arg + " needs a value (--help lists the flags)");
    const std::string value = argv[++i];
    std::visit(Assign{arg, value}, flag->target);
  }
  return true;
}

}  // namespace shardlm::bench
