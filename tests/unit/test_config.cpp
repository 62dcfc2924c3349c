#include <gtest/gtest.h>
TEST(Placeholder, config) { SUCCEED(); }
