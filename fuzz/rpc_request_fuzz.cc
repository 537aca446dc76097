// Fuzzes RPC request decoding and dispatch: frames are decoded as RpcServer decodes them
// (net/rpc_codec.h DecodeRequest with the server's limits) and every request that decodes is
// handled by a real mgr::Manager over a real store in a fresh temp dir, as clustermgrd's event
// loop does.
//
// Input: one flags byte (bit 0: this instance does not hold the side-effect token), then up to
// kMaxFrames frames, each a little-endian uint16 length and that many bytes.
//
// Jobs never run Ansible: the playbook dir is empty, so every playbook fails its setup at once
// (`playbook "site.yml" not found in ...`) and the job ends Errored; the harness waits for the
// executor to finish and feeds its events back to the manager in order, so a run is
// deterministic. The temp dir is under $TMPDIR, by default /dev/shm. After the frames, the store is
// reopened and must hold exactly the state the manager acknowledged (every write is durable before
// its reply).
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crdt/hlc.h"
#include "fuzz/fuzz_check.h"
#include "mgr/ansible/job_executor.h"
#include "mgr/log/log.h"
#include "mgr/manager.h"
#include "mgr/options.h"
#include "mgr/repl/replica.h"
#include "net/rpc_codec.h"
#include "base/testing/temp_dir.h"

namespace {

using namespace clustermgr;  // NOLINT: a fuzz target's whole vocabulary

constexpr size_t kMaxFrames = 8;

// JobExecutor's events, as the daemon's mailbox would hold them.
class EventQueue {
 public:
  void Post(mgr::JobEvent event) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(event));
    cv_.notify_all();
  }
  // Blocks until the job's kFinished has arrived; returns every event up to it, in order.
  std::vector<mgr::JobEvent> UntilFinished() {
    std::unique_lock lock(mu_);
    const bool done = cv_.wait_for(lock, std::chrono::seconds(60), [&] {
      for (const auto& e : events_) {
        if (e.kind == mgr::JobEvent::Kind::kFinished) return true;
      }
      return false;
    });
    FUZZ_CHECK(done);  // a job that never ends is a bug
    std::vector<mgr::JobEvent> out;
    while (!events_.empty()) {
      const bool finished = events_.front().kind == mgr::JobEvent::Kind::kFinished;
      out.push_back(std::move(events_.front()));
      events_.pop_front();
      if (finished) break;
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<mgr::JobEvent> events_;
};

struct Harness {
  explicit Harness(bool holds_token)
      : dir("clustermgr-fuzz"), executor([this](mgr::JobEvent e) { events.Post(std::move(e)); }) {
    options.name = "fuzz";
    options.data_dir = dir.Sub("data");
    options.playbook_dir = dir.Sub("playbooks");
    options.sync = false;
    std::filesystem::create_directory(options.playbook_dir);
    replica = Open();
    token.self_holds = holds_token;
    token.epoch = holds_token ? 1 : 0;
    token.holder = holds_token ? "fuzz" : "";
    token.visible = holds_token ? 1 : 0;
    token.quorum = 1;
    token.why_not = holds_token ? "" : "sees 0 of 1 required managers";
    manager = std::make_unique<mgr::Manager>(
        &options, replica.get(), &executor, [this] { return token; },
        [](const net::ReplyTo&, net::RpcReply reply) { CheckReply(reply); });
  }

  std::unique_ptr<mgr::Replica> Open() {
    auto opened = mgr::Replica::Open({options.name, options.data_dir, false, 500}, &clock);
    FUZZ_CHECK(opened.ok());
    return std::move(opened.value());
  }

  // A few nodes in the states lifecycle requests look for, written as Serf reports them (with
  // the token; when the input says it is not held, it is dropped afterwards).
  void Populate() {
    const bool held = token.self_holds;
    token.self_holds = true;
    auto observe = [&](mgr::NodeObservation::Kind kind, std::string name, std::string addr) {
      mgr::NodeObservation o;
      o.kind = kind;
      o.name = std::move(name);
      o.addr = std::move(addr);
      o.serf_status = kind == mgr::NodeObservation::Kind::kDisappeared ? "failed" : "alive";
      manager->OnNodeObservation(o, Now());
    };
    observe(mgr::NodeObservation::Kind::kDiscovered, "node1", "10.0.0.1");
    observe(mgr::NodeObservation::Kind::kDiscovered, "node2", "10.0.0.2");
    observe(mgr::NodeObservation::Kind::kDiscovered, "node3", "fe80::1");
    observe(mgr::NodeObservation::Kind::kDisappeared, "node4", "10.0.0.4");
    token.self_holds = held;
  }

  uint64_t Now() {
    clock.Advance(10);
    return clock.NowMillis();
  }

  // A reply must encode and decode as the server and the client do.
  static void CheckReply(const net::RpcReply& reply) {
    auto decoded = net::DecodeReply(net::EncodeReply(7, reply));
    FUZZ_CHECK(decoded.ok());
    FUZZ_CHECK(decoded.value().request_id == 7);
    FUZZ_CHECK(decoded.value().reply.code == reply.code);
    FUZZ_CHECK(decoded.value().reply.message == reply.message);
  }

  void Dispatch(std::string_view frame) {
    if (frame.size() > net::kMaxRequestBytes) return;  // answered by the server, never decoded
    net::DecodedRequest decoded = net::DecodeRequest(frame, net::kRequestDecodeLimits);
    if (!decoded.request.ok()) {
      FUZZ_CHECK(!decoded.request.status().message().empty());
      return;
    }
    net::IncomingRequest in;
    in.reply_to.identity = "peer";
    in.reply_to.request_id = decoded.request_id;
    in.protocol_version = decoded.protocol_version;
    in.forwarded_by = decoded.forwarded_by;
    in.request = std::move(decoded.request.value());
    std::optional<net::RpcReply> reply = manager->Handle(in, Now());
    if (reply) CheckReply(*reply);
    // A job started: let it fail (no playbook) and hand its events to the manager.
    if (!manager->running_job().empty()) {
      for (mgr::JobEvent& e : events.UntilFinished()) manager->OnJobEvent(std::move(e), Now());
      FUZZ_CHECK(manager->running_job().empty());
    }
    manager->Tick(Now());
  }

  TempDir dir;
  mgr::DaemonOptions options;
  crdt::ManualClock clock{1'700'000'000'000};
  std::unique_ptr<mgr::Replica> replica;
  EventQueue events;
  mgr::JobExecutor executor;
  mgr::TokenStatus token;
  std::unique_ptr<mgr::Manager> manager;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  mgr::SetLogLevel(mgr::LogLevel::kError);
  // Each input opens a fresh LevelDB store: on a disk that costs ~30 times more than in memory.
  // TMPDIR set by the caller is respected.
  std::error_code ec;
  if (std::getenv("TMPDIR") == nullptr && std::filesystem::is_directory("/dev/shm", ec)) {
    ::setenv("TMPDIR", "/dev/shm", 0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Harness h(/*holds_token=*/(data[0] & 1) == 0);
  h.Populate();
  size_t pos = 1;
  for (size_t frames = 0; frames < kMaxFrames && pos + 2 <= size; ++frames) {
    const size_t n = std::min<size_t>(data[pos] | (size_t{data[pos + 1]} << 8), size - pos - 2);
    h.Dispatch(std::string_view(reinterpret_cast<const char*>(data + pos + 2), n));
    pos += 2 + n;
  }
  // Long-polls still parked are answered when their wait runs out.
  h.clock.Advance(mgr::Manager::kMaxFollowWaitMs + 1);
  h.manager->Tick(h.clock.NowMillis());

  // Everything acknowledged is in the store: a reopened replica holds the same state.
  const crdt::ClusterState before = h.replica->state();
  h.manager.reset();
  h.replica.reset();
  h.replica = h.Open();
  FUZZ_CHECK(h.replica->state() == before);
  return 0;
}
