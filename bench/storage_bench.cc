// anomalyd_bench_storage: throughput and latency of the SQLite store.
// Flags, workloads and their defaults: kUsage below (or --help).
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "storage/open.h"
#include "storage/store.h"

namespace anomalyd {
namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::string workloads =
      "insert1,insert100,insert10000,query,query_deep,query_stream,query_top,"
      "count,reservoir,prune";
  int64_t rows = 1'000'000;
  uint32_t dim = 38;
  int queries = 2000;
  int count_queries = 100;
  double pass = 0.1;
  std::string sync = "normal";
  bool background_checkpoint = true;
  std::string dir;
  uint64_t seed = 1;
};

constexpr const char* kUsage =
    R"(Usage: anomalyd_bench_storage [--flag=value ...]
  --workloads=LIST  comma-separated, run in this order (default: all of
                    insert1,insert100,insert10000,query,query_deep,
                    query_stream,query_top,count,reservoir,prune)
      insert1, insert100, insert10000: anomalies of --dim features inserted
          in batches of 1, 100, 10,000 into a fresh database; rows/s.
      query: a page of 100 rows, newest first, of a random one-hour event
          time range with a min-score filter that --pass of rows meet,
          over a table of --rows anomalies; p50/p99 latency.
      query_deep: page 10 of a six-hour range, from its cursor (the
          cursors are found beforehand; only the 10th page is timed).
      query_stream: query plus a stream filter (1 of 8 streams).
      query_top: highest scores first within the range (a sort).
      count: anomalies per stream per hour over one day (--count_queries
          runs; each reads up to 864,000 index entries).
      reservoir: AddSamples in batches of 1,000 records; rows/s.
      prune: Prune the table to 90% of its rows; rows/s deleted.
  --rows=N          anomalies in the query table (default 1000000)
  --dim=N           features per anomaly (default 38)
  --queries=N       queries per latency workload (default 2000)
  --count_queries=N runs of the count workload (default 100)
  --pass=F          share of rows meeting the min-score filter (default 0.1)
  --sync=LEVEL      off, normal or full (default normal, as the daemon)
  --background_checkpoint=0|1
                    checkpoint on the store's own thread (1, default, as
                    the daemon) or in the commit that crosses 1,000 pages
  --dir=PATH        where databases go (default: a new folder in /tmp,
                    removed at exit)
  --seed=N          data generator seed (default 1)
)";

constexpr int kStreams = 8;
constexpr int64_t kT0 = 1'700'000'000'000'000;  // 2023-11-14, in us
constexpr int64_t kRowGapUs = 100'000;          // 10 anomalies per second
constexpr int64_t kHourUs = 3'600'000'000;
// Scores are threshold + Exp(mean kScoreScale): min score for a pass share p
// is kThreshold - kScoreScale * ln(p).
constexpr double kThreshold = 10, kScoreScale = 5;

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0)
      return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// CPU seconds (user + system) of getrusage(`who`).
double CpuSeconds(int who) {
  rusage r;
  getrusage(who, &r);
  return r.ru_utime.tv_sec + r.ru_stime.tv_sec +
         (r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-6;
}
// CPU seconds (user + system) this process has used, all threads: on a
// shared machine rows per CPU-second says what idle cores would do.
double CpuSeconds() { return CpuSeconds(RUSAGE_SELF); }
// CPU seconds of the calling thread.
double ThreadCpuSeconds() { return CpuSeconds(RUSAGE_THREAD); }

// Makes anomalies that look like the daemon's: rising times, 8 streams,
// 38 features and contributions, two labels.
class RowMaker {
 public:
  RowMaker(uint32_t dim, uint64_t seed) : dim_(dim), rng_(seed) {}

  void Fill(size_t n, std::vector<AnomalyRow>* batch) {
    batch->resize(n);
    std::exponential_distribution<double> excess(1.0 / kScoreScale);
    std::normal_distribution<float> value(0, 1);
    for (AnomalyRow& a : *batch) {
      const int64_t i = next_++;
      a.id = 0;
      a.record_id = "rec-" + std::to_string(i);
      a.stream = "stream-" + std::to_string(rng_() % kStreams);
      a.event_time_us =
          kT0 + i * kRowGapUs + static_cast<int64_t>(rng_() % 1000);
      a.scored_time_us = a.event_time_us + 50'000;
      a.score = kThreshold + excess(rng_);
      a.reconstruction = static_cast<float>(a.score * 0.8);
      a.kl = static_cast<float>(a.score * 0.2);
      a.threshold = static_cast<float>(kThreshold);
      a.model_version = 3;
      a.features.resize(dim_);
      a.contributions.resize(dim_);
      for (uint32_t d = 0; d < dim_; ++d) {
        a.features[d] = value(rng_);
        a.contributions[d] = std::abs(value(rng_)) / dim_;
      }
      a.labels = {{"host", "web-" + std::to_string(i % 50)}, {"dc", "eu-1"}};
    }
  }
  int64_t made() const { return next_; }

 private:
  uint32_t dim_;
  std::mt19937_64 rng_;
  int64_t next_ = 0;
};

struct Bench {
  Flags flags;
  StoreSpec spec;  // options and SQLite settings; Open sets the URL
  std::string dir;
  std::unique_ptr<Store> big;  // the query table, built on first use
  int64_t big_rows = 0;

  std::unique_ptr<Store> Open(const std::string& name, bool fresh) {
    const std::string path = dir + "/" + name;
    if (fresh) {
      for (const char* ext : {"", "-wal", "-shm"})
        std::remove((path + ext).c_str());
    }
    // Opened as the daemon opens its store: OpenStore from a URL.
    StoreSpec spec_of_file = spec;
    spec_of_file.url = SqliteUrl(path);
    std::unique_ptr<Store> s;
    Status st = OpenStore(spec_of_file, &s);
    if (!st.ok()) Die("opening " + path, st);
    return s;
  }

  // Inserts `total` rows in batches of `batch`; times only the inserts.
  // Returns wall seconds; *cpu gets CPU seconds of the whole process (the
  // store's checkpoint thread included) less those spent making rows.
  double Insert(Store* store, RowMaker* maker, int64_t total, size_t batch,
                double* cpu) {
    std::vector<AnomalyRow> rows;
    Clock::duration spent{};
    double making = 0;
    const double start = CpuSeconds();
    for (int64_t done = 0; done < total; done += batch) {
      const double m = ThreadCpuSeconds();
      maker->Fill(std::min<int64_t>(batch, total - done), &rows);
      making += ThreadCpuSeconds() - m;
      const auto t = Clock::now();
      Status s = store->InsertAnomalies(&rows);
      spent += Clock::now() - t;
      if (!s.ok()) Die("inserting", s);
    }
    *cpu = CpuSeconds() - start - making;
    return Seconds(spent);
  }

  void InsertWorkload(const std::string& name, size_t batch, int64_t total) {
    std::unique_ptr<Store> store = Open(name + ".db", true);
    RowMaker maker(flags.dim, flags.seed);
    double cpu = 0;
    const double s = Insert(store.get(), &maker, total, batch, &cpu);
    std::printf(
        "%-13s: %8lld rows, batches of %-6zu %7.2f s %8.0f rows/s "
        "%9.1f us/batch %6.2f us/row | %8.0f rows/cpu-s\n",
        name.c_str(), static_cast<long long>(total), batch, s, total / s,
        s * 1e6 / (double(total) / batch), s * 1e6 / total, total / cpu);
  }

  Store* Big() {
    if (big) return big.get();
    big = Open("query.db", true);
    RowMaker maker(flags.dim, flags.seed + 1);
    double cpu = 0;
    const double s = Insert(big.get(), &maker, flags.rows, 10000, &cpu);
    big_rows = flags.rows;
    std::printf(
        "(query table: %lld rows filled in %.1f s, %.0f rows/s, "
        "%.0f MiB)\n",
        static_cast<long long>(flags.rows), s, flags.rows / s,
        std::filesystem::file_size(dir + "/query.db") / 1048576.0);
    return big.get();
  }

  // Runs `one` n times (after a warm-up); prints latency percentiles.
  void Latency(const std::string& name, int n,
               const std::function<size_t()>& one) {
    std::vector<double> us;
    size_t rows = 0;
    for (int i = 0; i < std::min(50, n / 10 + 1); ++i) one();  // warm up
    for (int i = 0; i < n; ++i) {
      const auto t = Clock::now();
      rows += one();
      us.push_back(Seconds(Clock::now() - t) * 1e6);
    }
    std::sort(us.begin(), us.end());
    auto pct = [&](double p) {
      return us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))];
    };
    double mean = 0;
    for (double u : us) mean += u / us.size();
    std::printf(
        "%-13s: %6d queries  p50 %8.0f us  p99 %8.0f us  max %8.0f us"
        "  mean %7.0f us  %.0f rows/query\n",
        name.c_str(), n, pct(0.50), pct(0.99), us.back(), mean,
        double(rows) / n);
  }

  AnomalyQuery RandomRange(std::mt19937_64* rng) {
    AnomalyQuery q;
    const int64_t span = big_rows * kRowGapUs - kHourUs;
    q.since_us =
        kT0 + static_cast<int64_t>((*rng)() % std::max<int64_t>(1, span));
    q.until_us = *q.since_us + kHourUs;
    q.min_score = kThreshold - kScoreScale * std::log(flags.pass);
    q.limit = 100;
    return q;
  }

  size_t Page(Store* store, const AnomalyQuery& q, std::string* next) {
    AnomalyPage page;
    Status s = store->QueryAnomalies(q, &page);
    if (!s.ok()) Die("querying", s);
    if (next != nullptr) *next = page.next_cursor;
    return page.rows.size();
  }

  void Run(const std::string& w) {
    std::mt19937_64 rng(flags.seed + 7);
    if (w == "insert1") return InsertWorkload(w, 1, 20'000);
    if (w == "insert100") return InsertWorkload(w, 100, 300'000);
    if (w == "insert10000") return InsertWorkload(w, 10'000, 1'000'000);
    if (w == "query" || w == "query_stream" || w == "query_top") {
      Store* store = Big();
      return Latency(w, flags.queries, [&] {
        AnomalyQuery q = RandomRange(&rng);
        if (w == "query_stream")
          q.stream = "stream-" + std::to_string(rng() % kStreams);
        if (w == "query_top") q.order = AnomalyOrder::kScoreDesc;
        return Page(store, q, nullptr);
      });
    }
    if (w == "query_deep") {
      Store* store = Big();
      std::vector<AnomalyQuery> page10;  // cursors found outside the timing
      for (int i = 0; i < flags.queries + 50; ++i) {
        AnomalyQuery q = RandomRange(&rng);
        q.until_us = *q.since_us + 6 * kHourUs;
        for (int p = 1; p < 10; ++p) Page(store, q, &q.cursor);
        page10.push_back(q);
      }
      size_t i = 0;
      return Latency(w, flags.queries,
                     [&] { return Page(store, page10[i++], nullptr); });
    }
    if (w == "count") {
      Store* store = Big();
      return Latency(w, flags.count_queries, [&] {
        const int64_t since = RandomRange(&rng).since_us.value();
        std::vector<BucketCount> out;
        Status s = store->CountByBucket(since, since + 24 * kHourUs, kHourUs,
                                        TimeField::kEvent, &out);
        if (!s.ok()) Die("counting", s);
        return out.size();
      });
    }
    if (w == "reservoir") {
      std::unique_ptr<Store> store = Open("reservoir.db", true);
      std::vector<float> v(size_t{1000} * flags.dim, 0.5f);
      const int kCalls = 1000;
      const auto t = Clock::now();
      for (int i = 0; i < kCalls; ++i) {
        Status s = store->AddSamples("stream-0", flags.dim, v.data(), 1000);
        if (!s.ok()) Die("adding samples", s);
      }
      const double s = Seconds(Clock::now() - t);
      std::printf(
          "%-13s: %9d rows in batches of 1000   %8.2f s %10.0f rows/s "
          "%9.1f us/batch (capacity %lld)\n",
          w.c_str(), kCalls * 1000, s, kCalls * 1000 / s, s * 1e6 / kCalls,
          static_cast<long long>(spec.options.reservoir_capacity));
      return;
    }
    if (w == "prune") {
      Store* store = Big();
      RetentionPolicy p;
      p.max_rows = big_rows - big_rows / 10;
      int64_t deleted = 0;
      const auto t = Clock::now();
      Status st = store->Prune(p, &deleted);
      const double s = Seconds(Clock::now() - t);
      if (!st.ok()) Die("pruning", st);
      big_rows = p.max_rows;
      std::printf(
          "%-13s: %9lld rows deleted in batches of %lld %6.2f s "
          "%10.0f rows/s %7.2f ms/batch\n",
          w.c_str(), static_cast<long long>(deleted),
          static_cast<long long>(p.batch_rows), s, deleted / s,
          s * 1e3 / std::max<double>(1, double(deleted) / p.batch_rows));
      return;
    }
    std::fprintf(stderr, "unknown workload '%s'\n", w.c_str());
    std::exit(2);
  }
};

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const size_t eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos) return false;
    const std::string k = a.substr(2, eq - 2), v = a.substr(eq + 1);
    if (k == "workloads")
      f->workloads = v;
    else if (k == "rows")
      f->rows = std::atoll(v.c_str());
    else if (k == "dim")
      f->dim = static_cast<uint32_t>(std::atoi(v.c_str()));
    else if (k == "queries")
      f->queries = std::atoi(v.c_str());
    else if (k == "count_queries")
      f->count_queries = std::atoi(v.c_str());
    else if (k == "pass")
      f->pass = std::atof(v.c_str());
    else if (k == "sync")
      f->sync = v;
    else if (k == "background_checkpoint")
      f->background_checkpoint = v != "0";
    else if (k == "dir")
      f->dir = v;
    else if (k == "seed")
      f->seed = std::strtoull(v.c_str(), nullptr, 10);
    else
      return false;
  }
  return f->rows > 0 && f->dim > 0 && f->queries > 0 && f->count_queries > 0 &&
         f->pass > 0 && f->pass <= 1 &&
         (f->sync == "off" || f->sync == "normal" || f->sync == "full");
}

int Main(int argc, char** argv) {
  Bench b;
  if (argc == 2 && std::string(argv[1]) == "--help") {
    std::printf("%s", kUsage);
    return 0;
  }
  if (!ParseFlags(argc, argv, &b.flags)) {
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  }
  const Flags& f = b.flags;
  b.spec.sqlite.sync = f.sync == "off"    ? SyncLevel::kOff
                       : f.sync == "full" ? SyncLevel::kFull
                                          : SyncLevel::kNormal;
  b.spec.sqlite.background_checkpoint = f.background_checkpoint;
  bool own_dir = f.dir.empty();
  if (own_dir) {
    char tmpl[] = "/tmp/anomalyd-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return 1;
    b.dir = tmpl;
  } else {
    b.dir = f.dir;
  }

  char date[64];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z",
                std::localtime(&now));
  std::printf("anomalyd storage benchmark\n");
  std::printf("Date:      %s\n", date);
  std::printf("CPU:       %s, %ld online\n", CpuModel().c_str(),
              sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("SQLite:    %s\n", sqlite3_libversion());
  std::printf("Build:     %s\n", ANOMALYD_BUILD_TYPE);
#if !defined(__OPTIMIZE__)
  std::printf("WARNING:   compiled without optimisation; numbers are slow\n");
#endif
#if !defined(NDEBUG)
  std::printf("WARNING:   assertions are enabled\n");
#endif
  std::printf(
      "Databases: %s, sync=%s, checkpoint %s, dim=%u, query table %lld "
      "rows, min-score pass %.0f%%\n",
      b.dir.c_str(), f.sync.c_str(),
      f.background_checkpoint ? "in the background" : "in commits", f.dim,
      static_cast<long long>(f.rows), f.pass * 100);
  std::printf(
      "--------------------------------------------------------------"
      "--------------\n");
  std::stringstream list(f.workloads);
  std::string w;
  while (std::getline(list, w, ',')) {
    if (!w.empty()) b.Run(w);
    std::fflush(stdout);
  }
  b.big.reset();
  if (own_dir) std::filesystem::remove_all(b.dir);
  return 0;
}

}  // namespace
}  // namespace anomalyd

int main(int argc, char** argv) { return anomalyd::Main(argc, argv); }
