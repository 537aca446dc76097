// fuzz-make-seeds: writes the seed corpora of the fuzz targets from valid messages made by the
// real encoders, so the fuzzers start from inputs that go deep.
//
//   fuzz-make-seeds <dir>     writes <dir>/<target>/<seed name> for every target
//
// The files are committed under fuzz/corpus/; rerun this after a wire format change. Each input
// layout below is the one its target's comment describes.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "crdt/cluster_state.h"
#include "net/gossip_codec.h"
#include "net/rpc_codec.h"
#include "net/serf_codec.h"
#include "store/codec.h"

namespace {

using namespace clustermgr;  // NOLINT: a tool's whole vocabulary

std::filesystem::path g_root;
int g_written = 0;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::filesystem::path dir = g_root / target;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "fuzz-make-seeds: cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
  ++g_written;
}

std::string Length16(const std::string& bytes) {
  const size_t n = bytes.size();
  if (n > 0xffff) {
    std::fprintf(stderr, "fuzz-make-seeds: a seed frame of %zu bytes is too long\n", n);
    std::exit(1);
  }
  return std::string{static_cast<char>(n & 0xff), static_cast<char>(n >> 8)} + bytes;
}

// ---- rpc_request_fuzz: [flags][len16 frame]... ----

void RpcSeeds() {
  const std::map<std::string, net::RpcRequest> one = {
      {"node_get", net::NodeGetRequest{"node1"}},
      {"node_get_by_addr", net::NodeGetRequest{"10.0.0.2"}},
      {"nodes_get", net::NodesGetRequest{}},
      {"commission", net::CommissionRequest{{"node1"}, "service-master", R"({"a":1})"}},
      {"commission_worker", net::CommissionRequest{{"node2"}, "service-worker", ""}},
      {"decommission", net::DecommissionRequest{{"node1"}, ""}},
      {"update", net::UpdateRequest{{"node1", "node2"}, "service-master", R"({"b":[1,2]})", 2}},
      {"upgrade", net::UpgradeRequest{{"node1", "node2"}, R"({"c":true})", 1}},
      {"discover", net::DiscoverRequest{{"10.0.0.9", "fe80::9"}, R"({"c":null})"}},
      {"global_get", net::GlobalGetRequest{}},
      {"global_set", net::GlobalSetRequest{R"({"ntp":"10.0.0.1","x":{"y":[true,false]}})"}},
      {"job_get_active", net::JobGetRequest{"active"}},
      {"job_get_last", net::JobGetRequest{"last"}},
      {"job_follow", net::JobLogFollowRequest{"fuzz-1", 0, 1000}},
      {"jobs_list", net::JobsListRequest{}},
      {"job_cancel", net::JobCancelRequest{""}},
      {"config_get", net::ConfigGetRequest{}},
      {"config_set",
       net::ConfigSetRequest{R"({"ansible":{"configure_playbook":"site.yml","user":"admin",)"
                             R"("extra_variables":{"k":"v"}}})"}},
      {"members", net::MembersRequest{}},
      {"token", net::TokenRequest{}},
      {"status", net::StatusRequest{}},
  };
  for (const auto& [name, request] : one) {
    Write("rpc_request_fuzz", name,
          std::string(1, '\0') + Length16(net::EncodeRequest(1, request)));
  }
  // Sequences that reach job ends, follow-ups and refusals.
  auto frames = [](std::initializer_list<net::RpcRequest> requests, char flags = 0) {
    std::string out(1, flags);
    uint64_t id = 1;
    for (const auto& r : requests) out += Length16(net::EncodeRequest(id++, r));
    return out;
  };
  Write("rpc_request_fuzz", "commission_then_job",
        frames({net::CommissionRequest{{"node1"}, "service-master", R"({"role":"db"})"},
                net::JobGetRequest{"last"}, net::JobLogFollowRequest{"fuzz-1", 0, 0},
                net::NodeGetRequest{"node1"}}));
  Write("rpc_request_fuzz", "commission_worker_after_master",
        frames({net::CommissionRequest{{"node1"}, "service-master", ""},
                net::CommissionRequest{{"node2", "node3"}, "service-worker", ""},
                net::NodesGetRequest{}}));
  Write("rpc_request_fuzz", "globals_config_then_update",
        frames({net::GlobalSetRequest{R"({"g":1})"},
                net::ConfigSetRequest{R"({"ansible":{"cleanup_playbook":"c.yml"}})"},
                net::UpdateRequest{{"node1"}, "", R"({"g":null})", 0}, net::JobsListRequest{}}));
  Write("rpc_request_fuzz", "no_token_commission",
        frames({net::CommissionRequest{{"node1"}, "service-master", ""}, net::TokenRequest{}}, 1));
  Write("rpc_request_fuzz", "forwarded",
        std::string(1, '\0') + Length16(net::EncodeRequest(5, net::StatusRequest{}, "other")));
}

// ---- serf_codec_fuzz: [chunk selector][msgpack stream] ----

net::SerfMember Member(const std::string& name, const std::string& addr,
                       std::map<std::string, std::string> tags, const std::string& status) {
  net::SerfMember m;
  m.name = name;
  m.addr = addr;
  m.port = 7946;
  m.tags = std::move(tags);
  m.status = status;
  m.protocol_min = 1;
  m.protocol_max = 5;
  m.protocol_cur = 2;
  m.delegate_min = 2;
  m.delegate_max = 5;
  m.delegate_cur = 4;
  return m;
}

void SerfSeeds() {
  const std::vector<net::SerfMember> members = {
      Member("a0", "10.0.0.1",
             {{"NodeLabel", "node"}, {"NodeSerial", "1"}, {"NodeAddr", "10.0.0.1"}}, "alive"),
      Member("a1", "::1", {{"NodeLabel", "node"}, {"NodeSerial", "2"}}, "failed"),
      Member("m0", "127.0.0.1", {{"role", "clustermgr"}, {"rpc", "tcp://127.0.0.1:9007"}}, "alive"),
  };
  const std::string ok = net::EncodeResponseHeader({1, ""});
  Write("serf_codec_fuzz", "members",
        std::string(1, '\x07') + ok + net::EncodeMembersBody(members));
  for (const char* event : {"member-join", "member-leave", "member-failed", "member-update"}) {
    Write("serf_codec_fuzz", std::string("event_") + event,
          std::string(1, '\x03') + net::EncodeResponseHeader({2, ""}) +
              net::EncodeMemberEventBody({net::ParseSerfEventType(event), event, members}));
  }
  Write("serf_codec_fuzz", "error_header",
        std::string(1, '\x00') +
            net::EncodeResponseHeader({3, std::string(net::kSerfErrInvalidAuthToken)}));
  Write("serf_codec_fuzz", "join_response",
        std::string(1, '\x10') + ok + net::EncodeJoinResponseBody(2));
  Write("serf_codec_fuzz", "requests",
        std::string(1, '\x3f') + net::EncodeRequestHeader({"handshake", 0}) +
            net::EncodeHandshakeBody(1) + net::EncodeRequestHeader({"auth", 1}) +
            net::EncodeAuthBody("secret") + net::EncodeRequestHeader({"stream", 2}) +
            net::EncodeStreamBody(std::string(net::kSerfMemberEventFilter)) +
            net::EncodeRequestHeader({"stop", 3}) + net::EncodeStopBody(2) +
            net::EncodeRequestHeader({"members-filtered", 4}) +
            net::EncodeMembersFilteredBody({{{"role", "clustermgr"}}, "alive", ""}) +
            net::EncodeRequestHeader({"join", 5}) + net::EncodeJoinBody({"127.0.0.1:7946"}, false) +
            net::EncodeRequestHeader({"tags", 6}) + net::EncodeTagsBody({{"epoch", "3"}}, {"old"}));
}

// ---- store_record_fuzz: [selector][record]; delta_join_fuzz: [len16 delta][delta] ----

crdt::Delta MakeDelta(const std::string& origin, uint64_t seq, uint64_t millis, int variant) {
  crdt::ClusterState base;
  crdt::WriteTag tag{{1, crdt::HlcTimestamp::Make(millis, 0), origin}, seq};
  crdt::DeltaBuilder b(base, tag);
  if (variant == 0) {
    b.SetGlobal("ntp_server", "\"10.0.0.1\"");
    b.SetNodeVar("node1", "role", "\"db\"");
    b.AddHostGroup("node1", "service-master");
    crdt::InventoryRecord rec;
    rec.status = crdt::NodeStatus::kProvisioning;
    rec.state = crdt::NodeState::kDiscovered;
    rec.addr = "10.0.0.1";
    rec.tags = {{"NodeLabel", "node"}, {"NodeSerial", "1"}};
    rec.serf_status = "alive";
    b.PutNode("node1", rec);
    crdt::JobRecord job;
    job.id = "a-1";
    job.desc = "commission";
    job.nodes = {"node1"};
    job.host_group = "service-master";
    job.status = crdt::JobStatus::kRunning;
    job.epoch = 1;
    job.owner = "a";
    b.PutJob(job);
    b.PutJobLogChunk("a-1", 0, "PLAY [all]\nok: [node1]");
  } else {
    b.EraseGlobal("ntp_server");
    b.SetGlobal("dns", "[\"10.0.0.53\"]");
    b.AddHostGroup("node1", "service-worker");
    b.AddHostGroup("node2", "service-master");
    b.SetConfig("configure_playbook", "\"site.yml\"");
    b.RaiseEpoch(2);
  }
  return crdt::Delta{origin, seq, std::move(b).Take()};
}

void StoreSeeds() {
  const crdt::Delta a = MakeDelta("a/0000000000000001", 1, 1000, 0);
  const crdt::Delta b = MakeDelta("b/0000000000000002", 1, 1001, 1);
  auto sel = [](int s) { return std::string(1, static_cast<char>(s)); };
  Write("store_record_fuzz", "delta", sel(0) + store::EncodeDelta(a));
  crdt::ClusterState joined = a.state;
  joined.Join(b.state);
  Write("store_record_fuzz", "state", sel(1) + store::EncodeState(joined));
  store::Metadata meta;
  meta.instance = "a";
  meta.incarnation = "0000000000000001";
  meta.local_seq = 7;
  meta.hlc_high_water = crdt::HlcTimestamp::Make(1000, 3);
  meta.created_ms = 1000;
  Write("store_record_fuzz", "meta", sel(2) + store::EncodeMeta(meta));
  const crdt::WriteTag tag{{1, crdt::HlcTimestamp::Make(1000, 1), "a/0000000000000001"}, 2};
  Write("store_record_fuzz", "text_entry",
        sel(3) + store::EncodeTextEntry({tag, std::string("\"v\"")}));
  Write("store_record_fuzz", "text_tombstone",
        sel(3) + store::EncodeTextEntry({tag, std::nullopt}));
  Write("store_record_fuzz", "inventory_entry",
        sel(4) + store::EncodeInventoryEntry({tag, *a.state.Node("node1")}));
  Write("store_record_fuzz", "job_entry",
        sel(5) + store::EncodeJobEntry({tag, *a.state.Job("a-1")}));
  Write("store_record_fuzz", "element",
        sel(6) + store::EncodeElement({{"a/0000000000000001", 1}, {"b/0000000000000002", 4}}));
  Write("store_record_fuzz", "context_part", sel(7) + store::EncodeContextPart({3, {5, 9}}));
  Write("store_record_fuzz", "applied", sel(8) + store::EncodeApplied(12));
  Write("store_record_fuzz", "epoch", sel(9) + store::EncodeEpoch(3));

  Write("delta_join_fuzz", "two_origins", Length16(store::EncodeDelta(a)) + store::EncodeDelta(b));
  Write("delta_join_fuzz", "same_delta", Length16(store::EncodeDelta(a)) + store::EncodeDelta(a));
  const crdt::Delta c = MakeDelta("a/0000000000000001", 2, 1002, 1);
  Write("delta_join_fuzz", "same_origin_later",
        Length16(store::EncodeDelta(a)) + store::EncodeDelta(c));
}

// ---- gossip_message_fuzz: one encoded gossip message ----

void GossipSeeds() {
  const crdt::Delta a = MakeDelta("a/0000000000000001", 1, 1000, 0);
  const crdt::Delta b = MakeDelta("b/0000000000000002", 1, 1001, 1);
  const net::GossipPeerInfo sender{"a", "a/0000000000000001", "tcp://10.0.0.1:9008",
                                   "tcp://10.0.0.1:9007"};
  crdt::VersionVector applied;
  applied.Advance("a/0000000000000001", 1);
  applied.Advance("b/0000000000000002", 1);
  const net::GossipDelta da{a.origin, a.seq, store::EncodeDelta(a), false};
  const net::GossipDelta db{b.origin, b.seq, store::EncodeDelta(b), true};
  auto write = [](const std::string& name, const net::GossipMessage& m) {
    Write("gossip_message_fuzz", name, net::EncodeGossip(m));
  };
  write("delta", {{}, da});
  write("delta_ack_wanted", {{}, db});
  const crdt::Delta a2 = MakeDelta("a/0000000000000001", 2, 1002, 2);
  write("delta_run", {{}, net::GossipDeltaRun{store::EncodeDeltaRun(std::vector{a, a2}), true}});
  write("sync_request", {sender, net::SyncRequest{applied}});
  write("sync_reply",
        {sender, net::SyncReply{
                     applied, {da, db}, true, {}, {"tcp://10.0.0.2:9008", "tcp://10.0.0.3:9008"}}});
  write("sync_reply_snapshot",
        {sender, net::SyncReply{applied, {}, false, net::SnapshotOffer{7, 3, applied}, {}}});
  write("snapshot_fetch", {sender, net::SnapshotFetch{7, 1}});
  crdt::ClusterState joined = a.state;
  joined.Join(b.state);
  write("snapshot_chunk", {sender, net::SnapshotChunk{7, 2, store::EncodeState(joined), false}});
  write("snapshot_gone", {sender, net::SnapshotChunk{7, 0, "", true}});
  write("report", {sender, net::Report{applied}});
}

// ---- extra_vars_fuzz: FuzzedDataProvider layout ----
// Strings are read from the front (a backslash escapes a backslash; a backslash and any other
// byte ends the string); integers and bools from the back, last byte first.
class ProviderInput {
 public:
  void String(const std::string& s) {
    for (char c : s) {
      front_ += c;
      if (c == '\\') front_ += '\\';
    }
    front_ += "\\;";
  }
  void Byte(uint8_t b) { back_.insert(back_.begin(), static_cast<char>(b)); }
  std::string Bytes() const { return front_ + back_; }

 private:
  std::string front_;
  std::string back_;
};

void ExtraVarsSeeds() {
  struct Seed {
    const char* name;
    std::vector<std::string> layers;
    bool small_limits;
  };
  const std::vector<Seed> seeds = {
      {"layers",
       {R"({"a":1,"b":"x"})", R"({"b":"g","c":[1,2]})", R"({"c":null,"d":{"e":1}})",
        R"({"a":null,"f":true})"},
       false},
      {"empty_and_nested", {"", "{}", R"({"x":{"y":{"z":[[[]]]}}})", R"({"k.1-_":"v"})"}, false},
      {"small_limits", {R"({"a":[1]})", R"({"toolongkey_0123456789":1})", "[1]", "{\"a\":"}, true},
      {"unicode", {R"({"u":"\u00e9\ud83d\ude00"})", R"({"n":1e5,"m":-0.5})", "{}", "{}"}, false},
  };
  for (const Seed& seed : seeds) {
    ProviderInput in;
    in.Byte(seed.small_limits ? 1 : 0);  // ConsumeBool: small limits
    if (seed.small_limits) {
      in.Byte(64);  // max_bytes (2 bytes for the range 0..512)
      in.Byte(0);
      in.Byte(2);  // max_depth
      in.Byte(8);  // max_key_bytes
    }
    for (const std::string& layer : seed.layers) in.String(layer);
    in.Byte(3);  // hosts
    const std::vector<std::vector<std::string>> hosts = {
        {"node1", "10.0.0.1", "service-master"},
        {"node2", "fe80::1%eth0", "service-worker", "extra"},
        {"node3", "host.example", "service-worker"}};
    for (const auto& h : hosts) {
      in.String(h[0]);
      in.String(h[1]);
      in.Byte(static_cast<uint8_t>(h.size() - 2));
      for (size_t i = 2; i < h.size(); ++i) in.String(h[i]);
    }
    Write("extra_vars_fuzz", seed.name, in.Bytes());
  }
}

}  // namespace

// ---- allow_list_fuzz: allow-list file texts ----

void AllowListSeeds() {
  const std::string a(40, 'a');
  const std::string b = std::string(39, 'B') + "0";
  const std::string c = std::string(39, 'c') + "%";
  Write("allow_list_fuzz", "clients",
        "# operators\n" + a + " alice role=admin\n" + b + " bot role=operator # ci\n\n" + c +
            " dashboard role=reader\n");
  Write("allow_list_fuzz", "peers",
        a + " mgr-1 tcp://10.0.0.11:9008\n" + b + " mgr-2 tcp://10.0.0.12:9008\n");
  Write("allow_list_fuzz", "bare", a + "\n");
  Write("allow_list_fuzz", "bad-role", a + " x role=root\n");
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz-make-seeds <corpus dir>\n");
    return 2;
  }
  g_root = argv[1];
  RpcSeeds();
  SerfSeeds();
  StoreSeeds();
  GossipSeeds();
  ExtraVarsSeeds();
  AllowListSeeds();
  std::printf("fuzz-make-seeds: wrote %d seeds under %s\n", g_written, g_root.c_str());
  return 0;
}
