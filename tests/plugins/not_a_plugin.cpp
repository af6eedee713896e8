// An ordinary shared library that happens to sit in a plugin folder: skipped with a note.
extern "C" __attribute__((visibility("default"))) int some_unrelated_function() { return 42; }
