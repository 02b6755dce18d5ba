// Runs the real anomalyd binary for integration tests: a temp state dir,
// ipc:// endpoints in it, a small fast model, and a NOTIFY_SOCKET of the
// test's own, so start-up waits for READY=1 exactly as systemd would.
#ifndef ANOMALYD_TESTS_DAEMON_DAEMON_PROCESS_H_
#define ANOMALYD_TESTS_DAEMON_DAEMON_PROCESS_H_

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/synthetic.h"

namespace anomalyd::testing {

// n rows of the synthetic features (tests/synthetic.h) as CSV; beyond 4
// dims, a + c, a / 2 and then noisy copies.
inline std::string BaselineCsv(size_t n, uint64_t seed, size_t dims = 4) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0, 1);
  std::string out;
  for (size_t j = 0; j < dims; ++j) out += (j ? ",f" : "f") + std::to_string(j);
  out += "\n";
  for (size_t i = 0; i < n; ++i) {
    const std::array<double, 4> r = SyntheticRow(rng, g);
    const double a = r[0], c = r[2];
    double v[6] = {a, r[1], c, r[3], a + c, 0.5 * a};
    for (size_t j = 0; j < dims; ++j) {
      out += (j ? "," : "") + std::to_string(v[j % 6] + (j >= 6 ? 0.1 * g(rng) : 0));
    }
    out += "\n";
  }
  return out;
}

// A normal record and a clearly anomalous one (b = 2a broken by 6 sd).
inline std::vector<float> NormalRecord(std::mt19937_64& rng) {
  std::normal_distribution<float> g(0, 1);
  const std::array<float, 4> r = SyntheticRow(rng, g);
  return {r.begin(), r.end()};
}
inline std::vector<float> AnomalousRecord(std::mt19937_64& rng) {
  std::vector<float> r = NormalRecord(rng);
  r[1] += 25;
  return r;
}

class DaemonProcess {
 public:
  // `dir` must exist; `extra` is appended to the generated config (TOML).
  DaemonProcess(std::string dir, std::string extra = "")
      : dir_(std::move(dir)), extra_(std::move(extra)) {
    std::ofstream(dir_ + "/base.csv") << BaselineCsv(600, 1);
  }
  ~DaemonProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    StopListening();
  }

  std::string score() const { return "ipc://" + dir_ + "/score.sock"; }
  std::string ingest() const { return "ipc://" + dir_ + "/ingest.sock"; }
  std::string control() const { return "ipc://" + dir_ + "/control.sock"; }
  std::string alerts() const { return "ipc://" + dir_ + "/alerts.sock"; }
  std::string db() const { return dir_ + "/state/anomalyd.db"; }
  std::string dir() const { return dir_; }
  // The metrics endpoint ("" = off, the default in tests).
  void set_metrics(std::string endpoint) { metrics_ = std::move(endpoint); }
  // Command-line arguments after --config FILE.
  void set_args(std::vector<std::string> args) { args_ = std::move(args); }
  pid_t pid() const { return pid_; }

  // Writes the config, starts the daemon and waits for READY=1. Returns
  // false (with the daemon's log in *why) when it exits or times out.
  bool Start(std::string* why, std::chrono::seconds timeout = std::chrono::seconds(120),
             const std::vector<std::string>& env = {}) {
    WriteConfig();
    Listen();
    {
      std::lock_guard<std::mutex> l(mu_);
      notes_.clear();
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string log = dir_ + "/daemon.log";
      // Both streams to the log: the test's own stdout must not be held
      // open by the daemon.
      if (std::freopen(log.c_str(), "a", stderr) == nullptr) ::_exit(126);
      ::dup2(::fileno(stderr), STDOUT_FILENO);
      ::setenv("NOTIFY_SOCKET", (dir_ + "/notify.sock").c_str(), 1);
      for (const std::string& e : env) ::putenv(const_cast<char*>(e.c_str()));
      const std::string bin = std::string(ANOMALYD_BINARY_DIR) + "/daemon/anomalyd";
      const std::string cfg = dir_ + "/anomalyd.toml";
      std::vector<char*> argv = {const_cast<char*>(bin.c_str()), const_cast<char*>("--config"),
                                 const_cast<char*>(cfg.c_str())};
      for (const std::string& a : args_) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Saw("READY=1")) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        *why = "anomalyd exited (status " + std::to_string(status) + "): " + Log();
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    *why = "no READY=1 within the timeout: " + Log();
    return false;
  }

  // Sends `sig` and waits for the exit; returns the exit code (128 + signal
  // when killed by one).
  int Stop(int sig = SIGTERM) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  bool Saw(const std::string& notification) {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& n : notes_) {
      if (n.find(notification) != std::string::npos) return true;
    }
    return false;
  }

  // Every notification received so far, in order of arrival.
  std::vector<std::string> Notes() {
    std::lock_guard<std::mutex> l(mu_);
    return notes_;
  }

  std::string Log() const {
    std::ifstream in(dir_ + "/daemon.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  void WriteConfig() {
    std::ofstream c(dir_ + "/anomalyd.toml");
    c << "[daemon]\nstate_dir = \"" << dir_ << "/state\"\nlog_level = \"info\"\nthreads = 1\n"
      << "[endpoints]\nscore = \"" << score() << "\"\ningest = \"" << ingest()
      << "\"\ncontrol = \"" << control() << "\"\nalerts = \"" << alerts() << "\"\n"
      << "metrics = \"" << metrics_ << "\"\n"
      << "[model]\nhidden = [16, 8]\nlatent = 2\n"
      << "[training]\nmax_epochs = 120\nbatch_size = 64\ndevice = \"cpu\"\n"
      << "[streams.default]\nbaseline = \"" << dir_ << "/base.csv\"\n"
      << extra_;
  }

  void Listen() {
    if (fd_ >= 0) return;
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = dir_ + "/notify.sock";
    ::unlink(path.c_str());
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::abort();
    timeval tv{0, 100000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    listening_ = true;
    reader_ = std::thread([this] {
      char buf[4096];
      while (listening_) {
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
          std::lock_guard<std::mutex> l(mu_);
          notes_.emplace_back(buf, static_cast<size_t>(n));
        }
      }
    });
  }

  void StopListening() {
    listening_ = false;
    if (reader_.joinable()) reader_.join();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  std::string dir_, extra_, metrics_;
  std::vector<std::string> args_;
  pid_t pid_ = -1;
  int fd_ = -1;
  std::atomic<bool> listening_{false};
  std::thread reader_;
  std::mutex mu_;
  std::vector<std::string> notes_;
};

}  // namespace anomalyd::testing

#endif  // ANOMALYD_TESTS_DAEMON_DAEMON_PROCESS_H_
