// api/service/access_audit.cc
#include "api/service/access_audit.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

namespace bridge::api::service {

std::string AccessEventToJson(const AccessEvent& e) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  const auto str = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  str("time", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", e.time, absl::UTCTimeZone()));
  str("who", e.who);
  str("protocol", e.protocol);
  str("action", e.action);
  str("what", e.what);
  w.Key("patients");
  w.StartArray();
  for (const std::string& p : e.patients) {
    w.String(p.c_str(), static_cast<rapidjson::SizeType>(p.size()));
  }
  w.EndArray();
  w.Key("outcome");
  w.Int(e.outcome);
  str("source", e.source);
  w.EndObject();
  return buffer.GetString();
}

absl::StatusOr<AccessEvent> AccessEventFromJson(const std::string& line) {
  rapidjson::Document doc;
  doc.Parse(line.c_str(), line.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return absl::DataLossError("access audit: unreadable line");
  }
  AccessEvent e;
  const auto str = [&](const char* key, std::string* out) {
    if (doc.HasMember(key) && doc[key].IsString()) {
      *out = doc[key].GetString();
    }
  };
  std::string time;
  str("time", &time);
  std::string error;
  if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", time, &e.time, &error)) {
    return absl::DataLossError("access audit: bad time");
  }
  str("who", &e.who);
  str("protocol", &e.protocol);
  str("action", &e.action);
  str("what", &e.what);
  str("source", &e.source);
  if (doc.HasMember("patients") && doc["patients"].IsArray()) {
    for (const auto& p : doc["patients"].GetArray()) {
      if (p.IsString()) {
        e.patients.emplace_back(p.GetString());
      }
    }
  }
  if (doc.HasMember("outcome") && doc["outcome"].IsInt()) {
    e.outcome = doc["outcome"].GetInt();
  }
  return e;
}

absl::StatusOr<std::unique_ptr<AccessAudit>> AccessAudit::Open(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path p(path);
  if (p.has_parent_path()) {
    std::filesystem::create_directories(p.parent_path(), ec);
  }
  std::FILE* file = std::fopen(path.c_str(), "a");
  if (file == nullptr) {
    return absl::UnavailableError("access audit: cannot open " + path);
  }
  ::chmod(path.c_str(), 0600);
  return std::unique_ptr<AccessAudit>(new AccessAudit(path, file));
}

AccessAudit::~AccessAudit() {
  if (file_ != nullptr) {
    std::fclose(file_);
  }
}

absl::Status AccessAudit::Record(const AccessEvent& event) {
  const std::string line = AccessEventToJson(event) + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    return absl::UnavailableError("access audit: write to " + path_ + " failed");
  }
  ++recorded_;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<AccessEvent>> AccessAudit::Query(const std::string& pms_patient_id,
                                                            int limit) const {
  std::vector<AccessEvent> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::fflush(file_);
  }
  std::ifstream in(path_);
  if (!in) {
    return absl::UnavailableError("access audit: cannot read " + path_);
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) {
      continue;
    }
    absl::StatusOr<AccessEvent> e = AccessEventFromJson(line);
    if (!e.ok()) {
      return e.status();
    }
    if (!pms_patient_id.empty() &&
        std::find(e->patients.begin(), e->patients.end(), pms_patient_id) == e->patients.end()) {
      continue;
    }
    out.push_back(*std::move(e));
  }
  std::reverse(out.begin(), out.end());
  if (out.size() > static_cast<std::size_t>(limit)) {
    out.resize(static_cast<std::size_t>(limit));
  }
  return out;
}

std::uint64_t AccessAudit::recorded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return recorded_;
}

}  // namespace bridge::api::service
