// clustermgrd: the manager daemon. Parses options and runs mgr::Daemon; SIGTERM/SIGINT stop it,
// SIGHUP re-reads its --config file.
#include <csignal>
#include <cstdio>
#include <iostream>

#include "mgr/daemon.h"

namespace {

clustermgr::mgr::Daemon* g_daemon = nullptr;

void OnSignal(int sig) {
  if (!g_daemon) return;
  if (sig == SIGHUP) {
    g_daemon->Reload();
  } else {
    g_daemon->Stop();
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace clustermgr::mgr;
  ParsedOptions parsed = ParseDaemonOptions(argc, argv);
  if (parsed.exit_now) {
    (parsed.exit_code == 0 ? std::cout : std::cerr) << parsed.text;
    return parsed.exit_code;
  }
  std::signal(SIGPIPE, SIG_IGN);
  Daemon daemon(parsed.options);
  if (auto status = daemon.Start(); !status.ok()) {
    std::cerr << "clustermgrd: " << status.message() << "\n";
    return 1;
  }
  g_daemon = &daemon;
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  const int code = daemon.Run();
  g_daemon = nullptr;
  return code;
}
