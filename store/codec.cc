#include "store/codec.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>
#include <map>
#include <utility>

#include "store/records.capnp.h"

namespace clustermgr::store {
namespace {

using crdt::CausalContext;
using crdt::ClusterState;
using crdt::Dot;
using crdt::HlcTimestamp;
using crdt::InventoryRecord;
using crdt::JobRecord;
using crdt::LwwEntry;
using crdt::LwwMap;
using crdt::VersionVector;
using crdt::WriteTag;

Status Corrupt(std::string what) { return Status(Code::kCorruption, std::move(what)); }

capnp::Text::Reader T(const std::string& s) { return capnp::Text::Reader(s.c_str(), s.size()); }
std::string S(capnp::Text::Reader t) { return std::string(t.begin(), t.size()); }

std::string ToBytes(capnp::MessageBuilder& message) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  kj::ArrayPtr<const kj::byte> bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

// Decodes `bytes` as a message whose root is Root and hands the root to `read`, which returns a
// Status. Copies into word-aligned memory first (a LevelDB value or a ZeroMQ frame has no
// alignment guarantee), bounds the traversal by the message's own size (so a message cannot
// make the reader walk more than a small multiple of what it sent), and turns every Cap'n Proto
// exception into kCorruption.
template <typename Root, typename Fn>
Status DecodeRoot(std::string_view bytes, const DecodeLimits& limits, const char* what, Fn&& read) {
  if (bytes.size() > limits.max_bytes) {
    return Corrupt(std::string(what) + " of " + std::to_string(bytes.size()) +
                   " bytes exceeds the limit of " + std::to_string(limits.max_bytes));
  }
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Corrupt(std::string(what) + " of " + std::to_string(bytes.size()) +
                   " bytes is not a whole number of Cap'n Proto words");
  }
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words.size() * 4 + 64;
  options.nestingLimit = limits.nesting_limit;
  try {
    capnp::FlatArrayMessageReader reader(words, options);
    if (reader.getEnd() != words.end()) {
      return Corrupt(std::string(what) + " has trailing bytes after the message");
    }
    return read(reader.getRoot<Root>());
  } catch (const kj::Exception& e) {
    return Corrupt(std::string(what) + " does not decode: " + e.getDescription().cStr());
  }
}

// How a State is written relative to the run it travels in (DeltaRun in records.capnp). kAsIs,
// the frame of every other encoding, writes each field as it is: an origin is never empty and
// XOR 0 changes nothing.
struct Frame {
  std::string_view origin;  // an origin equal to it is written empty
  uint64_t seq = 0;         // a tag's seq is written XOR it
  uint64_t hlc_base = 0;    // a tag's hlc is written XOR it
};
constexpr Frame kAsIs{};

std::string OriginOut(const Frame& f, capnp::Text::Reader t) {
  return t.size() == 0 ? std::string(f.origin) : S(t);
}

// ---- encoding ----

void PutTag(rec::WriteTag::Builder b, const WriteTag& tag, const Frame& f) {
  b.setEpoch(tag.stamp.epoch);
  b.setHlc(tag.stamp.hlc.packed() ^ f.hlc_base);
  if (tag.stamp.origin != f.origin) b.setOrigin(T(tag.stamp.origin));
  b.setSeq(tag.seq ^ f.seq);
}

void PutValue(rec::LwwEntry::Value::Builder b, const std::string& v) { b.setText(T(v)); }

void PutValue(rec::LwwEntry::Value::Builder b, const InventoryRecord& v) {
  auto inv = b.initInventory();
  inv.setStatus(static_cast<uint8_t>(v.status));
  inv.setState(static_cast<uint8_t>(v.state));
  inv.setPrevStatus(static_cast<uint8_t>(v.prev_status));
  inv.setPrevState(static_cast<uint8_t>(v.prev_state));
  inv.setAddr(T(v.addr));
  auto tags = inv.initTags(static_cast<unsigned>(v.tags.size()));
  unsigned i = 0;
  for (const auto& [k, val] : v.tags) {
    tags[i].setKey(T(k));
    tags[i].setValue(T(val));
    ++i;
  }
  inv.setSerfStatus(T(v.serf_status));
  inv.setUpdatedMs(v.updated_ms);
}

void PutValue(rec::LwwEntry::Value::Builder b, const JobRecord& v) {
  auto job = b.initJob();
  job.setId(T(v.id));
  job.setDesc(T(v.desc));
  auto nodes = job.initNodes(static_cast<unsigned>(v.nodes.size()));
  for (unsigned i = 0; i < v.nodes.size(); ++i) nodes.set(i, T(v.nodes[i]));
  job.setHostGroup(T(v.host_group));
  job.setStatus(static_cast<uint8_t>(v.status));
  job.setError(T(v.error));
  job.setEpoch(v.epoch);
  job.setOwner(T(v.owner));
  job.setCreatedMs(v.created_ms);
  job.setStartedMs(v.started_ms);
  job.setEndedMs(v.ended_ms);
  job.setLogLines(v.log_lines);
  job.setLogChunks(v.log_chunks);
  auto hosts = job.initHosts(static_cast<unsigned>(v.hosts.size()));
  for (unsigned i = 0; i < v.hosts.size(); ++i) {
    const crdt::HostSummary& h = v.hosts[i];
    auto hb = hosts[i];
    hb.setHost(T(h.host));
    hb.setOk(h.ok);
    hb.setChanged(h.changed);
    hb.setUnreachable(h.unreachable);
    hb.setFailed(h.failed);
    hb.setSkipped(h.skipped);
  }
}

template <typename V>
void PutEntry(rec::LwwEntry::Builder b, const LwwEntry<V>& entry, const Frame& f) {
  PutTag(b.initTag(), entry.tag, f);
  if (entry.tombstone()) {
    b.getValue().setTombstone();
  } else {
    PutValue(b.getValue(), *entry.value);
  }
}

void PutDots(capnp::List<rec::Dot>::Builder list, const std::set<Dot>& dots, const Frame& f) {
  unsigned i = 0;
  for (const Dot& d : dots) {
    if (d.origin != f.origin) list[i].setOrigin(T(d.origin));
    list[i].setCounter(d.counter);
    ++i;
  }
}

// Key setters per section, so one template writes every LWW section.
void PutKey(rec::KeyedEntry::Builder b, const std::string& key) { b.setKey(T(key)); }
void PutKey(rec::KeyedEntry::Builder b, const crdt::NodeVarKey& key) {
  b.setKey(T(key.first));
  b.setSubkey(T(key.second));
}
void PutKey(rec::KeyedEntry::Builder b, const crdt::JobLogKey& key) {
  b.setKey(T(key.first));
  b.setChunk(key.second);
}

template <typename K, typename V>
void PutMap(capnp::List<rec::KeyedEntry>::Builder list, const LwwMap<K, V>& map, const Frame& f) {
  unsigned i = 0;
  for (const auto& [key, entry] : map.entries()) {
    PutKey(list[i], key);
    PutEntry(list[i].initEntry(), entry, f);
    ++i;
  }
}

template <typename K, typename V>
unsigned Count(const LwwMap<K, V>& map) {
  return static_cast<unsigned>(map.size());
}

// Empty sections stay null pointers (a reader sees an empty list): a delta touches one or two.
void PutState(rec::State::Builder b, const ClusterState& s, const Frame& f) {
  if (s.globals.size()) PutMap(b.initGlobals(Count(s.globals)), s.globals, f);
  if (s.node_vars.size()) PutMap(b.initNodeVars(Count(s.node_vars)), s.node_vars, f);
  const auto& entries = s.host_groups.entries();
  if (!entries.empty()) {
    auto list = b.initHostGroups(static_cast<unsigned>(entries.size()));
    unsigned i = 0;
    for (const auto& [element, dots] : entries) {
      list[i].setNode(T(element.first));
      list[i].setGroup(T(element.second));
      PutDots(list[i].initDots(static_cast<unsigned>(dots.size())), dots, f);
      ++i;
    }
  }
  const CausalContext& ctx = s.host_groups.context();
  const auto& compact = ctx.compact().entries();
  if (!compact.empty() || !ctx.cloud().empty()) {
    auto c = b.initHostGroupContext();
    auto cl = c.initCompact(static_cast<unsigned>(compact.size()));
    unsigned i = 0;
    for (const auto& [origin, counter] : compact) {
      if (origin != f.origin) cl[i].setOrigin(T(origin));
      cl[i].setCounter(counter);
      ++i;
    }
    if (!ctx.cloud().empty()) {
      PutDots(c.initCloud(static_cast<unsigned>(ctx.cloud().size())), ctx.cloud(), f);
    }
  }
  if (s.inventory.size()) PutMap(b.initInventory(Count(s.inventory)), s.inventory, f);
  if (s.jobs.size()) PutMap(b.initJobs(Count(s.jobs)), s.jobs, f);
  if (s.job_logs.size()) PutMap(b.initJobLogs(Count(s.job_logs)), s.job_logs, f);
  if (s.config.size()) PutMap(b.initConfig(Count(s.config)), s.config, f);
  b.setTokenEpoch(s.token_epoch.value());
}

// ---- decoding ----

WriteTag GetTag(rec::WriteTag::Reader r, const Frame& f) {
  WriteTag tag;
  tag.stamp.epoch = r.getEpoch();
  tag.stamp.hlc = HlcTimestamp::FromPacked(r.getHlc() ^ f.hlc_base);
  tag.stamp.origin = OriginOut(f, r.getOrigin());
  tag.seq = r.getSeq() ^ f.seq;
  return tag;
}

template <typename E>
Status GetEnum(uint8_t raw, E max, const char* what, E* out) {
  if (raw > static_cast<uint8_t>(max)) {
    return Corrupt(std::string(what) + " " + std::to_string(raw) + " is not a valid value");
  }
  *out = static_cast<E>(raw);
  return Status::Ok();
}

Status GetValue(rec::LwwEntry::Value::Reader r, std::string* out) {
  if (r.which() != rec::LwwEntry::Value::TEXT) return Corrupt("entry holds no text value");
  *out = S(r.getText());
  return Status::Ok();
}

Status GetValue(rec::LwwEntry::Value::Reader r, InventoryRecord* out) {
  if (r.which() != rec::LwwEntry::Value::INVENTORY)
    return Corrupt("entry holds no inventory value");
  auto inv = r.getInventory();
  using crdt::NodeState;
  using crdt::NodeStatus;
  for (Status s : {GetEnum(inv.getStatus(), NodeStatus::kMaintenance, "node status", &out->status),
                   GetEnum(inv.getState(), NodeState::kDisappeared, "node state", &out->state),
                   GetEnum(inv.getPrevStatus(), NodeStatus::kMaintenance, "previous node status",
                           &out->prev_status),
                   GetEnum(inv.getPrevState(), NodeState::kDisappeared, "previous node state",
                           &out->prev_state)}) {
    if (!s.ok()) return s;
  }
  out->addr = S(inv.getAddr());
  for (auto kv : inv.getTags()) out->tags[S(kv.getKey())] = S(kv.getValue());
  out->serf_status = S(inv.getSerfStatus());
  out->updated_ms = inv.getUpdatedMs();
  return Status::Ok();
}

Status GetValue(rec::LwwEntry::Value::Reader r, JobRecord* out) {
  if (r.which() != rec::LwwEntry::Value::JOB) return Corrupt("entry holds no job value");
  auto job = r.getJob();
  out->id = S(job.getId());
  out->desc = S(job.getDesc());
  for (auto n : job.getNodes()) out->nodes.push_back(S(n));
  out->host_group = S(job.getHostGroup());
  if (Status s = GetEnum(job.getStatus(), crdt::JobStatus::kFenced, "job status", &out->status);
      !s.ok()) {
    return s;
  }
  out->error = S(job.getError());
  out->epoch = job.getEpoch();
  out->owner = S(job.getOwner());
  out->created_ms = job.getCreatedMs();
  out->started_ms = job.getStartedMs();
  out->ended_ms = job.getEndedMs();
  out->log_lines = job.getLogLines();
  out->log_chunks = job.getLogChunks();
  for (auto h : job.getHosts()) {
    out->hosts.push_back({S(h.getHost()), h.getOk(), h.getChanged(), h.getUnreachable(),
                          h.getFailed(), h.getSkipped()});
  }
  return Status::Ok();
}

template <typename V>
Status GetEntry(rec::LwwEntry::Reader r, LwwEntry<V>* out, const Frame& f) {
  out->tag = GetTag(r.getTag(), f);
  if (r.getValue().which() == rec::LwwEntry::Value::TOMBSTONE) {
    out->value.reset();
    return Status::Ok();
  }
  V value{};
  if (Status s = GetValue(r.getValue(), &value); !s.ok()) return s;
  out->value = std::move(value);
  return Status::Ok();
}

Status GetDots(capnp::List<rec::Dot>::Reader list, std::set<Dot>* out, const Frame& f) {
  for (auto d : list) {
    if (d.getCounter() == 0) return Corrupt("dot with counter 0");
    out->insert(Dot{OriginOut(f, d.getOrigin()), d.getCounter()});
  }
  return Status::Ok();
}

Status GetKey(rec::KeyedEntry::Reader r, std::string* key) {
  *key = S(r.getKey());
  return Status::Ok();
}
Status GetKey(rec::KeyedEntry::Reader r, crdt::NodeVarKey* key) {
  key->first = S(r.getKey());
  key->second = S(r.getSubkey());
  return Status::Ok();
}
Status GetKey(rec::KeyedEntry::Reader r, crdt::JobLogKey* key) {
  key->first = S(r.getKey());
  key->second = r.getChunk();
  return Status::Ok();
}

template <typename K, typename V>
Status GetMap(capnp::List<rec::KeyedEntry>::Reader list, const char* section, LwwMap<K, V>* out,
              const Frame& f) {
  for (auto item : list) {
    K key{};
    LwwEntry<V> entry;
    Status s = GetKey(item, &key);
    if (s.ok()) s = GetEntry(item.getEntry(), &entry, f);
    if (!s.ok()) return Corrupt(std::string(section) + ": " + s.message());
    // A duplicate key resolves by the LWW rule, as a join would.
    out->JoinEntry(key, entry);
  }
  return Status::Ok();
}

Status GetState(rec::State::Reader r, ClusterState* out, const Frame& f) {
  for (Status s : {GetMap(r.getGlobals(), "globals", &out->globals, f),
                   GetMap(r.getNodeVars(), "node vars", &out->node_vars, f)}) {
    if (!s.ok()) return s;
  }
  {
    crdt::OrSet<crdt::HostGroupKey>::Entries entries;
    for (auto e : r.getHostGroups()) {
      std::set<Dot> dots;
      if (Status s = GetDots(e.getDots(), &dots, f); !s.ok()) {
        return Corrupt("host groups: " + s.message());
      }
      if (dots.empty()) return Corrupt("host groups: element without dots");
      auto& slot = entries[{S(e.getNode()), S(e.getGroup())}];
      slot.insert(dots.begin(), dots.end());
    }
    auto ctx = r.getHostGroupContext();
    VersionVector compact;
    for (auto d : ctx.getCompact()) compact.Advance(OriginOut(f, d.getOrigin()), d.getCounter());
    std::set<Dot> cloud;
    if (Status s = GetDots(ctx.getCloud(), &cloud, f); !s.ok()) {
      return Corrupt("host-group context: " + s.message());
    }
    out->host_groups = crdt::OrSet<crdt::HostGroupKey>::FromParts(
        std::move(entries), CausalContext::FromParts(std::move(compact), std::move(cloud)));
  }
  for (Status s :
       {GetMap(r.getInventory(), "inventory", &out->inventory, f),
        GetMap(r.getJobs(), "jobs", &out->jobs, f),
        GetMap(r.getJobLogs(), "job logs", &out->job_logs, f),
        GetMap(r.getConfig(), "config", &out->config, f)}) {
    if (!s.ok()) return s;
  }
  out->token_epoch = crdt::MaxRegister::Of(r.getTokenEpoch());
  return Status::Ok();
}

template <typename V>
std::string EncodeEntry(const LwwEntry<V>& entry) {
  capnp::MallocMessageBuilder message(128);
  PutEntry(message.initRoot<rec::LwwEntry>(), entry, kAsIs);
  return ToBytes(message);
}

template <typename V>
Result<LwwEntry<V>> DecodeEntry(std::string_view bytes) {
  LwwEntry<V> entry;
  Status s = DecodeRoot<rec::LwwEntry>(
      bytes, DecodeLimits{}, "entry",
      [&](rec::LwwEntry::Reader r) { return GetEntry(r, &entry, kAsIs); });
  if (!s.ok()) return s;
  return entry;
}

}  // namespace

std::string EncodeDelta(const crdt::Delta& delta) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<rec::Delta>();
  root.setOrigin(T(delta.origin));
  root.setSeq(delta.seq);
  PutState(root.initState(), delta.state, kAsIs);
  return ToBytes(message);
}

Result<crdt::Delta> DecodeDelta(std::string_view bytes, const DecodeLimits& limits) {
  crdt::Delta delta;
  Status s = DecodeRoot<rec::Delta>(bytes, limits, "delta", [&](rec::Delta::Reader r) {
    delta.origin = S(r.getOrigin());
    delta.seq = r.getSeq();
    if (delta.origin.empty()) return Corrupt("delta without origin");
    if (delta.seq == 0) return Corrupt("delta with seq 0");
    return GetState(r.getState(), &delta.state, kAsIs);
  });
  if (!s.ok()) return s;
  return delta;
}

std::string EncodeState(const ClusterState& state) {
  capnp::MallocMessageBuilder message;
  PutState(message.initRoot<rec::State>(), state, kAsIs);
  return ToBytes(message);
}

Result<ClusterState> DecodeState(std::string_view bytes, const DecodeLimits& limits) {
  ClusterState state;
  Status s = DecodeRoot<rec::State>(bytes, limits, "state",
                                    [&](rec::State::Reader r) { return GetState(r, &state, kAsIs); });
  if (!s.ok()) return s;
  return state;
}

std::string EncodeDeltaRun(std::span<const crdt::Delta> deltas) {
  assert(!deltas.empty());
  const crdt::Delta& first = deltas.front();
  const uint64_t hlc_base = first.state.NewestHlc().packed();
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<rec::DeltaRun>();
  root.setOrigin(T(first.origin));
  root.setFirstSeq(first.seq);
  root.setHlcBase(hlc_base);
  auto states = root.initStates(static_cast<unsigned>(deltas.size()));
  for (unsigned i = 0; i < deltas.size(); ++i) {
    assert(deltas[i].origin == first.origin && deltas[i].seq == first.seq + i);
    PutState(states[i], deltas[i].state, Frame{first.origin, first.seq + i, hlc_base});
  }
  kj::VectorOutputStream out;
  capnp::writePackedMessage(out, message);
  kj::ArrayPtr<kj::byte> bytes = out.getArray();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

Result<std::vector<crdt::Delta>> DecodeDeltaRun(std::string_view bytes,
                                                const DecodeLimits& limits) {
  if (bytes.size() > limits.max_bytes) {
    return Corrupt("delta run of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                   std::to_string(limits.max_bytes));
  }
  if (bytes.empty()) return Corrupt("empty delta run");
  kj::ArrayInputStream in(
      kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
  capnp::ReaderOptions options;
  // Packing shrinks runs of zero words to two bytes, so the unpacked message may be larger than
  // its input: bounded at 32 words per input byte (a legal run stays far below), which also
  // bounds what the reader allocates (it refuses a segment table claiming more).
  options.traversalLimitInWords =
      std::min<uint64_t>(limits.max_bytes / sizeof(capnp::word), bytes.size() * 32 + 1024);
  options.nestingLimit = limits.nesting_limit;
  std::vector<crdt::Delta> deltas;
  try {
    capnp::PackedMessageReader reader(in, options);
    if (in.tryGetReadBuffer().size() != 0) return Corrupt("delta run has trailing bytes");
    auto r = reader.getRoot<rec::DeltaRun>();
    const std::string origin = S(r.getOrigin());
    const uint64_t first = r.getFirstSeq();
    const auto states = r.getStates();
    if (origin.empty()) return Corrupt("delta run without origin");
    if (first == 0) return Corrupt("delta run from seq 0");
    if (states.size() == 0) return Corrupt("delta run without deltas");
    if (first > std::numeric_limits<uint64_t>::max() - states.size()) {
      return Corrupt("delta run's seqs overflow");
    }
    deltas.reserve(states.size());
    for (unsigned i = 0; i < states.size(); ++i) {
      crdt::Delta& d = deltas.emplace_back(crdt::Delta{origin, first + i, {}});
      if (Status s = GetState(states[i], &d.state, Frame{origin, d.seq, r.getHlcBase()});
          !s.ok()) {
        return Corrupt("delta run, seq " + std::to_string(d.seq) + ": " + s.message());
      }
    }
  } catch (const kj::Exception& e) {
    return Corrupt(std::string("delta run does not decode: ") + e.getDescription().cStr());
  }
  return deltas;
}

std::string EncodeMeta(const Metadata& meta) {
  capnp::MallocMessageBuilder message(64);
  auto b = message.initRoot<rec::Meta>();
  b.setSchemaVersion(meta.schema_version);
  b.setInstance(T(meta.instance));
  b.setIncarnation(T(meta.incarnation));
  b.setLocalSeq(meta.local_seq);
  b.setHlcHighWater(meta.hlc_high_water.packed());
  b.setCreatedMs(meta.created_ms);
  return ToBytes(message);
}

Result<Metadata> DecodeMeta(std::string_view bytes) {
  Metadata meta;
  Status s = DecodeRoot<rec::Meta>(bytes, DecodeLimits{}, "metadata", [&](rec::Meta::Reader r) {
    meta.schema_version = r.getSchemaVersion();
    meta.instance = S(r.getInstance());
    meta.incarnation = S(r.getIncarnation());
    meta.local_seq = r.getLocalSeq();
    meta.hlc_high_water = HlcTimestamp::FromPacked(r.getHlcHighWater());
    meta.created_ms = r.getCreatedMs();
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return meta;
}

std::string EncodeTextEntry(const LwwEntry<std::string>& e) { return EncodeEntry(e); }
Result<LwwEntry<std::string>> DecodeTextEntry(std::string_view b) {
  return DecodeEntry<std::string>(b);
}
std::string EncodeInventoryEntry(const LwwEntry<InventoryRecord>& e) { return EncodeEntry(e); }
Result<LwwEntry<InventoryRecord>> DecodeInventoryEntry(std::string_view b) {
  return DecodeEntry<InventoryRecord>(b);
}
std::string EncodeJobEntry(const LwwEntry<JobRecord>& e) { return EncodeEntry(e); }
Result<LwwEntry<JobRecord>> DecodeJobEntry(std::string_view b) { return DecodeEntry<JobRecord>(b); }

std::string EncodeElement(const std::set<Dot>& dots) {
  capnp::MallocMessageBuilder message(64);
  auto b = message.initRoot<rec::ElementRecord>();
  PutDots(b.initDots(static_cast<unsigned>(dots.size())), dots, kAsIs);
  return ToBytes(message);
}

Result<std::set<Dot>> DecodeElement(std::string_view bytes) {
  std::set<Dot> dots;
  Status s = DecodeRoot<rec::ElementRecord>(bytes, DecodeLimits{}, "host-group element",
                                            [&](rec::ElementRecord::Reader r) {
                                              Status st = GetDots(r.getDots(), &dots, kAsIs);
                                              if (st.ok() && dots.empty()) {
                                                return Corrupt("host-group element without dots");
                                              }
                                              return st;
                                            });
  if (!s.ok()) return s;
  return dots;
}

std::string EncodeContextPart(const ContextPart& part) {
  capnp::MallocMessageBuilder message(64);
  auto b = message.initRoot<rec::ContextRecord>();
  b.setCompact(part.compact);
  auto cloud = b.initCloud(static_cast<unsigned>(part.cloud.size()));
  for (unsigned i = 0; i < part.cloud.size(); ++i) cloud.set(i, part.cloud[i]);
  return ToBytes(message);
}

Result<ContextPart> DecodeContextPart(std::string_view bytes) {
  ContextPart part;
  Status s = DecodeRoot<rec::ContextRecord>(
      bytes, DecodeLimits{}, "host-group context", [&](rec::ContextRecord::Reader r) {
        part.compact = r.getCompact();
        for (uint64_t c : r.getCloud()) {
          if (c <= part.compact + 1 || (!part.cloud.empty() && c <= part.cloud.back())) {
            return Corrupt("host-group context cloud counter " + std::to_string(c) +
                           " is not ascending beyond compact counter " +
                           std::to_string(part.compact) + " + 1");
          }
          part.cloud.push_back(c);
        }
        return Status::Ok();
      });
  if (!s.ok()) return s;
  return part;
}

std::string EncodeApplied(uint64_t seq) {
  capnp::MallocMessageBuilder message(16);
  message.initRoot<rec::AppliedRecord>().setSeq(seq);
  return ToBytes(message);
}

Result<uint64_t> DecodeApplied(std::string_view bytes) {
  uint64_t seq = 0;
  Status s = DecodeRoot<rec::AppliedRecord>(bytes, DecodeLimits{}, "applied record",
                                            [&](rec::AppliedRecord::Reader r) {
                                              seq = r.getSeq();
                                              return Status::Ok();
                                            });
  if (!s.ok()) return s;
  return seq;
}

std::string EncodeEpoch(uint64_t epoch) {
  capnp::MallocMessageBuilder message(16);
  message.initRoot<rec::EpochRecord>().setEpoch(epoch);
  return ToBytes(message);
}

Result<uint64_t> DecodeEpoch(std::string_view bytes) {
  uint64_t epoch = 0;
  Status s = DecodeRoot<rec::EpochRecord>(bytes, DecodeLimits{}, "epoch record",
                                          [&](rec::EpochRecord::Reader r) {
                                            epoch = r.getEpoch();
                                            return Status::Ok();
                                          });
  if (!s.ok()) return s;
  return epoch;
}

}  // namespace clustermgr::store
