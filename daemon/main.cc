// anomalyd: the anomaly-detection daemon. Runs in the foreground (systemd
// runs exactly this); SIGTERM/SIGINT stop it cleanly, SIGHUP reloads the
// config.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <malloc.h>

#include <csignal>
#include <iostream>

#include "common/config.h"
#include "daemon/auth.h"
#include "daemon/log.h"
#include "daemon/service.h"
#include "model/model.h"

namespace {

anomalyd::Signals g_signals;

// Only sets flags: the I/O loop polls them (async-signal-safe).
extern "C" void OnSignal(int sig) {
  if (sig == SIGHUP) g_signals.reload = true;
  else g_signals.stop = true;
}

}  // namespace

namespace {

// glibc hands every freed block of 128 kB or more back to the kernel, and
// a dense request of 1024 x 38 floats (152 kB) is such a block: each one
// then costs page faults on the next request (~10 us a page in these VMs;
// a 16x slowdown at batch 4096 was measured with stock settings). Blocks
// up to 64 MB are kept in the heap for reuse instead, and the heap is
// trimmed only past 256 MB free at its top. Memory stays bounded by the
// scoring queue (batcher.queue_records) and the message size limit, not
// by traffic: RSS reaches its high-water mark and stays flat.
void TuneAllocator() {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  TuneAllocator();
  using namespace anomalyd;
  CLI::App app{"anomalyd: VAE anomaly-detection daemon"};
  std::string config_path = "/etc/anomalyd/anomalyd.toml";
  std::vector<std::string> overrides;
  bool check = false;
  std::string state_dir, log_level;
  app.add_option("--config,-c", config_path, "Configuration file (TOML)")->capture_default_str();
  app.add_option("--set", overrides,
                 "Override a config key: section.key=value (repeatable)");
  app.add_option("--state-dir", state_dir, "Same as --set daemon.state_dir=DIR");
  app.add_option("--log-level", log_level, "Same as --set daemon.log_level=LEVEL");
  app.add_flag("--check-config", check, "Validate the configuration and exit");
  bool accept_empty_db = false;
  app.add_flag("--accept-empty-db", accept_empty_db,
               "Start even though the database has no models while bundles/ holds "
               "some (the database was deleted or replaced: begin afresh)");
  CLI11_PARSE(app, argc, argv);
  if (!state_dir.empty()) overrides.push_back("daemon.state_dir=" + TomlString(state_dir));
  if (!log_level.empty()) overrides.push_back("daemon.log_level=" + TomlString(log_level));

  // Decided before anything is printed: under systemd even a configuration
  // error must reach the journal as an error.
  const LogSink log_sink = LogSinkFromEnvironment();
  Config config;
  Status s = LoadConfig(config_path, &config, overrides);
  // Key files are part of the configuration: a bad or unprotected one stops
  // the daemon here rather than letting it serve without protection.
  if (s.ok()) s = CheckAuthKeys(config.auth);
  if (!s.ok()) {
    std::cerr << ErrorPrefix(log_sink) << "anomalyd: " << s.ToString() << "\n";
    return 2;
  }
  if (check) {
    std::cout << config_path << ": OK\n";
    return 0;
  }
  // Logs go to the journal when stderr is connected to it (daemon/log.h),
  // else to stderr; stdout stays free.
  SetUpLogging(log_sink, config.daemon.log_level);

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  ConfigureThreads(config.daemon.threads);
  std::unique_ptr<Service> service;
  ServiceOptions so;
  so.accept_empty_db = accept_empty_db;
  s = Service::Create(config, config_path, overrides, so, &service);
  if (s.ok()) s = service->Run(&g_signals);
  if (!s.ok()) {
    spdlog::critical("{}", s.ToString());
    return 1;
  }
  return 0;
}
