#include "net/connection_limit.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "net/rpc_server.h"

namespace clustermgr::net {
namespace {

using namespace std::chrono_literals;

// A raw TCP connection to a ZeroMQ endpoint "tcp://127.0.0.1:PORT" that never speaks ZMTP.
int Connect(const std::string& endpoint) {
  const int port = std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

// True when the server ended the connection (EOF or reset) before `deadline`; the greeting
// libzmq sends is read and skipped.
bool ClosedByServer(int fd, std::chrono::steady_clock::time_point deadline) {
  char buffer[256];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) return true;
  }
  return false;
}

// A server with room for two connections: the third and fourth are shut down at once (the
// handshake timeout is long, so nothing else ends them), the first two stay.
TEST(ConnectionLimitTest, ConnectionsBeyondTheBoundAreShutDown) {
  zmq::context_t context;
  RpcServer::Options options;
  options.max_connections = 2;
  options.handshake_ivl_ms = 60'000;
  auto server = RpcServer::Bind(context, "tcp://127.0.0.1:*", options);
  ASSERT_TRUE(server.ok()) << server.status().message();
  std::vector<int> fds;
  for (int i = 0; i < 4; ++i) fds.push_back(Connect(server.value()->endpoint()));
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (server.value()->connections().refused() < 2 &&
         std::chrono::steady_clock::now() < deadline) {
    zmq::pollitem_t item = server.value()->ConnectionsPollItem();
    zmq::poll(&item, 1, 50ms);
    (void)server.value()->TryReceive();  // handles the connection events
  }
  EXPECT_EQ(server.value()->connections().refused(), 2u);
  EXPECT_EQ(server.value()->connections().open(), 2u);
  int closed = 0;
  for (int fd : fds) closed += ClosedByServer(fd, std::chrono::steady_clock::now() + 300ms);
  EXPECT_EQ(closed, 2);
  for (int fd : fds) ::close(fd);
}

// A connection that never completes its handshake is dropped after the handshake interval.
TEST(ConnectionLimitTest, SilentConnectionsEndAfterTheHandshakeInterval) {
  zmq::context_t context;
  RpcServer::Options options;
  options.handshake_ivl_ms = 200;
  auto server = RpcServer::Bind(context, "tcp://127.0.0.1:*", options);
  ASSERT_TRUE(server.ok()) << server.status().message();
  const int fd = Connect(server.value()->endpoint());
  EXPECT_TRUE(ClosedByServer(fd, std::chrono::steady_clock::now() + 10s));
  ::close(fd);
}

}  // namespace
}  // namespace clustermgr::net
