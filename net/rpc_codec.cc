#include "net/rpc_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <exception>
#include <type_traits>

#include "net/rpc.capnp.h"
#include "net/rpc_convert.h"

namespace clustermgr::net {
namespace {

static_assert(rpcwire::PROTOCOL_VERSION == kRpcProtocolVersion,
              "kRpcProtocolVersion must follow net/rpc.capnp");

namespace w = rpcwire;
using rpc_convert::Fill;
using rpc_convert::FromWire;
using rpc_convert::Read;
using rpc_convert::SetStrs;
using rpc_convert::Str;
using rpc_convert::Strs;
using rpc_convert::ToWire;
using rpc_convert::Txt;

// ---- framing --------------------------------------------------------------------------------

std::string ToBytes(capnp::MessageBuilder& message) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  kj::ArrayPtr<const char> chars = words.asChars();
  return std::string(chars.begin(), chars.size());
}

// Copies `bytes` into word-aligned memory owned by the caller's array. Fails (returns an empty
// array) when the length is not a whole number of words or is zero.
kj::Array<capnp::word> AlignedCopy(std::string_view bytes) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) return nullptr;
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  return words;
}

capnp::ReaderOptions Options(const DecodeLimits& limits) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limits.traversal_limit_words;
  options.nestingLimit = limits.nesting_limit;
  return options;
}

std::string Describe(const kj::Exception& e) { return std::string(e.getDescription().cStr()); }

// Reads the union of a Request. Sets *unknown for a member this build does not know.
RpcRequest ReadOperation(w::Request::Reader r, bool* unknown) {
  *unknown = false;
  switch (r.which()) {
    case w::Request::NODE_GET:
      return NodeGetRequest{Str(r.getNodeGet().getName())};
    case w::Request::NODES_GET:
      return NodesGetRequest{};
    case w::Request::COMMISSION: {
      auto c = r.getCommission();
      return CommissionRequest{Strs(c.getNames()), Str(c.getGroup()), Str(c.getExtraVars())};
    }
    case w::Request::DECOMMISSION: {
      auto c = r.getDecommission();
      return DecommissionRequest{Strs(c.getNames()), Str(c.getExtraVars())};
    }
    case w::Request::UPDATE: {
      auto c = r.getUpdate();
      return UpdateRequest{Strs(c.getNames()), Str(c.getGroup()), Str(c.getExtraVars()),
                           c.getSerial()};
    }
    case w::Request::DISCOVER: {
      auto c = r.getDiscover();
      return DiscoverRequest{Strs(c.getAddrs()), Str(c.getExtraVars())};
    }
    case w::Request::GLOBAL_GET:
      return GlobalGetRequest{};
    case w::Request::GLOBAL_SET:
      return GlobalSetRequest{Str(r.getGlobalSet().getExtraVars())};
    case w::Request::JOB_GET:
      return JobGetRequest{Str(r.getJobGet().getLabel())};
    case w::Request::JOB_LOG_FOLLOW: {
      auto c = r.getJobLogFollow();
      return JobLogFollowRequest{Str(c.getJobId()), c.getFromLine(), c.getWaitMs()};
    }
    case w::Request::JOBS_LIST:
      return JobsListRequest{};
    case w::Request::JOB_CANCEL:
      return JobCancelRequest{Str(r.getJobCancel().getJobId())};
    case w::Request::CONFIG_GET:
      return ConfigGetRequest{};
    case w::Request::CONFIG_SET:
      return ConfigSetRequest{Str(r.getConfigSet().getConfig())};
    case w::Request::MEMBERS:
      return MembersRequest{};
    case w::Request::TOKEN:
      return TokenRequest{};
    case w::Request::STATUS:
      return StatusRequest{};
    case w::Request::STATE_DUMP: {
      auto c = r.getStateDump();
      return StateDumpRequest{c.getSnapshotId(), c.getOffset(), c.getMaxBytes()};
    }
    case w::Request::AUDIT_LIST:
      return AuditListRequest{r.getAuditList().getLimit()};
    case w::Request::UPGRADE: {
      auto c = r.getUpgrade();
      return UpgradeRequest{Strs(c.getNames()), Str(c.getExtraVars()), c.getSerial()};
    }
  }
  *unknown = true;
  return StatusRequest{};
}

void WriteOperation(w::Request::Builder b, const RpcRequest& request) {
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, NodeGetRequest>) {
          b.initNodeGet().setName(Txt(r.name));
        } else if constexpr (std::is_same_v<T, NodesGetRequest>) {
          b.initNodesGet();
        } else if constexpr (std::is_same_v<T, CommissionRequest>) {
          auto c = b.initCommission();
          SetStrs(c.initNames(r.names.size()), r.names);
          c.setGroup(Txt(r.group));
          c.setExtraVars(Txt(r.extra_vars));
        } else if constexpr (std::is_same_v<T, DecommissionRequest>) {
          auto c = b.initDecommission();
          SetStrs(c.initNames(r.names.size()), r.names);
          c.setExtraVars(Txt(r.extra_vars));
        } else if constexpr (std::is_same_v<T, UpdateRequest>) {
          auto c = b.initUpdate();
          SetStrs(c.initNames(r.names.size()), r.names);
          c.setGroup(Txt(r.group));
          c.setExtraVars(Txt(r.extra_vars));
          c.setSerial(r.serial);
        } else if constexpr (std::is_same_v<T, UpgradeRequest>) {
          auto c = b.initUpgrade();
          SetStrs(c.initNames(r.names.size()), r.names);
          c.setExtraVars(Txt(r.extra_vars));
          c.setSerial(r.serial);
        } else if constexpr (std::is_same_v<T, DiscoverRequest>) {
          auto c = b.initDiscover();
          SetStrs(c.initAddrs(r.addrs.size()), r.addrs);
          c.setExtraVars(Txt(r.extra_vars));
        } else if constexpr (std::is_same_v<T, GlobalGetRequest>) {
          b.initGlobalGet();
        } else if constexpr (std::is_same_v<T, GlobalSetRequest>) {
          b.initGlobalSet().setExtraVars(Txt(r.extra_vars));
        } else if constexpr (std::is_same_v<T, JobGetRequest>) {
          b.initJobGet().setLabel(Txt(r.label));
        } else if constexpr (std::is_same_v<T, JobLogFollowRequest>) {
          auto c = b.initJobLogFollow();
          c.setJobId(Txt(r.job_id));
          c.setFromLine(r.from_line);
          c.setWaitMs(r.wait_ms);
        } else if constexpr (std::is_same_v<T, JobsListRequest>) {
          b.initJobsList();
        } else if constexpr (std::is_same_v<T, JobCancelRequest>) {
          b.initJobCancel().setJobId(Txt(r.job_id));
        } else if constexpr (std::is_same_v<T, ConfigGetRequest>) {
          b.initConfigGet();
        } else if constexpr (std::is_same_v<T, ConfigSetRequest>) {
          b.initConfigSet().setConfig(Txt(r.config));
        } else if constexpr (std::is_same_v<T, MembersRequest>) {
          b.initMembers();
        } else if constexpr (std::is_same_v<T, TokenRequest>) {
          b.initToken();
        } else if constexpr (std::is_same_v<T, StatusRequest>) {
          b.initStatus();
        } else if constexpr (std::is_same_v<T, AuditListRequest>) {
          b.initAuditList().setLimit(r.limit);
        } else {
          static_assert(std::is_same_v<T, StateDumpRequest>);
          auto c = b.initStateDump();
          c.setSnapshotId(r.snapshot_id);
          c.setOffset(r.offset);
          c.setMaxBytes(r.max_bytes);
        }
      },
      request);
}

void WritePayload(w::Reply::Result::Builder b, const RpcPayload& payload) {
  std::visit(
      [&](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          b.setNone();
        } else if constexpr (std::is_same_v<T, NodeInfo>) {
          Fill(b.initNode(), p);
        } else if constexpr (std::is_same_v<T, NodeList>) {
          auto list = b.initNodeList().initNodes(p.nodes.size());
          for (unsigned i = 0; i < p.nodes.size(); ++i) Fill(list[i], p.nodes[i]);
        } else if constexpr (std::is_same_v<T, JobAccepted>) {
          b.initJobAccepted().setJobId(Txt(p.job_id));
        } else if constexpr (std::is_same_v<T, JsonText>) {
          b.initJson().setText(Txt(p.text));
        } else if constexpr (std::is_same_v<T, JobDetail>) {
          auto d = b.initJobDetail();
          Fill(d.initJob(), p.job);
          d.setFirstLine(p.first_line);
          SetStrs(d.initLogLines(p.log_lines.size()), p.log_lines);
        } else if constexpr (std::is_same_v<T, JobLogChunk>) {
          auto c = b.initJobLog();
          c.setFirstLine(p.first_line);
          SetStrs(c.initLines(p.lines.size()), p.lines);
          c.setEnded(p.ended);
          c.setStatus(ToWire(p.status));
          c.setError(Txt(p.error));
        } else if constexpr (std::is_same_v<T, JobList>) {
          auto list = b.initJobList().initJobs(p.jobs.size());
          for (unsigned i = 0; i < p.jobs.size(); ++i) Fill(list[i], p.jobs[i]);
        } else if constexpr (std::is_same_v<T, JobCancelled>) {
          b.initJobCancelled().setJobId(Txt(p.job_id));
        } else if constexpr (std::is_same_v<T, MemberList>) {
          auto list = b.initMemberList().initMembers(p.members.size());
          for (unsigned i = 0; i < p.members.size(); ++i) Fill(list[i], p.members[i]);
        } else if constexpr (std::is_same_v<T, TokenInfo>) {
          Fill(b.initToken(), p);
        } else if constexpr (std::is_same_v<T, StatusInfo>) {
          Fill(b.initStatus(), p);
        } else {
          static_assert(std::is_same_v<T, StateChunk>);
          auto c = b.initStateChunk();
          c.setSnapshotId(p.snapshot_id);
          c.setTotalBytes(p.total_bytes);
          c.setOffset(p.offset);
          c.setData(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(p.data.data()),
                                        p.data.size()));
        }
      },
      payload);
}

// Reads the result union. Sets *unknown for a member this build does not know.
RpcPayload ReadPayload(w::Reply::Result::Reader r, bool* unknown) {
  *unknown = false;
  switch (r.which()) {
    case w::Reply::Result::NONE:
      return std::monostate{};
    case w::Reply::Result::NODE:
      return Read(r.getNode());
    case w::Reply::Result::NODE_LIST: {
      NodeList out;
      auto nodes = r.getNodeList().getNodes();
      out.nodes.reserve(nodes.size());
      for (auto n : nodes) out.nodes.push_back(Read(n));
      return out;
    }
    case w::Reply::Result::JOB_ACCEPTED:
      return JobAccepted{Str(r.getJobAccepted().getJobId())};
    case w::Reply::Result::JSON:
      return JsonText{Str(r.getJson().getText())};
    case w::Reply::Result::JOB_DETAIL: {
      auto d = r.getJobDetail();
      return JobDetail{Read(d.getJob()), d.getFirstLine(), Strs(d.getLogLines())};
    }
    case w::Reply::Result::JOB_LOG: {
      auto c = r.getJobLog();
      return JobLogChunk{c.getFirstLine(), Strs(c.getLines()), c.getEnded(),
                         FromWire(c.getStatus()), Str(c.getError())};
    }
    case w::Reply::Result::JOB_LIST: {
      JobList out;
      auto jobs = r.getJobList().getJobs();
      out.jobs.reserve(jobs.size());
      for (auto j : jobs) out.jobs.push_back(Read(j));
      return out;
    }
    case w::Reply::Result::JOB_CANCELLED:
      return JobCancelled{Str(r.getJobCancelled().getJobId())};
    case w::Reply::Result::MEMBER_LIST: {
      MemberList out;
      auto members = r.getMemberList().getMembers();
      out.members.reserve(members.size());
      for (auto m : members) out.members.push_back(Read(m));
      return out;
    }
    case w::Reply::Result::TOKEN:
      return Read(r.getToken());
    case w::Reply::Result::STATUS:
      return Read(r.getStatus());
    case w::Reply::Result::STATE_CHUNK: {
      auto c = r.getStateChunk();
      auto data = c.getData();
      return StateChunk{c.getSnapshotId(), c.getTotalBytes(), c.getOffset(),
                        std::string(reinterpret_cast<const char*>(data.begin()), data.size())};
    }
  }
  *unknown = true;
  return std::monostate{};
}

}  // namespace

std::string EncodeRequest(std::uint64_t request_id, const RpcRequest& request,
                          std::string_view forwarded_by, const ForwardedCaller& caller) {
  capnp::MallocMessageBuilder message;
  auto b = message.initRoot<w::Request>();
  b.setProtocolVersion(kRpcProtocolVersion);
  b.setRequestId(request_id);
  b.setForwardedBy(capnp::Text::Reader(forwarded_by.data(), forwarded_by.size()));
  if (!forwarded_by.empty()) {
    b.setCallerKey(Txt(caller.key));
    b.setCallerName(Txt(caller.name));
    b.setCallerRole(Txt(caller.role));
  }
  WriteOperation(b, request);
  return ToBytes(message);
}

std::string EncodeReply(std::uint64_t request_id, const RpcReply& reply) {
  capnp::MallocMessageBuilder message;
  auto b = message.initRoot<w::Reply>();
  b.setProtocolVersion(kRpcProtocolVersion);
  b.setRequestId(request_id);
  b.setError(ToWire(reply.code));
  b.setMessage(Txt(reply.message));
  b.setInstance(Txt(reply.instance));
  WritePayload(b.initResult(), reply.payload);
  return ToBytes(message);
}

DecodedRequest DecodeRequest(std::string_view bytes, const DecodeLimits& limits) {
  DecodedRequest out;
  kj::Array<capnp::word> words = AlignedCopy(bytes);
  if (words == nullptr) {
    out.request =
        Status(Code::kInvalidArgument, "malformed request: " + std::to_string(bytes.size()) +
                                           " bytes is not a whole number of 8-byte words");
    return out;
  }
  try {
    capnp::FlatArrayMessageReader message(words, Options(limits));
    auto r = message.getRoot<w::Request>();
    out.request_id = r.getRequestId();
    out.protocol_version = r.getProtocolVersion();
    if (out.protocol_version == 0) {
      out.request = Status(Code::kInvalidArgument, "malformed request: no protocol version");
      return out;
    }
    out.forwarded_by = Str(r.getForwardedBy());
    out.caller.key = Str(r.getCallerKey());
    out.caller.name = Str(r.getCallerName());
    out.caller.role = Str(r.getCallerRole());
    bool unknown = false;
    RpcRequest op = ReadOperation(r, &unknown);
    if (unknown) {
      out.request = Status(Code::kUnimplemented,
                           "operation #" + std::to_string(static_cast<unsigned>(r.which())) +
                               " is not implemented by this server (client protocol version " +
                               std::to_string(out.protocol_version) + ", server " +
                               std::to_string(kRpcProtocolVersion) + ")");
      return out;
    }
    out.request = std::move(op);
  } catch (const kj::Exception& e) {
    out.request = Status(Code::kInvalidArgument, "malformed request: " + Describe(e));
  } catch (const std::exception& e) {
    out.request = Status(Code::kInvalidArgument, std::string("malformed request: ") + e.what());
  }
  return out;
}

Result<DecodedReply> DecodeReply(std::string_view bytes, const DecodeLimits& limits) {
  kj::Array<capnp::word> words = AlignedCopy(bytes);
  if (words == nullptr) {
    return Status(Code::kInternal, "malformed reply: " + std::to_string(bytes.size()) +
                                       " bytes is not a whole number of 8-byte words");
  }
  try {
    capnp::FlatArrayMessageReader message(words, Options(limits));
    auto r = message.getRoot<w::Reply>();
    DecodedReply out;
    out.request_id = r.getRequestId();
    out.protocol_version = r.getProtocolVersion();
    if (out.protocol_version == 0) {
      return Status(Code::kInternal, "malformed reply: no protocol version");
    }
    RpcReply& reply = out.reply;
    bool known_code = FromWire(r.getError(), &reply.code);
    reply.message = Str(r.getMessage());
    reply.instance = Str(r.getInstance());
    if (!known_code) {
      reply.message =
          "error #" + std::to_string(static_cast<unsigned>(r.getError())) + ": " + reply.message;
    }
    bool unknown = false;
    reply.payload = ReadPayload(r.getResult(), &unknown);
    if (unknown && reply.code == Code::kOk) {
      reply = RpcReply::Error(Code::kInternal,
                              "reply not understood: result #" +
                                  std::to_string(static_cast<unsigned>(r.getResult().which())) +
                                  " is unknown to this client (server protocol version " +
                                  std::to_string(out.protocol_version) + ", client " +
                                  std::to_string(kRpcProtocolVersion) + ")");
      reply.instance = Str(r.getInstance());
    }
    return out;
  } catch (const kj::Exception& e) {
    return Status(Code::kInternal, "malformed reply: " + Describe(e));
  } catch (const std::exception& e) {
    return Status(Code::kInternal, std::string("malformed reply: ") + e.what());
  }
}

}  // namespace clustermgr::net
