// Model bundles on disk: Model::Save and Model::Load.
//
// A bundle is one directory:
//   metadata.pb  "ANOMALYD-BUNDLE\n", then the payload length and its
//                FNV-1a 64 hash (8 bytes each, little-endian), then the
//                serialised pb::BundleMeta;
//   vae_K.pt     the weights of ensemble member K (torch::save), whose size
//                and hash are listed in the metadata.
// Every file is checked before anything is parsed, so a truncated, damaged
// or foreign bundle is a CORRUPT status, never a crash or a half-load.
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "model/model_impl.h"

namespace anomalyd {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[] = "ANOMALYD-BUNDLE\n";
constexpr size_t kMagicLen = sizeof(kMagic) - 1;
constexpr size_t kHeaderLen = kMagicLen + 16;
constexpr uint32_t kFormatVersion = 1;
constexpr char kMetaFile[] = "metadata.pb";
// Upper bounds that no real bundle reaches; past them the metadata is
// treated as foreign rather than trusted to size allocations.
constexpr uint64_t kMaxMetaBytes = 256ull << 20;
constexpr uint32_t kMaxEnsemble = 16;

uint64_t Fnv1a(const std::string& bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

void PutU64(std::string* s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

Status ReadFile(const fs::path& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::IoError("cannot read " + path.string());
  *out = ss.str();
  return Status::OK();
}

// Writes and fsyncs a file, so that the rename that publishes the bundle
// never exposes a file whose data is not yet on disk.
Status WriteFileSynced(const fs::path& path, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return Status::IoError("cannot create " + path.string() + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      std::string err = std::strerror(errno);
      ::close(fd);
      return Status::IoError("cannot write " + path.string() + ": " + err);
    }
    done += static_cast<size_t>(w);
  }
  const bool synced = ::fsync(fd) == 0;
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed) return Status::IoError("cannot sync " + path.string());
  return Status::OK();
}

void SyncDir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

std::string MemberFile(uint32_t k) { return "vae_" + std::to_string(k) + ".pt"; }

Status ValidateMeta(const pb::BundleMeta& m) {
  auto corrupt = [](const std::string& why) { return Status::Corrupt("bundle metadata: " + why); };
  if (m.format_version() != kFormatVersion) {
    return corrupt("format version " + std::to_string(m.format_version()) +
                   " is not one this anomalyd reads (" + std::to_string(kFormatVersion) + ")");
  }
  const auto& a = m.architecture();
  if (m.dim() == 0 || static_cast<uint32_t>(m.feature_names_size()) != m.dim() ||
      a.input_dim() != m.dim()) {
    return corrupt("dimension, feature names and architecture disagree");
  }
  if (a.latent_dim() == 0 || a.latent_dim() > 1024 || a.hidden_size() > 16) {
    return corrupt("architecture out of range");
  }
  for (uint32_t h : a.hidden()) {
    if (h == 0 || h > 65536) return corrupt("hidden layer size out of range");
  }
  if (!(a.logvar_min() < a.logvar_max()) || !std::isfinite(a.beta())) {
    return corrupt("architecture parameters out of range");
  }
  if (m.ensemble_size() < 1 || m.ensemble_size() > kMaxEnsemble ||
      static_cast<uint32_t>(m.files_size()) != m.ensemble_size()) {
    return corrupt("ensemble size and weight files disagree");
  }
  if (!std::isfinite(m.threshold().value())) return corrupt("threshold is not finite");
  if (!(a.density_weight() >= 0) || !std::isfinite(a.density_weight())) {
    return corrupt("density weight out of range");
  }
  if (a.density_weight() > 0) {
    if (static_cast<uint32_t>(m.latent_centres_size()) != m.ensemble_size()) {
      return corrupt("latent centres and ensemble size disagree");
    }
    for (const pb::LatentCentres& c : m.latent_centres()) {
      if (c.mean_size() == 0 || c.mean_size() != c.log_var_size() ||
          c.mean_size() % a.latent_dim() != 0) {
        return corrupt("latent centres have the wrong shape");
      }
      for (int i = 0; i < c.mean_size(); ++i) {
        if (!std::isfinite(c.mean(i)) || !(c.log_var(i) >= a.logvar_min()) ||
            !(c.log_var(i) <= a.logvar_max())) {
          return corrupt("latent centres are not usable");
        }
      }
    }
  }
  return Status::OK();
}

}  // namespace

Status Model::Save(const std::string& dir) const {
  const fs::path target = fs::absolute(fs::path(dir).lexically_normal());
  const fs::path parent = target.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) return Status::IoError("cannot create " + parent.string() + ": " + ec.message());
  std::random_device rd;
  const fs::path tmp = parent / ("." + target.filename().string() + ".tmp-" +
                                 std::to_string(::getpid()) + "-" + std::to_string(rd()));
  fs::create_directory(tmp, ec);
  if (ec) return Status::IoError("cannot create " + tmp.string() + ": " + ec.message());

  Status s = [&]() -> Status {
    pb::BundleMeta meta = impl_->meta;
    meta.clear_files();
    for (uint32_t k = 0; k < impl_->members.size(); ++k) {
      std::ostringstream weights;
      try {
        torch::save(impl_->members[k], weights);
      } catch (const std::exception& e) {
        return Status::IoError(std::string("cannot serialise weights: ") + e.what());
      }
      const std::string bytes = weights.str();
      ANOMALYD_RETURN_IF_ERROR(WriteFileSynced(tmp / MemberFile(k), bytes));
      pb::BundleFile* f = meta.add_files();
      f->set_name(MemberFile(k));
      f->set_size(bytes.size());
      f->set_fnv1a(Fnv1a(bytes));
    }
    std::string payload;
    if (!meta.SerializeToString(&payload)) {
      return Status::Internal("cannot serialise bundle metadata");
    }
    std::string file(kMagic, kMagicLen);
    PutU64(&file, payload.size());
    PutU64(&file, Fnv1a(payload));
    file += payload;
    ANOMALYD_RETURN_IF_ERROR(WriteFileSynced(tmp / kMetaFile, file));
    SyncDir(tmp);
    // Publish: a plain rename when the target is new; an atomic exchange
    // when a bundle is already there, so readers see old or new, whole.
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
      if ((errno != ENOTEMPTY && errno != EEXIST) ||
          ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0) {
        return Status::IoError("cannot move bundle into " + target.string() + ": " +
                               std::strerror(errno));
      }
    }
    SyncDir(parent);
    return Status::OK();
  }();
  fs::remove_all(tmp, ec);  // the failed attempt, or the replaced bundle
  return s;
}

Status Model::Load(const std::string& dir, const std::string& device,
                   std::unique_ptr<Model>* model) {
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return Status::NotFound("no model bundle at " + dir);
  }
  if (!fs::exists(root / kMetaFile, ec)) {
    return Status::Corrupt("bundle " + dir + ": no metadata.pb (not a bundle)");
  }
  std::string file;
  ANOMALYD_RETURN_IF_ERROR(ReadFile(root / kMetaFile, &file).WithContext("bundle " + dir));
  if (file.size() < kHeaderLen || file.compare(0, kMagicLen, kMagic) != 0) {
    return Status::Corrupt("bundle " + dir + ": metadata.pb is not an anomalyd bundle");
  }
  const uint64_t len = GetU64(file.data() + kMagicLen);
  const uint64_t hash = GetU64(file.data() + kMagicLen + 8);
  if (len > kMaxMetaBytes || file.size() - kHeaderLen != len) {
    return Status::Corrupt("bundle " + dir + ": metadata.pb is truncated");
  }
  const std::string payload = file.substr(kHeaderLen);
  if (Fnv1a(payload) != hash) {
    return Status::Corrupt("bundle " + dir + ": metadata.pb checksum mismatch");
  }
  auto impl = std::make_unique<Impl>();
  if (!impl->meta.ParseFromString(payload)) {
    return Status::Corrupt("bundle " + dir + ": metadata.pb does not parse");
  }
  const pb::BundleMeta& meta = impl->meta;
  ANOMALYD_RETURN_IF_ERROR(ValidateMeta(meta).WithContext("bundle " + dir));
  ANOMALYD_RETURN_IF_ERROR(Normaliser::FromProto(meta.normaliser(), meta.dim(), &impl->normaliser)
                               .WithContext("bundle " + dir));
  ANOMALYD_RETURN_IF_ERROR(ParseDevice(device, &impl->device));
  for (const pb::BundleFile& f : meta.files()) {
    if (f.name().find('/') != std::string::npos || f.name().empty()) {
      return Status::Corrupt("bundle " + dir + ": bad weights file name");
    }
    if (!fs::exists(root / f.name(), ec)) {
      return Status::Corrupt("bundle " + dir + ": " + f.name() + " is missing");
    }
    std::string bytes;
    ANOMALYD_RETURN_IF_ERROR(ReadFile(root / f.name(), &bytes).WithContext("bundle " + dir));
    if (bytes.size() != f.size() || Fnv1a(bytes) != f.fnv1a()) {
      return Status::Corrupt("bundle " + dir + ": " + f.name() + " is truncated or damaged");
    }
    try {
      Vae vae(meta.architecture());
      std::istringstream in(bytes);
      torch::load(vae, in, impl->device);
      vae->to(impl->device);
      vae->eval();
      impl->members.push_back(vae);
    } catch (const std::exception& e) {
      return Status::Corrupt("bundle " + dir + ": " + f.name() + " does not load: " + e.what());
    }
  }
  *model = ModelAccess::Make(std::move(impl));
  return Status::OK();
}

}  // namespace anomalyd
