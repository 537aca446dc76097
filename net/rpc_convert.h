// Conversions between the RPC value types (net/rpc_types.h) and their Cap'n Proto wire form
// (net/rpc.capnp): enums, error codes and payload structs. Used by the RPC codec
// (net/rpc_codec.cc) only.
#pragma once

#include <string>
#include <vector>

#include "net/rpc.capnp.h"
#include "net/rpc_types.h"

namespace clustermgr::net::rpc_convert {

namespace w = ::clustermgr::net::rpcwire;

capnp::Text::Reader Txt(const std::string& s);
std::string Str(capnp::Text::Reader t);
std::vector<std::string> Strs(capnp::List<capnp::Text>::Reader list);
void SetStrs(capnp::List<capnp::Text>::Builder list, const std::vector<std::string>& v);
// Unknown enumerants (a newer peer) read as the "unspecified" value.
NodeStatus FromWire(w::NodeStatus s);
w::NodeStatus ToWire(NodeStatus s);
NodeState FromWire(w::NodeState s);
w::NodeState ToWire(NodeState s);
JobStatus FromWire(w::JobStatus s);
w::JobStatus ToWire(JobStatus s);
// Returns false for an enumerant this build does not know.
bool FromWire(w::ErrorCode c, Code* out);
w::ErrorCode ToWire(Code c);
void Fill(w::NodeInfo::Builder b, const NodeInfo& n);
NodeInfo Read(w::NodeInfo::Reader r);
void Fill(w::JobInfo::Builder b, const JobInfo& j);
JobInfo Read(w::JobInfo::Reader r);
void Fill(capnp::List<w::OriginCount>::Builder list, const std::vector<OriginCount>& v);
std::vector<OriginCount> Read(capnp::List<w::OriginCount>::Reader list);
void Fill(w::MemberInfo::Builder b, const MemberInfo& m);
MemberInfo Read(w::MemberInfo::Reader r);
void Fill(w::TokenInfo::Builder b, const TokenInfo& t);
TokenInfo Read(w::TokenInfo::Reader r);
void Fill(w::StatusInfo::Builder b, const StatusInfo& s);
StatusInfo Read(w::StatusInfo::Reader r);

}  // namespace clustermgr::net::rpc_convert
