#include "storage/codec.h"

#include <charconv>
#include <cmath>
#include <cstring>

namespace anomalyd::codec {
namespace {

constexpr bool kLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

void PutU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
               static_cast<char>(v >> 24)};
  out->append(b, 4);
}

bool GetU32(std::string_view* in, uint32_t* v) {
  if (in->size() < 4) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(in->data());
  *v = uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
  in->remove_prefix(4);
  return true;
}

bool GetBytes(std::string_view* in, std::string* s) {
  uint32_t n = 0;
  if (!GetU32(in, &n) || in->size() < n) return false;
  s->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

template <typename T>
bool ParseInt(std::string_view s, T* v, int base = 10) {
  if (s.empty() || s[0] == '+') return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v, base);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

std::string_view FloatBytes(const std::vector<float>& v, std::string* scratch) {
  const size_t n = v.size() * sizeof(float);
  if constexpr (kLittleEndian) {
    return std::string_view(reinterpret_cast<const char*>(v.data()), n);
  }
  scratch->clear();
  for (float f : v) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    PutU32(scratch, u);
  }
  return *scratch;
}

Status DecodeFloats(std::string_view bytes, std::vector<float>* v) {
  if (bytes.size() % sizeof(float) != 0) {
    return Status::Corrupt("float blob of " + std::to_string(bytes.size()) +
                           " bytes is not a multiple of 4");
  }
  v->resize(bytes.size() / sizeof(float));
  if constexpr (kLittleEndian) {
    if (!bytes.empty()) std::memcpy(v->data(), bytes.data(), bytes.size());
  } else {
    for (float& f : *v) {
      uint32_t u = 0;
      GetU32(&bytes, &u);
      std::memcpy(&f, &u, 4);
    }
  }
  return Status::OK();
}

void EncodeLabels(const std::vector<std::pair<std::string, std::string>>& l, std::string* out) {
  out->clear();
  for (const auto& [key, value] : l) {
    PutU32(out, static_cast<uint32_t>(key.size()));
    out->append(key);
    PutU32(out, static_cast<uint32_t>(value.size()));
    out->append(value);
  }
}

Status DecodeLabels(std::string_view bytes, std::vector<std::pair<std::string, std::string>>* l) {
  l->clear();
  while (!bytes.empty()) {
    std::pair<std::string, std::string> kv;
    if (!GetBytes(&bytes, &kv.first) || !GetBytes(&bytes, &kv.second)) {
      l->clear();
      return Status::Corrupt("labels blob: a length runs past its end");
    }
    l->push_back(std::move(kv));
  }
  return Status::OK();
}

std::string EncodeCursor(const Cursor& c) {
  std::string out;
  if (c.order == AnomalyOrder::kScoreDesc) {
    uint64_t bits;
    std::memcpy(&bits, &c.score, sizeof bits);
    char hex[17];
    auto r = std::to_chars(hex, hex + 16, bits, 16);
    std::string h(hex, r.ptr);
    out = "x1." + std::string(16 - h.size(), '0') + h;
  } else {
    const bool asc = c.order == AnomalyOrder::kTimeAsc;
    const char* prefix =
        c.time_field == TimeField::kEvent ? (asc ? "E1." : "e1.") : (asc ? "S1." : "s1.");
    out = prefix + std::to_string(c.time_us);
  }
  return out + "." + std::to_string(c.id);
}

Status DecodeCursor(std::string_view text, Cursor* c) {
  auto bad = [&] {
    return Status::InvalidArgument("malformed cursor '" + std::string(text) + "'");
  };
  if (text.size() < 3 || text.substr(1, 2) != "1.") return bad();
  const char kind = text[0];
  std::string_view rest = text.substr(3);
  size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return bad();
  std::string_view key = rest.substr(0, dot);
  Cursor out;
  if (!ParseInt(rest.substr(dot + 1), &out.id) || out.id <= 0) return bad();
  if (kind == 'x') {
    uint64_t bits = 0;
    if (key.size() != 16 || key[0] == '-' || !ParseInt(key, &bits, 16)) {
      return bad();
    }
    out.order = AnomalyOrder::kScoreDesc;
    std::memcpy(&out.score, &bits, sizeof bits);
    if (std::isnan(out.score)) return bad();
  } else if (kind == 'e' || kind == 's' || kind == 'E' || kind == 'S') {
    out.order = kind == 'e' || kind == 's' ? AnomalyOrder::kTimeDesc : AnomalyOrder::kTimeAsc;
    out.time_field = kind == 'e' || kind == 'E' ? TimeField::kEvent : TimeField::kScored;
    if (!ParseInt(key, &out.time_us)) return bad();
  } else {
    return bad();
  }
  *c = out;
  return Status::OK();
}

}  // namespace anomalyd::codec
