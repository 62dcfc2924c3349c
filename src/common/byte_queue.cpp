#include "peersock/byte_queue.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace peersock {

void ByteQueue::append(const uint8_t* data, size_t n) {
  while (n > 0) {
    auto room = tail_room();
    size_t take = std::min(room.size(), n);
    std::memcpy(room.data(), data, take);
    commit(take);
    data += take;
    n -= take;
  }
}

std::span<uint8_t> ByteQueue::tail_room() {
  if (chunks_.empty() || tail_ == kChunk) {
    chunks_.push_back(std::make_unique_for_overwrite<uint8_t[]>(kChunk));
    tail_ = 0;
  }
  return {chunks_.back().get() + tail_, kChunk - tail_};
}

void ByteQueue::commit(size_t n) {
  assert(!chunks_.empty() && tail_ + n <= kChunk);
  tail_ += n;
  size_ += n;
}

std::span<const uint8_t> ByteQueue::front() const {
  if (size_ == 0) return {};
  size_t end = chunks_.size() == 1 ? tail_ : kChunk;
  return {chunks_.front().get() + head_, end - head_};
}

void ByteQueue::consume(size_t n) {
  assert(n <= front().size());
  head_ += n;
  size_ -= n;
  if (size_ == 0) {
    clear();
  } else if (head_ == kChunk) {
    chunks_.pop_front();
    head_ = 0;
  }
}

void ByteQueue::clear() {
  chunks_.clear();
  head_ = tail_ = size_ = 0;
}

}  // namespace peersock
