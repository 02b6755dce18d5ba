#include "daemon/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace anomalyd {

bool ParseProcStat(const std::string& text, long ticks_per_second,
                   long page_bytes, ProcessStats* stats) {
  // Fields after the command: the command ends at the last ')'.
  const size_t close = text.rfind(')');
  if (close == std::string::npos || ticks_per_second <= 0) return false;
  std::istringstream in(text.substr(close + 1));
  std::vector<std::string> f;  // f[0] is field 3 (state)
  for (std::string w; in >> w;) f.push_back(w);
  // utime 14, stime 15, vsize 23, rss 24 (1-based, proc(5)).
  if (f.size() < 22) return false;
  try {
    const double utime = std::stod(f[14 - 3]), stime = std::stod(f[15 - 3]);
    stats->cpu_seconds = (utime + stime) / static_cast<double>(ticks_per_second);
    stats->virtual_bytes = std::stoll(f[23 - 3]);
    stats->resident_bytes = std::stoll(f[24 - 3]) * page_bytes;
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

bool ReadProcessStats(ProcessStats* stats) {
  bool ok = true;
  std::ifstream in("/proc/self/stat");
  std::stringstream text;
  text << in.rdbuf();
  ok &= ParseProcStat(text.str(), ::sysconf(_SC_CLK_TCK), ::sysconf(_SC_PAGESIZE), stats);
  if (DIR* d = ::opendir("/proc/self/fd")) {
    int64_t n = 0;
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
    stats->open_fds = n - 1;  // not the descriptor opendir itself holds
  } else {
    ok = false;
  }
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    stats->max_fds = rl.rlim_cur == RLIM_INFINITY ? -1 : static_cast<int64_t>(rl.rlim_cur);
  } else {
    ok = false;
  }
  return ok;
}

}  // namespace anomalyd
