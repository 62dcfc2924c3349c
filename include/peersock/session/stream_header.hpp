// Moved to forward/stream_header.hpp; this alias goes once the test tools use
// the new place.
#pragma once

#include "peersock/forward/stream_header.hpp"

namespace peersock::session {
using forward::check_data_stream_magic;
using forward::kDataStreamMagic;
}  // namespace peersock::session
