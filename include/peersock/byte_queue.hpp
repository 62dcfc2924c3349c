// A FIFO of bytes in chunks of kChunkBytes, allocated as it fills and freed
// as it drains: an empty queue holds no memory, a full one no more than one
// partly used chunk beyond its contents, and nothing is ever moved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>

namespace peersock {

class ByteQueue {
 public:
  static constexpr size_t kChunk = 64 * 1024;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  void append(const uint8_t* data, size_t n);

  // Writable room at the end (at least one byte; allocates a chunk when the
  // last one is full), then commit() what was written there.
  std::span<uint8_t> tail_room();
  void commit(size_t n);

  // The first contiguous run of bytes (empty when the queue is).
  std::span<const uint8_t> front() const;
  // Drops n <= front().size() bytes from the front.
  void consume(size_t n);

  void clear();

 private:
  std::deque<std::unique_ptr<uint8_t[]>> chunks_;
  size_t head_ = 0;  // read offset in the first chunk
  size_t tail_ = 0;  // bytes used in the last chunk
  size_t size_ = 0;
};

}  // namespace peersock
