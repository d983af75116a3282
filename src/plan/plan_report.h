// `shardlm plan`'s output: a table of the ranked layouts, the ones this build cannot run yet,
// a summary of the dropped ones, and the command for the best; or the same as JSON. The
// preflight's refusal (train/memory_preflight.h) reuses the role breakdown and the command.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "kernels/memory_account.h"
#include "plan/planner.h"

namespace shardlm {

// "parameters 1.2 GiB, gradients 1.2 GiB, optimizer 2.4 GiB, activations ..., ..." (roles
// with bytes only).
std::string role_breakdown(const MemoryTotals& t);
// "tp 2 pp 1 dp 2 zero 1 recompute none micro-batch 4 x 8"
std::string describe_layout(const Layout& l);

std::string plan_text(const PlanRequest& req, const Plan& plan, int top);
nlohmann::ordered_json plan_json(const PlanRequest& req, const Plan& plan, int top);

}  // namespace shardlm
