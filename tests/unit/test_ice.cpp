#include <gtest/gtest.h>
TEST(Placeholder, ice) { SUCCEED(); }
