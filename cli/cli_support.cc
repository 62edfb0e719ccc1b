#include "cli_support.h"

#include <atomic>
#include <csignal>
#include <cstring>

#include "util/redact.h"

namespace pgcourier::cli {

CancelToken& InterruptToken() {
  static CancelToken token;
  return token;
}

namespace {
std::atomic<int> g_interrupts{0};

void OnInterrupt(int signal) {
  if (g_interrupts.fetch_add(1) > 0) {
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  InterruptToken().Cancel();
}
}  // namespace

void InstallInterruptHandlers() {
  (void)InterruptToken();  // create before any signal can arrive
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

void ScrubPasswordsFromArgv(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string masked = MaskPasswords(argv[i]);
    if (masked.size() == std::strlen(argv[i])) std::memcpy(argv[i], masked.data(), masked.size());
  }
}

}  // namespace pgcourier::cli
