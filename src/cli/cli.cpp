namespace peersock::cli { int run(int, char**) { return 0; } }
