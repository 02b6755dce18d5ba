#include "clients/anomalyctl/csv_out.h"

#include <cstdio>
#include <iostream>

#include "model/csv.h"

namespace anomalyd::ctl {
namespace {

std::string G(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

Status Output::Open(const std::string& path) {
  if (path == "-") {
    out_ = &std::cout;
    return Status::OK();
  }
  file_.open(path, std::ios::binary | std::ios::trunc);
  if (!file_) return Status::IoError("cannot write " + path);
  out_ = &file_;
  return Status::OK();
}

Status Output::Close(const std::string& path) {
  out_->flush();
  if (!*out_) return Status::IoError("error writing " + path);
  return Status::OK();
}

std::string ScoreHeader(const ScoreColumns& c) {
  std::string out = "id,reconstruction,kl,density,score,p_value,flagged";
  if (c.daemon) out += ",stored,model_version";
  if (c.contributions) {
    for (const std::string& f : c.features) out += "," + CsvField("contrib_" + f);
  }
  return out + "\n";
}

std::string ScoreRow(const ScoreColumns& c, const ScoreLine& l) {
  std::string out = CsvField(l.id);
  out += "," + G(l.reconstruction) + "," + G(l.kl) + ",";
  if (!c.daemon) out += G(l.density);
  out += "," + G(l.score) + "," + G(l.p_value) + (l.flagged ? ",1" : ",0");
  if (c.daemon) out += (l.stored ? ",1," : ",0,") + std::to_string(l.model_version);
  if (c.contributions) {
    for (size_t j = 0; j < c.features.size(); ++j) out += "," + G(l.contributions[j]);
  }
  return out + "\n";
}

}  // namespace anomalyd::ctl
