// IMAP THREAD: ORDEREDSUBJECT and REFERENCES (RFC 5256 §3), see thread.hpp.
#include "imap/protocol/thread.hpp"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>

namespace hikyaku::imap::protocol {

namespace {

// A thread tree deeper than this many levels is not made deeper: the link
// that would do it is refused as a loop is, and the message starts its own
// thread. It bounds the loop check (a walk to the root) per link.
constexpr size_t kMaxDepth = 1000;

constexpr int kNone = -1;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Sent date, then mailbox order (RFC 5256 §3: "In the case of an exact
// match on sent date ..., use the order in which the messages appear in the
// mailbox").
bool sent_before(const ThreadMessage& a, size_t ia, const ThreadMessage& b, size_t ib) {
  if (a.sent != b.sent) return a.sent < b.sent;
  return ia < ib;
}

void append_number(std::string& out, uint32_t n) { out += std::to_string(n); }

// The REFERENCES algorithm's containers (RFC 5256 §3 step 1): a message,
// or a dummy standing for a Message-ID that was only referred to.
class ThreadForest {
 public:
  explicit ThreadForest(const std::vector<ThreadMessage>& messages) : messages_(messages) {}

  std::string run() {
    link_all();
    std::vector<int> roots;
    for (size_t n = 0; n < nodes_.size(); ++n) {
      if (nodes_[n].parent == kNone) roots.push_back(static_cast<int>(n));  // step 2
    }
    roots = prune(roots, true);  // steps 3 and 4
    roots = group_by_subject(roots);  // step 5
    sort_siblings(roots);  // step 6
    std::string out;
    for (int root : roots) {
      out += '(';
      render(root, out);
      out += ')';
    }
    return out;
  }

 private:
  struct Node {
    int message = kNone;  // index into messages_; kNone: a dummy
    int parent = kNone;
    std::vector<int> children;
  };

  bool dummy(int n) const { return nodes_[n].message == kNone; }

  int add(int message) {
    nodes_.push_back(Node{message, kNone, {}});
    return static_cast<int>(nodes_.size() - 1);
  }

  int node_for_id(const std::string& id) {
    auto [it, inserted] = ids_.try_emplace(id, kNone);
    if (inserted) it->second = add(kNone);
    return it->second;
  }

  // Would making `child` a child of `parent` close a loop (child is parent
  // or one of its ancestors), or make the tree too deep?
  bool refused(int parent, int child) const {
    size_t depth = 0;
    for (int n = parent; n != kNone; n = nodes_[n].parent) {
      if (n == child || ++depth > kMaxDepth) return true;
    }
    return false;
  }

  void link(int parent, int child) {
    nodes_[child].parent = parent;
    nodes_[parent].children.push_back(child);
  }

  void unlink(int child) {
    auto& siblings = nodes_[nodes_[child].parent].children;
    siblings.erase(std::find(siblings.begin(), siblings.end(), child));
    nodes_[child].parent = kNone;
  }

  // Step 1: a container per message, linked by its references.
  void link_all() {
    for (size_t i = 0; i < messages_.size(); ++i) {
      const ThreadMessage& m = messages_[i];
      // A missing Message-ID, or one a message before already has: unique.
      int self = kNone;
      if (!m.message_id.empty()) {
        auto it = ids_.find(m.message_id);
        if (it == ids_.end()) {
          self = add(static_cast<int>(i));
          ids_.emplace(m.message_id, self);
        } else if (dummy(it->second)) {
          self = it->second;
          nodes_[self].message = static_cast<int>(i);
        }
      }
      if (self == kNone) self = add(static_cast<int>(i));
      // 1.A: each reference the parent of the next, unless that one has a
      // parent already (a truncated References field) or it would loop.
      const auto& refs = m.references;
      int previous = kNone;
      for (size_t r = refs.size() > kMaxReferences ? refs.size() - kMaxReferences : 0; r < refs.size(); ++r) {
        int node = node_for_id(refs[r]);
        if (previous != kNone && nodes_[node].parent == kNone && !refused(previous, node)) link(previous, node);
        previous = node;
      }
      // 1.B: the message's own last reference is its parent, whatever
      // another message's References said.
      if (nodes_[self].parent != kNone) unlink(self);
      if (previous != kNone && !refused(previous, self)) link(previous, self);
    }
  }

  // Step 4: dummies without children go; a dummy's children take its place,
  // except at the top, where only a single child does.
  std::vector<int> prune(const std::vector<int>& siblings, bool top) {
    std::vector<int> out;
    for (int n : siblings) {
      nodes_[n].children = prune(nodes_[n].children, false);
      if (!dummy(n)) {
        out.push_back(n);
      } else if (!nodes_[n].children.empty()) {
        if (!top || nodes_[n].children.size() == 1) {
          out.insert(out.end(), nodes_[n].children.begin(), nodes_[n].children.end());
        } else {
          out.push_back(n);
        }
      }
    }
    return out;
  }

  // The message whose subject is the thread's: its own, or a dummy's first
  // child's (a top-level dummy's children are all messages after step 4).
  const ThreadMessage& subject_message(int n) const {
    return messages_[dummy(n) ? nodes_[nodes_[n].children.front()].message : nodes_[n].message];
  }

  bool reply(int n) const { return !dummy(n) && messages_[nodes_[n].message].reply_or_forward; }

  // Step 5: threads whose subjects are the same are merged.
  std::vector<int> group_by_subject(std::vector<int> roots) {
    // B: one thread per subject, preferring a dummy, then a non-reply.
    std::unordered_map<std::string, int> table;
    for (int n : roots) {
      const std::string& subject = subject_message(n).base_subject;
      if (subject.empty()) continue;
      auto [it, inserted] = table.try_emplace(subject, n);
      int held = it->second;
      if (!inserted && !dummy(held) && (dummy(n) || (reply(held) && !reply(n)))) it->second = n;
    }
    // C: every other thread of that subject joins the table's.
    for (size_t i = 0; i < roots.size(); ++i) {
      int n = roots[i];
      if (n == kNone) continue;  // merged into an earlier one
      const std::string& subject = subject_message(n).base_subject;
      if (subject.empty()) continue;
      int& held = table.at(subject);
      if (held == n) continue;
      if (dummy(held) && dummy(n)) {
        auto& into = nodes_[held].children;
        into.insert(into.end(), nodes_[n].children.begin(), nodes_[n].children.end());
        roots[i] = kNone;
      } else if (dummy(held) || (reply(n) && !reply(held))) {
        nodes_[held].children.push_back(n);
        roots[i] = kNone;
      } else {
        // Neither is the other's reply: both under a new dummy, which takes
        // the held thread's place among the roots.
        int both = add(kNone);
        nodes_[both].children = {held, n};
        std::replace(roots.begin(), roots.end(), held, both);
        roots[i] = kNone;
        held = both;
      }
    }
    roots.erase(std::remove(roots.begin(), roots.end(), kNone), roots.end());
    return roots;
  }

  // The message that places a node among its siblings: itself, or a
  // dummy's first child once sorted.
  int first_message(int n) const {
    while (dummy(n)) n = nodes_[n].children.front();
    return nodes_[n].message;
  }

  // Step 6: siblings by sent date, children before their parents.
  void sort_siblings(std::vector<int>& siblings) {
    for (int n : siblings) sort_siblings(nodes_[n].children);
    std::stable_sort(siblings.begin(), siblings.end(), [&](int a, int b) {
      int ma = first_message(a);
      int mb = first_message(b);
      return sent_before(messages_[ma], static_cast<size_t>(ma), messages_[mb], static_cast<size_t>(mb));
    });
  }

  // RFC 5256 §4: a message, then its only child after a space, or its
  // children each in parentheses; a dummy is its children in parentheses.
  void render(int n, std::string& out) const {
    const auto& children = nodes_[n].children;
    if (!dummy(n)) {
      append_number(out, messages_[nodes_[n].message].number);
      if (children.empty()) return;
      out += ' ';
      if (children.size() == 1) {
        render(children.front(), out);
        return;
      }
    }
    for (int c : children) {
      out += '(';
      render(c, out);
      out += ')';
    }
  }

  const std::vector<ThreadMessage>& messages_;
  std::vector<Node> nodes_;
  std::unordered_map<std::string, int> ids_;  // Message-ID -> its container
};

}  // namespace

std::vector<std::string> message_ids(std::string_view value) {
  std::vector<std::string> ids;
  size_t i = 0;
  while (i < value.size()) {
    char c = value[i];
    if (c == '(') {  // a comment, nested, with quoted-pairs (RFC 5322 §3.2.2)
      int depth = 0;
      for (; i < value.size(); ++i) {
        if (value[i] == '\\') {
          ++i;
        } else if (value[i] == '(') {
          ++depth;
        } else if (value[i] == ')' && --depth == 0) {
          break;
        }
      }
      ++i;
    } else if (c == '"') {  // a quoted string outside a msg-id: skipped
      for (++i; i < value.size() && value[i] != '"'; ++i) {
        if (value[i] == '\\') ++i;
      }
      ++i;
    } else if (c == '<') {
      size_t end = value.find_first_of("<>", i + 1);
      if (end == std::string_view::npos) break;
      if (value[end] == '<') {  // "<" without its ">": try again from the next
        i = end;
        continue;
      }
      std::string id;
      for (char x : value.substr(i + 1, end - i - 1)) {
        if (!is_space(x)) id += x;  // folding inside the brackets
      }
      if (id.find('@') != std::string::npos) ids.push_back(std::move(id));
      i = end + 1;
    } else {
      ++i;
    }
  }
  return ids;
}

std::string thread_ordered_subject(const std::vector<ThreadMessage>& messages) {
  // RFC 5256 §3 ORDEREDSUBJECT: by base subject, then sent date; each run
  // of one subject is a thread whose first message is the parent of the
  // others; the threads by their first message's sent date.
  std::vector<size_t> order(messages.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    int by_subject = messages[a].base_subject.compare(messages[b].base_subject);
    if (by_subject != 0) return by_subject < 0;
    return sent_before(messages[a], a, messages[b], b);
  });
  std::vector<std::pair<size_t, size_t>> threads;  // [first, last) in `order`
  for (size_t i = 0; i < order.size();) {
    size_t j = i + 1;
    while (j < order.size() && messages[order[j]].base_subject == messages[order[i]].base_subject) ++j;
    threads.emplace_back(i, j);
    i = j;
  }
  std::stable_sort(threads.begin(), threads.end(), [&](const auto& a, const auto& b) {
    size_t ma = order[a.first];
    size_t mb = order[b.first];
    return sent_before(messages[ma], ma, messages[mb], mb);
  });
  std::string out;
  for (const auto& [first, last] : threads) {
    out += '(';
    append_number(out, messages[order[first]].number);
    if (last - first == 2) {
      out += ' ';
      append_number(out, messages[order[first + 1]].number);
    } else if (last - first > 2) {
      out += ' ';
      for (size_t k = first + 1; k < last; ++k) {
        out += '(';
        append_number(out, messages[order[k]].number);
        out += ')';
      }
    }
    out += ')';
  }
  return out;
}

std::string thread_references(const std::vector<ThreadMessage>& messages) {
  return ThreadForest(messages).run();
}

}  // namespace hikyaku::imap::protocol
