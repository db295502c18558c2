#include "queue/flush_filter.hpp"

#include "base/strings.hpp"

namespace hikyaku::queue {

bool FlushFilter::matches(std::string_view id, const policy::SlotState& slot) const {
  if (!queue_id.empty() && id != queue_id) return false;
  if (domain.empty()) return true;
  if (!slot.target.remote()) return false;
  const auto at = slot.target.value.rfind('@');
  return at != std::string::npos && base::iequals(std::string_view(slot.target.value).substr(at + 1), domain);
}

}  // namespace hikyaku::queue
