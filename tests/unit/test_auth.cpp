#include <gtest/gtest.h>
TEST(Placeholder, auth) { SUCCEED(); }
