// Temporary output files, removed if the process is interrupted.
//
// Writers create their output as a temporary file beside the target and rename it when it is
// complete; they register it here so that SIGINT, SIGTERM or SIGHUP delete it before the
// process dies, and a killed run leaves nothing half-written.
#pragma once

#include <string>
#include <string_view>

namespace edgeq {

// Registers a path to delete on interruption (at most 16 at a time; more are not tracked).
void register_temp_file(const std::string& path);
void unregister_temp_file(const std::string& path);

// Writes `content` to `path` through a registered temporary file beside it, renamed into place
// when complete; throws an Error (and leaves nothing behind) if any step fails.
void write_file_atomic(const std::string& path, std::string_view content);

// Installs the handlers that delete registered files and then die of the signal as usual.
void install_temp_file_cleanup();

}  // namespace edgeq
