// Purpose:   The ARC chain of a message: its ARC sets (ARC-Authentication-
//            Results, ARC-Message-Signature, ARC-Seal) grouped by instance,
//            with the structural checks shared by validation and sealing.
// Standards: RFC 8617 §4.1 (the three fields, i= instance), §4.2 (sets,
//            1 ≤ i ≤ 50), §4.2.1 (cv= values), §5.2 steps 1–3 (structure).
// Trust:     untrusted message headers; views point into the caller's message.
// Errors:    structural problems are reported as a reason string, not thrown.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/common/message.hpp"

namespace hikyaku::auth::arc {

// RFC 8617 §4.2.1 chain validation status, also the AR arc= result.
enum class ChainStatus { none, pass, fail };

std::string_view chain_status_name(ChainStatus s);

constexpr int kMaxInstances = 50;  // RFC 8617 §4.2.1

struct ArcSet {
  int instance = 0;
  const common::HeaderField* aar = nullptr;
  const common::HeaderField* ams = nullptr;
  const common::HeaderField* seal = nullptr;
};

struct Chain {
  std::vector<ArcSet> sets;  // sets[k].instance == k + 1 when `error` is empty
  std::string error;         // non-empty: the chain is structurally broken
  bool empty() const { return sets.empty() && error.empty(); }
};

// Group the ARC fields of `message` by instance and check the structure:
// one field of each kind per instance, instances 1..N with no gaps.
Chain collect_chain(const common::ParsedMessage& message);

// The i= of an ARC-Authentication-Results value ("i=3; authserv-id; …").
std::optional<int> aar_instance(std::string_view value);

}  // namespace hikyaku::auth::arc
