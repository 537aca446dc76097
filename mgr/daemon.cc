#include "mgr/daemon.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <set>

#include "mgr/log.h"

namespace clustermgr::mgr {
namespace {

constexpr auto kTick = std::chrono::milliseconds(100);

void Signal(int fd) {
  uint64_t one = 1;
  ssize_t n = write(fd, &one, sizeof(one));
  (void)n;
}

bool Consume(int fd) {
  uint64_t count = 0;
  return read(fd, &count, sizeof(count)) == sizeof(count) && count > 0;
}

}  // namespace

Daemon::Daemon(DaemonOptions options)
    : options_(std::move(options)),
      stop_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      reload_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

Daemon::~Daemon() {
  monitor_.reset();  // no more Serf events
  manager_.reset();
  executor_.reset();  // cancels and joins a running job
  rpc_.reset();
  replica_.reset();
  close(stop_fd_);
  close(reload_fd_);
}

uint64_t Daemon::NowMs() { return crdt::SystemClock().NowMillis(); }

void Daemon::Stop() { Signal(stop_fd_); }
void Daemon::Reload() { Signal(reload_fd_); }

Status Daemon::Start() {
  SetLogInstance(options_.name);
  LogLevel level;
  if (ParseLogLevel(options_.log_level, &level)) SetLogLevel(level);

  auto replica = Replica::Open(
      {options_.name, options_.data_dir, options_.sync, options_.max_clock_offset_ms}, &physical_);
  if (!replica.ok()) return replica.status();
  replica_ = std::move(replica).value();

  net::RpcServer::Options rpc_options;
  rpc_options.instance_name = options_.name;
  auto rpc = net::RpcServer::Bind(context_, options_.rpc_bind, rpc_options);
  if (!rpc.ok()) {
    return Status(Code::kUnavailable,
                  "cannot bind --rpc-bind " + options_.rpc_bind + ": " + rpc.error().message);
  }
  rpc_ = std::move(rpc).value();
  rpc_endpoint_ = rpc_->endpoint();

  executor_ = std::make_unique<JobExecutor>([this](JobEvent e) { job_mail_.Post(std::move(e)); });
  manager_ = std::make_unique<Manager>(
      &options_, replica_.get(), executor_.get(), [this] { return CurrentToken(); },
      [this](const net::ReplyTo& to, net::RpcReply reply) { rpc_->Reply(to, reply); });

  // Alone (--expect 1), this instance is the side-effect token holder: it claims a new epoch,
  // above every epoch issued before, and so fences off anything a previous run left behind.
  if (options_.expect == 1) {
    const uint64_t epoch = replica_->state().token_epoch.value() + 1;
    auto written = replica_->Write([&](crdt::DeltaBuilder& b) { b.RaiseEpoch(epoch); }, epoch);
    if (!written.ok()) return written.status();
    epoch_ = epoch;
    manager_->InterruptOrphanedJobs([](const std::string&) { return true; }, NowMs());
  }

  net::SerfClientOptions serf;
  serf.address = options_.serf_rpc;
  serf.auth_key = options_.serf_auth_key;
  serf.on_connection = [last = std::make_shared<int>(-1)](const net::SerfConnectionEvent& e) {
    // Runs on the Serf client's thread, once per attempt: log changes only.
    if (*last == static_cast<int>(e.connected)) return;
    *last = e.connected;
    if (e.connected) {
      CM_LOG(kInfo) << "serf: connected";
    } else {
      CM_LOG(kWarn) << "serf: not connected (retrying): " << e.reason.ToString();
    }
  };
  // Nodes this instance last saw alive: Serf's first member list must account for each of them,
  // or they left while nobody watched.
  std::set<std::string> discovered;
  for (const auto& [name, entry] : replica_->state().inventory.entries()) {
    if (!entry.tombstone() && entry.value->state == crdt::NodeState::kDiscovered) {
      discovered.insert(name);
    }
  }
  monitor_ = std::make_unique<net::SerfMonitor>(
      serf, [this](const net::SerfNodeEvent& e) { serf_mail_.Post(e); }, std::move(discovered));

  CM_LOG(kInfo) << "clustermgrd " << CLUSTERMGR_VERSION << " serving " << rpc_endpoint_
                << " as origin " << replica_->origin() << " (data " << options_.data_dir << ")";
  return Status::Ok();
}

TokenView Daemon::CurrentToken() const {
  TokenView t;
  if (epoch_ > 0) {
    t.holder = true;
    t.epoch = epoch_;
    t.holder_name = options_.name;
    return t;
  }
  t.why_not = "no manager holds the side-effect token: sees 1 of " +
              std::to_string(options_.expect / 2 + 1) + " required managers";
  return t;
}

void Daemon::HandleRpc(uint64_t now_ms) {
  while (auto in = rpc_->TryReceive()) {
    std::optional<net::RpcReply> reply = manager_->Handle(*in, now_ms);
    if (reply) rpc_->Reply(in->reply_to, *reply);
  }
}

void Daemon::HandleSerf(uint64_t now_ms) {
  for (const net::SerfNodeEvent& e : serf_mail_.Drain()) {
    CM_LOG(kDebug) << "serf: " << net::ToString(e);
    if (e.subject != net::SerfNodeEvent::Subject::kNode) continue;
    NodeObservation obs;
    obs.kind = e.kind == net::SerfNodeEvent::Kind::kDiscovered ? NodeObservation::Kind::kDiscovered
               : e.kind == net::SerfNodeEvent::Kind::kDisappeared
                   ? NodeObservation::Kind::kDisappeared
                   : NodeObservation::Kind::kUpdated;
    obs.name = e.name;
    obs.addr = e.address;
    obs.tags = e.tags;
    obs.serf_status = e.status;
    manager_->OnNodeObservation(obs, now_ms);
  }
}

void Daemon::HandleJobs(uint64_t now_ms) {
  for (JobEvent& e : job_mail_.Drain()) manager_->OnJobEvent(std::move(e), now_ms);
}

void Daemon::DoReload() {
  if (options_.config_file.empty()) {
    CM_LOG(kInfo) << "SIGHUP: no --config file to re-read";
    return;
  }
  std::string file = "--config=" + options_.config_file;
  const char* argv[] = {"clustermgrd", file.c_str()};
  ParsedOptions parsed = ParseDaemonOptions(2, argv);
  if (parsed.exit_now) {
    CM_LOG(kError) << "SIGHUP: config not reloaded: " << parsed.text;
    return;
  }
  // Only what can change without restarting sockets and the store: playbook settings, extra
  // vars and the log level.
  const DaemonOptions& n = parsed.options;
  options_.playbook_dir = n.playbook_dir.empty() ? options_.playbook_dir : n.playbook_dir;
  options_.configure_playbook = n.configure_playbook;
  options_.cleanup_playbook = n.cleanup_playbook;
  options_.upgrade_playbook = n.upgrade_playbook;
  options_.ansible_user = n.ansible_user;
  options_.ansible_private_key = n.ansible_private_key;
  options_.extra_vars = n.extra_vars;
  options_.log_level = n.log_level;
  LogLevel level;
  if (ParseLogLevel(options_.log_level, &level)) SetLogLevel(level);
  CM_LOG(kInfo) << "SIGHUP: re-read " << options_.config_file;
}

int Daemon::Run() {
  uint64_t next_tick = NowMs();
  for (;;) {
    zmq::pollitem_t items[] = {
        rpc_->PollItem(),
        {nullptr, job_mail_.fd(), ZMQ_POLLIN, 0},
        {nullptr, serf_mail_.fd(), ZMQ_POLLIN, 0},
        {nullptr, stop_fd_, ZMQ_POLLIN, 0},
        {nullptr, reload_fd_, ZMQ_POLLIN, 0},
    };
    const uint64_t now = NowMs();
    const auto wait = std::chrono::milliseconds(next_tick > now ? next_tick - now : 0);
    try {
      zmq::poll(items, std::size(items), wait);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) {
        CM_LOG(kError) << "poll failed: " << e.what();
        return 1;
      }
    }
    const uint64_t now_ms = NowMs();
    if (items[3].revents & ZMQ_POLLIN && Consume(stop_fd_)) {
      CM_LOG(kInfo) << "stopping";
      return 0;
    }
    if (items[4].revents & ZMQ_POLLIN && Consume(reload_fd_)) DoReload();
    HandleJobs(now_ms);
    HandleSerf(now_ms);
    HandleRpc(now_ms);
    if (now_ms >= next_tick) {
      manager_->Tick(now_ms);
      next_tick = now_ms + static_cast<uint64_t>(kTick.count());
    }
  }
}

}  // namespace clustermgr::mgr
