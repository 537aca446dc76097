#include "net/connection_limit.h"

#include <sys/socket.h>

#include <atomic>
#include <cstring>

namespace clustermgr::net {
namespace {

std::atomic<std::uint64_t> next_monitor_id{1};

}  // namespace

Result<std::unique_ptr<ConnectionLimit>> ConnectionLimit::Attach(zmq::context_t& context,
                                                                 zmq::socket_t& socket,
                                                                 std::size_t max) {
  const std::string endpoint =
      "inproc://clustermgr-connection-limit-" + std::to_string(next_monitor_id++);
  if (zmq_socket_monitor(socket.handle(), endpoint.c_str(),
                         ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0) {
    return Status(Code::kInternal, std::string("zmq_socket_monitor: ") + zmq_strerror(errno));
  }
  try {
    zmq::socket_t monitor(context, zmq::socket_type::pair);
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect(endpoint);
    return std::unique_ptr<ConnectionLimit>(
        new ConnectionLimit(socket.handle(), std::move(monitor), max < 1 ? 1 : max));
  } catch (const zmq::error_t& e) {
    zmq_socket_monitor(socket.handle(), nullptr, 0);
    return Status(Code::kInternal, std::string("cannot watch connections: ") + e.what());
  }
}

ConnectionLimit::ConnectionLimit(void* watched, zmq::socket_t monitor, std::size_t max)
    : watched_(watched), monitor_(std::move(monitor)), max_(max) {}

ConnectionLimit::~ConnectionLimit() { zmq_socket_monitor(watched_, nullptr, 0); }

void ConnectionLimit::Drain() {
  for (;;) {
    zmq::message_t event;
    zmq::message_t address;
    try {
      if (!monitor_.recv(event, zmq::recv_flags::dontwait)) return;
      // Every event is two frames: [uint16 event, uint32 value] and the endpoint.
      if (event.more() && !monitor_.recv(address, zmq::recv_flags::dontwait)) return;
    } catch (const zmq::error_t&) {
      return;
    }
    if (event.size() < 6) continue;
    std::uint16_t id = 0;
    std::uint32_t value = 0;
    std::memcpy(&id, event.data(), sizeof(id));
    std::memcpy(&value, static_cast<const char*>(event.data()) + 2, sizeof(value));
    const int fd = static_cast<int>(value);
    if (id == ZMQ_EVENT_ACCEPTED) {
      if (open_.size() >= max_) {
        ++refused_;
        shutdown(fd, SHUT_RDWR);  // libzmq sees the connection end and closes the descriptor
        continue;
      }
      open_.insert(fd);
    } else if (id == ZMQ_EVENT_DISCONNECTED) {
      open_.erase(fd);
    }
  }
}

}  // namespace clustermgr::net
