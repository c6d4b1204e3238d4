// Keeps libraries with no other sources yet valid CMake targets.
