#include "auth/dmarc/public_suffix.hpp"

#include <fstream>
#include <sstream>
#include <vector>

#include "base/strings.hpp"

namespace hikyaku::auth::dmarc {
namespace {

std::string normalize(std::string_view d) {
  if (!d.empty() && d.back() == '.') d.remove_suffix(1);
  return base::to_lower(d);
}

}  // namespace

base::Result<PublicSuffixList> PublicSuffixList::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return base::make_error("cannot open public suffix list " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return base::make_error("cannot read public suffix list " + path);
  PublicSuffixList psl = parse(ss.str());
  if (psl.size() == 0) return base::make_error("empty public suffix list " + path);
  return psl;
}

PublicSuffixList PublicSuffixList::parse(std::string_view text) {
  PublicSuffixList psl;
  for (std::string_view line : base::split(text, '\n')) {
    // A rule is the first whitespace-delimited word; "//" starts a comment.
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = base::trim(line);
    if (line.empty() || line.starts_with("//")) continue;
    auto sp = line.find_first_of(" \t");
    if (sp != std::string_view::npos) line = line.substr(0, sp);
    if (line.starts_with("!")) psl.exceptions_.insert(normalize(line.substr(1)));
    else if (line.starts_with("*.")) psl.wildcards_.insert(normalize(line.substr(2)));
    else psl.rules_.insert(normalize(line));
  }
  return psl;
}

std::string PublicSuffixList::public_suffix(std::string_view domain_in) const {
  std::string domain = normalize(domain_in);
  // Suffix start offsets from the longest candidate to the shortest.
  std::vector<size_t> starts{0};
  for (size_t i = 0; i < domain.size(); ++i)
    if (domain[i] == '.') starts.push_back(i + 1);
  for (size_t k = 0; k < starts.size(); ++k) {
    std::string_view cand = std::string_view(domain).substr(starts[k]);
    // An exception rule wins: its suffix is the rule minus its first label.
    if (exceptions_.count(std::string(cand)) != 0)
      return k + 1 < starts.size() ? std::string(std::string_view(domain).substr(starts[k + 1])) : std::string(cand);
    if (rules_.count(std::string(cand)) != 0) return std::string(cand);
    // "*.parent": this candidate is a suffix if its parent is a wildcard rule.
    if (k + 1 < starts.size() && wildcards_.count(std::string(std::string_view(domain).substr(starts[k + 1]))) != 0)
      return std::string(cand);
  }
  // The implicit "*" rule: the last label.
  return std::string(std::string_view(domain).substr(starts.back()));
}

std::string PublicSuffixList::organizational_domain(std::string_view domain_in) const {
  std::string domain = normalize(domain_in);
  std::string suffix = public_suffix(domain);
  if (suffix.size() >= domain.size()) return domain;
  // One more label to the left of the suffix.
  std::string_view head = std::string_view(domain).substr(0, domain.size() - suffix.size() - 1);
  auto dot = head.rfind('.');
  return std::string(dot == std::string_view::npos ? std::string_view(domain)
                                                    : std::string_view(domain).substr(dot + 1));
}

}  // namespace hikyaku::auth::dmarc
