#include <gtest/gtest.h>
TEST(Placeholder, code) { SUCCEED(); }
