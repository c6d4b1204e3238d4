// The RWKV World tokenizer: greedy longest match over bytes, through a byte trie.
//
// The trie is stored flat for speed: node 0 is the root, the children of a node are contiguous
// nodes sorted by the byte on their incoming edge, and those edge bytes sit in their own array
// so finding a child is a binary search over a few contiguous bytes. Encoding walks the trie from
// each position as far as the input matches and takes the deepest node that ends a token.
#include <algorithm>
#include <utility>

#include "runtime/core/error.h"
#include "runtime/tokenizer/tokenizer.h"

namespace rwkvlite {
namespace {

class WorldTokenizer final : public Tokenizer {
 public:
  explicit WorldTokenizer(std::vector<std::string> tokens) : tokens_(std::move(tokens)) { build_trie(); }

  std::vector<int32_t> encode(std::string_view bytes) const override {
    std::vector<int32_t> ids;
    ids.reserve(bytes.size() / 3 + 1);  // World averages over 3 bytes per token on English
    size_t pos = 0;
    while (pos < bytes.size()) {
      uint32_t node = kRoot;
      int32_t best_id = -1;
      size_t best_len = 0;
      for (size_t i = pos; i < bytes.size(); ++i) {
        node = child(node, static_cast<uint8_t>(bytes[i]));
        if (node == kNoNode) break;
        if (nodes_[node].token_id >= 0) {
          best_id = nodes_[node].token_id;
          best_len = i - pos + 1;
        }
      }
      // read_world_vocab guarantees every single byte is a token, so a match always exists.
      if (best_len == 0) {
        throw Error("World tokenizer: no token matches byte " + std::to_string(uint8_t(bytes[pos])), kExitInternal);
      }
      ids.push_back(best_id);
      pos += best_len;
    }
    return ids;
  }

  const std::string& token_bytes(int32_t id) const override {
    check_id(id);
    return tokens_[static_cast<size_t>(id)];
  }

  int32_t vocab_size() const override { return static_cast<int32_t>(tokens_.size()); }
  std::string name() const override { return "world"; }

 private:
  static constexpr uint32_t kRoot = 0;
  static constexpr uint32_t kNoNode = UINT32_MAX;

  struct Node {
    uint32_t first_child = 0;  // index of the first child in nodes_
    uint32_t child_count = 0;
    int32_t token_id = -1;     // the token spelled by the path to this node, -1 if none
  };

  uint32_t child(uint32_t node, uint8_t byte) const {
    const Node& n = nodes_[node];
    const uint8_t* first = edge_byte_.data() + n.first_child;
    const uint8_t* last = first + n.child_count;
    const uint8_t* it = std::lower_bound(first, last, byte);
    if (it == last || *it != byte) return kNoNode;
    return n.first_child + static_cast<uint32_t>(it - first);
  }

  // Builds the trie from the tokens sorted by their bytes: the tokens below a node are then one
  // contiguous run of the sorted list, so each node's children can be laid out together.
  void build_trie() {
    std::vector<int32_t> order;
    for (size_t id = 0; id < tokens_.size(); ++id) {
      if (!tokens_[id].empty()) order.push_back(static_cast<int32_t>(id));
    }
    // std::string orders bytes as unsigned values, the order child() searches edge bytes in.
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return tokens_[a] < tokens_[b]; });
    size_t total_bytes = 0;
    for (int32_t id : order) total_bytes += tokens_[id].size();
    nodes_.reserve(total_bytes + 1);  // at most one node per token byte, plus the root
    edge_byte_.reserve(total_bytes + 1);
    nodes_.emplace_back();
    edge_byte_.push_back(0);
    build_children(kRoot, order.data(), order.data() + order.size(), 0);
  }

  // `first..last` are the sorted tokens whose first `depth` bytes spell the path to `node`.
  void build_children(uint32_t node, const int32_t* first, const int32_t* last, size_t depth) {
    // The token equal to the path itself, if any, sorts before its extensions.
    if (first != last && tokens_[*first].size() == depth) {
      nodes_[node].token_id = *first;
      ++first;
    }
    // Split the rest into runs sharing their byte at `depth`: one child per run.
    std::vector<std::pair<const int32_t*, const int32_t*>> runs;
    for (const int32_t* run = first; run != last;) {
      const char byte = tokens_[*run][depth];
      const int32_t* end = run + 1;
      while (end != last && tokens_[*end][depth] == byte) ++end;
      runs.emplace_back(run, end);
      run = end;
    }
    nodes_[node].first_child = static_cast<uint32_t>(nodes_.size());
    nodes_[node].child_count = static_cast<uint32_t>(runs.size());
    for (const auto& [run, end] : runs) {
      nodes_.emplace_back();
      edge_byte_.push_back(static_cast<uint8_t>(tokens_[*run][depth]));
    }
    for (size_t k = 0; k < runs.size(); ++k) {
      build_children(nodes_[node].first_child + static_cast<uint32_t>(k), runs[k].first, runs[k].second, depth + 1);
    }
  }

  std::vector<std::string> tokens_;  // bytes by id; empty for end-of-text and unassigned ids
  std::vector<Node> nodes_;
  std::vector<uint8_t> edge_byte_;   // byte on the edge into each node, parallel to nodes_
};

}  // namespace

std::unique_ptr<Tokenizer> load_world_tokenizer(const std::string& vocab_path) {
  return std::make_unique<WorldTokenizer>(read_world_vocab(vocab_path));
}

}  // namespace rwkvlite
