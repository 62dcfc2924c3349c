#include "peersock/quic/send_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace peersock::quic {

void SendBuffer::append(std::span<const uint8_t> data) {
  while (!data.empty()) {
    size_t used = static_cast<size_t>((written_ - base_) % kChunk);
    if (used == 0 && written_ - base_ == chunks_.size() * kChunk) {
      chunks_.push_back(std::make_unique_for_overwrite<uint8_t[]>(kChunk));
    }
    size_t take = std::min(kChunk - used, data.size());
    std::memcpy(chunks_.back().get() + used, data.data(), take);
    written_ += take;
    data = data.subspan(take);
  }
}

size_t SendBuffer::unsent(std::span<std::span<const uint8_t>> out) const {
  size_t count = 0;
  uint64_t at = sent_;
  while (count < out.size() && at < written_) {
    uint64_t rel = at - base_;
    size_t chunk = static_cast<size_t>(rel / kChunk);
    size_t offset = static_cast<size_t>(rel % kChunk);
    size_t len = static_cast<size_t>(std::min<uint64_t>(kChunk - offset, written_ - at));
    out[count++] = {chunks_[chunk].get() + offset, len};
    at += len;
  }
  return count;
}

void SendBuffer::acked_to(uint64_t offset) {
  if (offset <= acked_) return;
  acked_ = std::min(offset, sent_);
  while (!chunks_.empty() && acked_ - base_ >= kChunk) {
    chunks_.pop_front();
    base_ += kChunk;
  }
  // Everything written is acknowledged: start afresh, holding no memory.
  if (acked_ == written_) {
    chunks_.clear();
    base_ = acked_;
  }
}

void SendBuffer::clear() {
  chunks_.clear();
  base_ = acked_ = sent_ = written_;
}

}  // namespace peersock::quic
