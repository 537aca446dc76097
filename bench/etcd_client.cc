#include "bench/etcd_client.h"

#include <curl/curl.h>

#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

namespace clustermgr::bench {

using json = nlohmann::json;

std::string Base64(const std::string& in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8 |
                       static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += i + 1 < in.size() ? kAlphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

namespace {

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// The end of the key range holding every key with `prefix` (the prefix with its last byte + 1).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<uint8_t>(prefix.back()) < 0xff) {
      prefix.back() = static_cast<char>(prefix.back() + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

}  // namespace

void EtcdClient::GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

EtcdClient::EtcdClient(std::string base_url) : base_url_(std::move(base_url)) {
  CURL* c = curl_easy_init();
  if (c == nullptr) std::abort();  // out of memory
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Append);
  curl_slist* h = curl_slist_append(nullptr, "Content-Type: application/json");
  h = curl_slist_append(h, "Expect:");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_ = c;
  headers_ = h;
}

EtcdClient::~EtcdClient() {
  curl_easy_cleanup(static_cast<CURL*>(curl_));
  curl_slist_free_all(static_cast<curl_slist*>(headers_));
}

std::optional<std::string> EtcdClient::Request(const std::string& path, const std::string* body) {
  CURL* c = static_cast<CURL*>(curl_);
  std::string reply;
  const std::string url = base_url_ + path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
  if (body != nullptr) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
  } else {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  }
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    error_ = curl_easy_strerror(rc);
    return std::nullopt;
  }
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) {
    error_ = "HTTP " + std::to_string(code) + ": " + reply.substr(0, 300);
    return std::nullopt;
  }
  return reply;
}

bool EtcdClient::Put(const std::string& key, const std::string& value) {
  const std::string body = json{{"key", Base64(key)}, {"value", Base64(value)}}.dump();
  return Request("/v3/kv/put", &body).has_value();
}

bool EtcdClient::PutMany(const std::vector<std::pair<std::string, std::string>>& kvs) {
  json ops = json::array();
  for (const auto& [k, v] : kvs) {
    ops.push_back({{"requestPut", {{"key", Base64(k)}, {"value", Base64(v)}}}});
  }
  const std::string body = json{{"success", ops}}.dump();
  return Request("/v3/kv/txn", &body).has_value();
}

std::optional<std::string> EtcdClient::GetSerializable(const std::string& key, bool* found) {
  const std::string body = json{{"key", Base64(key)}, {"serializable", true}}.dump();
  auto reply = Request("/v3/kv/range", &body);
  if (!reply) return std::nullopt;
  const json j = json::parse(*reply, nullptr, false);
  *found = false;
  if (j.is_discarded() || !j.is_object()) {
    error_ = "bad reply: not a JSON object";
    return std::nullopt;
  }
  const auto kvs = j.find("kvs");
  if (kvs == j.end() || !kvs->is_array() || kvs->empty()) return "";
  const auto value = (*kvs)[0].find("value");
  *found = true;
  // Compared base64 to base64 by the caller's Base64(expected): no decoding needed.
  return value != (*kvs)[0].end() && value->is_string() ? value->get<std::string>() : "";
}

std::int64_t EtcdClient::CountSerializable(const std::string& prefix) {
  const std::string body = json{
      {"key", Base64(prefix)},
      {"range_end", Base64(PrefixEnd(prefix))},
      {"serializable", true},
      {"count_only", true}}.dump();
  auto reply = Request("/v3/kv/range", &body);
  if (!reply) return -1;
  const json j = json::parse(*reply, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    error_ = "bad reply: not a JSON object";
    return -1;
  }
  // int64 fields come as strings in the gateway's JSON; an absent count means 0.
  const auto count = j.find("count");
  if (count == j.end()) return 0;
  if (count->is_string()) return std::strtoll(count->get<std::string>().c_str(), nullptr, 10);
  if (count->is_number_integer()) return count->get<std::int64_t>();
  error_ = "bad reply: count is " + count->dump();
  return -1;
}

std::optional<std::vector<EtcdClient::Member>> EtcdClient::Members() {
  const std::string body = "{}";
  auto reply = Request("/v3/cluster/member/list", &body);
  if (!reply) return std::nullopt;
  const json j = json::parse(*reply, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("members") || !j["members"].is_array()) {
    error_ = "bad reply: no members";
    return std::nullopt;
  }
  std::vector<Member> out;
  for (const auto& m : j["members"]) {
    Member member;
    if (m.contains("ID") && m["ID"].is_string()) {
      member.id = std::strtoull(m["ID"].get<std::string>().c_str(), nullptr, 10);
    }
    if (m.contains("name") && m["name"].is_string()) member.name = m["name"];
    if (m.contains("peerURLs") && m["peerURLs"].is_array()) {
      for (const auto& u : m["peerURLs"]) {
        if (u.is_string()) member.peer_urls.push_back(u);
      }
    }
    out.push_back(std::move(member));
  }
  return out;
}

bool EtcdClient::RemoveMember(std::uint64_t id) {
  const std::string body = json{{"ID", std::to_string(id)}}.dump();
  return Request("/v3/cluster/member/remove", &body).has_value();
}

bool EtcdClient::AddMember(const std::string& peer_url) {
  const std::string body = json{{"peerURLs", json::array({peer_url})}}.dump();
  return Request("/v3/cluster/member/add", &body).has_value();
}

bool EtcdClient::Healthy() {
  auto reply = Request("/health", nullptr);
  return reply && reply->find("\"health\":\"true\"") != std::string::npos;
}

std::optional<double> EtcdClient::MetricSum(const std::string& name) {
  auto reply = Request("/metrics", nullptr);
  if (!reply) return std::nullopt;
  std::istringstream in(*reply);
  std::string line;
  double sum = 0;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != '{' && next != ' ') continue;  // another metric sharing the prefix
    const auto space = line.rfind(' ');
    if (space != std::string::npos) sum += std::strtod(line.c_str() + space + 1, nullptr);
  }
  return sum;
}

}  // namespace clustermgr::bench
