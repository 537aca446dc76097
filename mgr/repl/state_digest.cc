#include "mgr/repl/state_digest.h"

#include <string>
#include <string_view>

#include "store/codec.h"

namespace clustermgr::mgr {
namespace {

class Fnv {
 public:
  void Bytes(std::string_view s) {
    Num(s.size());  // length-prefixed: ("ab","c") and ("a","bc") differ
    for (unsigned char c : s) h_ = (h_ ^ c) * 0x100000001b3ULL;
  }
  void Num(uint64_t v) {
    for (int i = 0; i < 8; ++i) h_ = (h_ ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ULL;
  }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 0xcbf29ce484222325ULL;
};

void Key(Fnv& f, const std::string& k) { f.Bytes(k); }
void Key(Fnv& f, const std::pair<std::string, std::string>& k) {
  f.Bytes(k.first);
  f.Bytes(k.second);
}
void Key(Fnv& f, const std::pair<std::string, uint64_t>& k) {
  f.Bytes(k.first);
  f.Num(k.second);
}

// Values through the store's deterministic record encoders (they include the tag).
std::string Encode(const crdt::LwwEntry<std::string>& e) { return store::EncodeTextEntry(e); }
std::string Encode(const crdt::LwwEntry<crdt::InventoryRecord>& e) {
  return store::EncodeInventoryEntry(e);
}
std::string Encode(const crdt::LwwEntry<crdt::JobRecord>& e) { return store::EncodeJobEntry(e); }

template <typename K, typename V>
void Section(Fnv& f, int section, const crdt::LwwMap<K, V>& map) {
  f.Num(static_cast<uint64_t>(section));
  for (const auto& [key, entry] : map.entries()) {
    if (entry.tombstone()) continue;
    Key(f, key);
    f.Bytes(Encode(entry));
  }
}

}  // namespace

uint64_t LiveStateDigest(const crdt::ClusterState& s) {
  Fnv f;
  Section(f, 1, s.globals);
  Section(f, 2, s.node_vars);
  Section(f, 3, s.inventory);
  Section(f, 4, s.jobs);
  Section(f, 5, s.job_logs);
  Section(f, 6, s.config);
  f.Num(7);
  for (const auto& [element, dots] : s.host_groups.entries()) {
    Key(f, element);
    for (const auto& d : dots) {
      f.Bytes(d.origin);
      f.Num(d.counter);
    }
  }
  f.Num(8);
  f.Num(s.token_epoch.value());
  return f.value();
}

}  // namespace clustermgr::mgr
