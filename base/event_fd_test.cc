#include "base/event_fd.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <thread>
#include <utility>

#include "base/fd.h"
#include "gtest/gtest.h"

namespace clustermgr {
namespace {

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

TEST(EventFdTest, SignalsCoalesceAndConsumeResets) {
  EventFd wake = EventFd::CreateOrDie();
  EXPECT_FALSE(Readable(wake.fd()));
  EXPECT_FALSE(wake.Consume());
  wake.Signal();
  wake.Signal();
  EXPECT_TRUE(Readable(wake.fd()));
  EXPECT_TRUE(wake.Consume());
  EXPECT_FALSE(Readable(wake.fd()));
  EXPECT_FALSE(wake.Consume());
}

TEST(EventFdTest, ASignalFromAnotherThreadWakesAPoller) {
  EventFd wake = EventFd::CreateOrDie();
  std::thread signaller([&] { wake.Signal(); });
  pollfd p{wake.fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 10'000), 1);
  signaller.join();
  EXPECT_TRUE(wake.Consume());
}

TEST(FdTest, ClosesOnDestructionAndOnResetButNotAfterRelease) {
  int raw[2];
  ASSERT_EQ(::pipe(raw), 0);
  const int write_end = raw[1];
  { Fd read_end(raw[0]); }
  // The read end is closed: writing to the pipe now fails with EPIPE (SIGPIPE ignored here).
  ::signal(SIGPIPE, SIG_IGN);
  EXPECT_EQ(::write(write_end, "x", 1), -1);

  Fd owner(write_end);
  Fd moved = std::move(owner);
  EXPECT_FALSE(owner.valid());  // NOLINT: checking the moved-from state on purpose
  EXPECT_EQ(moved.get(), write_end);
  const int released = moved.Release();
  EXPECT_FALSE(moved.valid());
  EXPECT_NE(::fcntl(released, F_GETFD), -1);  // still open after Release()
  ::close(released);
  EXPECT_EQ(::fcntl(released, F_GETFD), -1);
}

}  // namespace
}  // namespace clustermgr
