#include <gtest/gtest.h>
TEST(Placeholder, quic) { SUCCEED(); }
