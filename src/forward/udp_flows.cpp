// UDP flows and their header (udp_flows.hpp): pure logic.
#include "peersock/forward/udp_flows.hpp"

#include <cassert>

namespace peersock::forward::udp {

size_t encode_header(uint64_t flow_id, std::span<uint8_t, kMaxHeader> out) {
  assert(flow_id <= kMaxFlowId);
  size_t length = flow_id < (1U << 6) ? 1 : flow_id < (1U << 14) ? 2 : flow_id < (1ULL << 30) ? 4 : 8;
  const uint8_t prefix = length == 1 ? 0x00 : length == 2 ? 0x40 : length == 4 ? 0x80 : 0xc0;
  for (size_t i = 0; i < length; ++i) {
    auto byte = static_cast<uint8_t>(flow_id >> (8 * (length - 1 - i)));
    out[i] = i == 0 ? static_cast<uint8_t>(byte | prefix) : byte;
  }
  return length;
}

std::optional<Header> decode_header(std::span<const uint8_t> datagram) {
  if (datagram.empty()) return std::nullopt;
  const size_t length = size_t{1} << (datagram[0] >> 6);
  if (datagram.size() < length) return std::nullopt;
  uint64_t value = datagram[0] & 0x3f;
  for (size_t i = 1; i < length; ++i) value = (value << 8) | datagram[i];
  return Header{value, length};
}

FlowTable::Touched FlowTable::touch(uint64_t id, Timestamp now) {
  Touched out;
  if (auto it = index_.find(id); it != index_.end()) {
    it->second->last = now;
    order_.splice(order_.end(), order_, it->second);
    return out;
  }
  out.fresh = true;
  if (limits_.max_flows > 0 && index_.size() >= limits_.max_flows) {
    out.evicted = order_.front().id;
    index_.erase(order_.front().id);
    order_.pop_front();
  }
  order_.push_back({id, now});
  index_[id] = std::prev(order_.end());
  return out;
}

std::vector<uint64_t> FlowTable::expire(Timestamp now) {
  std::vector<uint64_t> out;
  while (!order_.empty() && now >= order_.front().last && now - order_.front().last >= limits_.idle_ns) {
    out.push_back(order_.front().id);
    index_.erase(order_.front().id);
    order_.pop_front();
  }
  return out;
}

std::optional<Timestamp> FlowTable::next_expiry() const {
  if (order_.empty()) return std::nullopt;
  return order_.front().last + limits_.idle_ns;
}

void FlowTable::erase(uint64_t id) {
  auto it = index_.find(id);
  if (it == index_.end()) return;
  order_.erase(it->second);
  index_.erase(it);
}

size_t SourceHash::operator()(const Source& s) const noexcept {
  // FNV-1a over the bytes that make the address.
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&](uint8_t b) { h = (h ^ b) * 1099511628211ULL; };
  mix(static_cast<uint8_t>(s.family));
  mix(static_cast<uint8_t>(s.family >> 8));
  for (uint8_t b : s.address) mix(b);
  mix(static_cast<uint8_t>(s.port));
  mix(static_cast<uint8_t>(s.port >> 8));
  return static_cast<size_t>(h);
}

ListenFlows::Assigned ListenFlows::flow_for(const Source& from, Timestamp now) {
  Assigned out;
  if (auto it = by_source_.find(from); it != by_source_.end()) {
    out.id = it->second;
    table_.touch(out.id, now);
    return out;
  }
  out.id = next_id_++;
  out.fresh = true;
  FlowTable::Touched t = table_.touch(out.id, now);
  if (t.evicted) {
    out.evicted = by_id_.at(*t.evicted);
    forget(*t.evicted);
  }
  by_source_[from] = out.id;
  by_id_[out.id] = from;
  return out;
}

std::optional<Source> ListenFlows::reply_to(uint64_t id, Timestamp now) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  table_.touch(id, now);
  return it->second;
}

std::vector<Source> ListenFlows::expire(Timestamp now) {
  std::vector<Source> out;
  for (uint64_t id : table_.expire(now)) {
    out.push_back(by_id_.at(id));
    forget(id);
  }
  return out;
}

void ListenFlows::forget(uint64_t id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  by_source_.erase(it->second);
  by_id_.erase(it);
}

}  // namespace peersock::forward::udp
