// ConnectionLimit: a bound on the TCP connections a bound ZeroMQ socket holds at once, pending
// CURVE handshakes included. libzmq accepts every connection a listener gets and has no option to
// bound them, so this watches the socket with a monitor (zmq_socket_monitor: "accepted FD",
// "disconnected FD") and shuts down (shutdown(2); the descriptor stays libzmq's, which then drops
// the connection) every connection accepted beyond the bound. Together with a short
// ZMQ_HANDSHAKE_IVL (kHandshakeIvlMs, set by the servers), a flood of idle or half-open
// connections costs at most `max` descriptors per socket, for at most the handshake interval.
//
// Driving it: poll PollItem() with the socket's owner loop and call Drain() after each wake-up
// (or just every iteration; it never blocks).
//
// Thread-safety: none; the thread that owns the watched socket owns the limiter. It must be
// destroyed before the watched socket (the monitor is stopped in the destructor).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <zmq.hpp>

#include "base/status.h"

namespace clustermgr::net {

// The CURVE (and plain) handshake timeout of clustermgr's server sockets, in ms (libzmq's
// default is 30 s): a connection that has not completed its handshake by then is dropped.
inline constexpr int kHandshakeIvlMs = 5000;
// Default bound on the connections of one server socket.
inline constexpr std::size_t kDefaultMaxConnections = 1024;

class ConnectionLimit {
 public:
  // Starts monitoring `socket` (bound or not yet bound) in `context`. `max` >= 1.
  // Errors: kInternal (the monitor could not be set up).
  static Result<std::unique_ptr<ConnectionLimit>> Attach(zmq::context_t& context,
                                                         zmq::socket_t& socket, std::size_t max);
  ~ConnectionLimit();
  ConnectionLimit(const ConnectionLimit&) = delete;
  ConnectionLimit& operator=(const ConnectionLimit&) = delete;

  zmq::pollitem_t PollItem() { return zmq::pollitem_t{monitor_.handle(), 0, ZMQ_POLLIN, 0}; }
  // Handles the pending monitor events. Never blocks.
  void Drain();

  std::size_t open() const { return open_.size(); }
  std::uint64_t refused() const { return refused_; }  // connections shut down over the bound

 private:
  ConnectionLimit(void* watched, zmq::socket_t monitor, std::size_t max);

  void* watched_;  // the libzmq socket (its handle survives moves of the socket_t)
  zmq::socket_t monitor_;
  const std::size_t max_;
  std::set<int> open_;  // descriptors of accepted, not yet disconnected connections
  std::uint64_t refused_ = 0;
};

}  // namespace clustermgr::net
